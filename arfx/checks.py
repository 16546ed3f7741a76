"""Checks of values users give to options and functions, shared so that every knob follows
the same rules and its error reads the same way. ``True`` is an ``int`` to Python but not a
count or a size to a user, so booleans are refused where numbers are asked for."""

from __future__ import annotations

import math

__all__ = ["check_integer", "is_integer", "is_number"]


def is_integer(value: object) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_integer(
    name: str,
    value: object,
    low: int,
    high: int | None = None,
    *,
    error: type[Exception] = ValueError,
) -> int:
    """``value`` when it is an integer in [``low``, ``high``] (no upper bound when ``high``
    is None); otherwise ``error`` naming ``name``, the range and what was given."""
    if is_integer(value) and low <= value and (high is None or value <= high):  # type: ignore[operator]
        return value  # type: ignore[return-value]
    wanted = f"in [{low}, {high}]" if high is not None else f">= {low}"
    raise error(f"{name} must be an integer {wanted}, got {value!r}")
