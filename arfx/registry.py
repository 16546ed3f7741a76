"""Finding effects by name: built-in folders first, then user folders."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .effect import MANIFEST, Effect, EffectSpec
from .errors import EffectError, ParameterError
from .resources import builtin_effects_dir

ENV_PATH = "ARFX_EFFECT_PATH"

# What a session accepts as an effect: an instance, "name:key=value,..." or (name, params).
EffectLike = Effect | str | tuple[str, dict[str, Any]]


class EffectRegistry:
    """Effect folders found in the built-in ``effects/``, ``ARFX_EFFECT_PATH`` and ``paths``.

    Later folders override earlier ones with the same effect name, so a user can
    shadow a built-in effect with their own version.
    """

    def __init__(self, paths: Iterable[str | Path] = (), *, use_env: bool = True) -> None:
        roots = [builtin_effects_dir()]
        if use_env and os.environ.get(ENV_PATH):
            roots += [Path(p) for p in os.environ[ENV_PATH].split(os.pathsep) if p]
        roots += [Path(p) for p in paths]
        self.roots = roots
        self._folders: dict[str, Path] = {}
        for root in roots:
            if not root.is_dir():
                raise EffectError(f"{root}: effect folder not found")
            for manifest in sorted(root.glob(f"*/{MANIFEST}")):
                self._folders[manifest.parent.name] = manifest.parent
        self._specs: dict[str, EffectSpec] = {}

    def names(self) -> list[str]:
        return sorted(self._folders)

    def spec(self, name: str) -> EffectSpec:
        if name not in self._folders:
            known = ", ".join(self.names()) or "none"
            raise EffectError(f"unknown effect {name!r} (available: {known})")
        if name not in self._specs:
            spec = EffectSpec.load(self._folders[name])
            if spec.name != name:
                raise EffectError(
                    f"{self._folders[name] / MANIFEST}: name {spec.name!r} differs from its "
                    f"folder name {name!r}"
                )
            self._specs[name] = spec
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
