"""The model configs shipped in configs/ parse, and the tiny one stays the pipeline's tiny model."""

from pathlib import Path

import pytest

from adaptkit.bootstrap.recipe import TINY_MODEL
from adaptkit.ckpt.config_file import read_model_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("name", ["model_small.yaml", "model_fork.yaml", "model_tiny.yaml"])
def test_model_config_files_parse(name):
    assert read_model_config(CONFIGS / name).hidden_dim > 0


def test_model_tiny_yaml_is_the_tiny_model_ci_runs():
    # docs/quickstart_tiny.md pretrains with this file; it must not drift from TINY_MODEL
    assert read_model_config(CONFIGS / "model_tiny.yaml") == read_model_config(TINY_MODEL)
