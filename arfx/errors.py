"""Exceptions arfx raises. Every message names what was wrong: a file, a frame, a parameter."""

from __future__ import annotations


class ArfxError(Exception):
    """Base class of every error arfx raises on purpose."""


class SourceError(ArfxError):
    """An input (file, camera, array) cannot be read or is not what it claims to be."""


class SinkError(ArfxError):
    """An output cannot be written."""


class EffectError(ArfxError):
    """An effect cannot be found, loaded, compiled or run."""


class ParameterError(EffectError, ValueError):
    """An effect parameter has an unknown name or an invalid value."""


class FrameError(ArfxError, ValueError):
    """A frame array has a shape or dtype arfx cannot process."""
