"""arfx: augmented-reality video effects on faces."""

__version__ = "0.1.0"
