"""CLI command modules: each parses options, calls the library and renders; no logic of its own.

Every module exposes ``register(app)``, called once by ``adaptkit.cli``.
"""
