"""The ``blush`` arfx effect: this folder holds its manifest (effect.toml) and shader.

There is no Python to run: arfx finds the folder through the ``arfx.effects`` entry point.
"""
