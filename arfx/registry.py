"""Finding effects by name: built-in folders, installed packages, then user folders.

Search order (a later one shadows an earlier one with the same effect name): the built-in
``effects/``, packages installed with an ``arfx.effects`` entry point, the folders in
``ARFX_EFFECT_PATH``, then the folders passed in (``SessionOptions.effect_paths``).

An entry point's name is the effect's name; its object is either a module (the manifest
lives in the module's folder, e.g. ``blush = "arfx_blush"`` for a package ``arfx_blush/``
holding ``effect.toml``) or ``module:ATTRIBUTE`` where the attribute is the folder's path.
A plain module reference is located without importing it, so listing effects runs no
plugin code.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from .effect import NAME_PATTERN, Effect, EffectSpec, find_manifest
from .errors import EffectError, ParameterError
from .resources import builtin_effects_dir

ENV_PATH = "ARFX_EFFECT_PATH"
ENTRY_POINT_GROUP = "arfx.effects"

log = logging.getLogger("arfx")

# What a session accepts as an effect: an instance, "name:key=value,..." or (name, params).
EffectLike = Effect | str | tuple[str, dict[str, Any]]


class EffectRegistry:
    """Effect folders from the built-in ``effects/``, entry points, ``ARFX_EFFECT_PATH`` and
    ``paths``; later ones override earlier ones with the same name.

    An installed package whose entry point cannot be located does not stop the others: it is
    listed in ``broken`` and only asking for that effect raises its error.
    """

    def __init__(
        self,
        paths: Iterable[str | Path] = (),
        *,
        use_env: bool = True,
        use_entry_points: bool = True,
    ) -> None:
        self._folders: dict[str, Path] = {}
        self.origins: dict[str, str] = {}
        """Where each effect was found: "built-in", "package NAME" or the folder given."""
        self.broken: dict[str, str] = {}
        """Effects found but unusable (an entry point that fails), with the reason."""
        self._scan(builtin_effects_dir(), "built-in")
        if use_entry_points:
            for entry in entry_points(group=ENTRY_POINT_GROUP):
                self._add_entry_point(entry)
        roots = []
        if use_env and os.environ.get(ENV_PATH):
            roots += [Path(p) for p in os.environ[ENV_PATH].split(os.pathsep) if p]
        roots += [Path(p) for p in paths]
        for root in roots:
            if not root.is_dir():
                raise EffectError(f"{root}: effect folder not found")
            self._scan(root, str(root))
        self.roots = [builtin_effects_dir(), *roots]
        self._specs: dict[str, EffectSpec] = {}

    def _scan(self, root: Path, origin: str) -> None:
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            try:
                manifest = find_manifest(folder)
            except EffectError as exc:
                self._add_broken(folder.name, str(exc), origin)
                continue
            if manifest is not None:
                self._add(folder.name, folder, origin)

    def _add(self, name: str, folder: Path, origin: str) -> None:
        self._folders[name] = folder
        self.origins[name] = origin
        self.broken.pop(name, None)

    def _add_broken(self, name: str, reason: str, origin: str) -> None:
        self._folders.pop(name, None)
        self.origins[name] = origin
        self.broken[name] = reason

    def _add_entry_point(self, entry: EntryPoint) -> None:
        package = entry.dist.name if entry.dist is not None else "unknown package"
        origin = f"package {package}"
        where = f"entry point {entry.name!r} = {entry.value!r} ({origin})"
        if not NAME_PATTERN.match(entry.name):
            log.warning("%s: the name must match [a-z][a-z0-9_]*; ignored", where)
            return
        try:
            folder = _entry_point_folder(entry)
        except Exception as exc:  # noqa: BLE001 - a broken package must not break the others
            self._add_broken(entry.name, f"{where}: {type(exc).__name__}: {exc}", origin)
            return
        if find_manifest(folder) is None:
            self._add_broken(entry.name, f"{where}: no effect manifest in {folder}", origin)
            return
        self._add(entry.name, folder, origin)

    def names(self) -> list[str]:
        """Every usable effect's name, sorted."""
        return sorted(self._folders)

    def folder(self, name: str) -> Path:
        self._check(name)
        return self._folders[name]

    def _check(self, name: str) -> None:
        if name in self.broken:
            raise EffectError(self.broken[name])
        if name not in self._folders:
            known = ", ".join(self.names()) or "none"
            raise EffectError(f"unknown effect {name!r} (available: {known})")

    def spec(self, name: str) -> EffectSpec:
        """The effect's manifest, read once; its ``name`` must be the name it was found by."""
        self._check(name)
        if name not in self._specs:
            self._specs[name] = load_named(name, self._folders[name])
        return self._specs[name]

    def create(self, name: str, **params: Any) -> Effect:
        return Effect(self.spec(name), **params)

    def resolve(self, item: EffectLike) -> Effect:
        """An Effect from an instance, a ``name:key=value,...`` string or ``(name, params)``."""
        if isinstance(item, Effect):
            return item
        if isinstance(item, str):
            name, params = parse_effect_spec(item)
            return self.create(name, **params)
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict):
            return self.create(item[0], **item[1])
        raise EffectError(f"cannot make an effect from {item!r}")

    def resolve_all(self, items: Sequence[EffectLike]) -> list[Effect]:
        return [self.resolve(item) for item in items]


def load_named(name: str, folder: Path) -> EffectSpec:
    """Load the spec in ``folder`` and check it calls itself ``name`` (folder or entry point)."""
    spec = EffectSpec.load(folder)
    if spec.name != name:
        raise EffectError(
            f"{spec.where()}: name {spec.name!r} differs from the name it is installed as, "
            f"{name!r} (its folder or entry-point name)"
        )
    return spec


def _entry_point_folder(entry: EntryPoint) -> Path:
    """The effect folder an ``arfx.effects`` entry point names (see the module docstring)."""
    if entry.attr is None:
        module_spec = importlib.util.find_spec(entry.module)
        if module_spec is None:
            raise ModuleNotFoundError(f"no module named {entry.module!r}")
        if module_spec.submodule_search_locations:
            return Path(next(iter(module_spec.submodule_search_locations)))
        if module_spec.origin is None:
            raise EffectError(f"module {entry.module!r} has no file")
        return Path(module_spec.origin).parent
    value = entry.load()
    if isinstance(value, ModuleType):
        if value.__file__ is None:
            raise EffectError(f"module {value.__name__!r} has no file")
        return Path(value.__file__).parent
    if isinstance(value, str | os.PathLike) and Path(value).is_absolute():
        return Path(value)
    raise EffectError(f"expected a module or an absolute folder path, got {value!r}")


def parse_effect_spec(text: str) -> tuple[str, dict[str, str]]:
    """Split ``lipstick:color=#a3122f,opacity=0.8`` into a name and raw string values."""
    name, _, rest = text.strip().partition(":")
    name = name.strip()
    if not name:
        raise EffectError(f"empty effect name in {text!r}")
    params: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"effect {name!r}: expected key=value, got {item!r} in {text!r}")
        params[key.strip()] = value.strip()
    return name, params
