"""adaptkit's built-in robots. Each module is a plugin registered through the `adaptkit` entry
point group in pyproject.toml, exactly as a third-party package would register its robots."""

from pathlib import Path

ASSETS = Path(__file__).parent / "assets"
