"""Shared fixtures. Area-specific helpers live in tests/helpers_*.py, not here."""

from __future__ import annotations

import pytest
import torch

import adaptkit.sim  # noqa: F401  (first: picks MuJoCo's headless GL before a test imports mujoco)
from adaptkit.plugins import load_registry, set_registry


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Every test starts from the installed plugins only, and leaves no global state behind."""
    set_registry(None)
    yield
    set_registry(None)


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    torch.set_num_threads(2)
    torch.manual_seed(0)


@pytest.fixture
def registry():
    reg = load_registry()
    set_registry(reg)
    return reg
