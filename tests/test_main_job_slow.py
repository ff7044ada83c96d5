"""The main job at full default size, held to the project's quality bar (≈ 8 min on 2 cores).

Marked slow: CI runs the same pipeline at toy sizes (test_pipeline.py); run this one with
`python -m pytest -m slow`.
"""

from __future__ import annotations

import pytest

from adaptkit.pipeline import adapt
from adaptkit.plugins import get_registry
from adaptkit.train import FinetuneJob


@pytest.mark.slow
def test_default_main_job_meets_the_bar(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = adapt(FinetuneJob(get_registry().robot("minicheetah")))
    assert result.finetune.frozen_verified is True
    rows = {r["label"]: r for r in result.compare.rows}
    tuned = rows["fine-tuned"]
    assert tuned["pct_demonstrator"] >= 90.0
    assert tuned["normalised_score"] >= 0.85
    assert tuned["fall_rate"] <= 0.05
    assert rows["zero-shot"]["normalised_score"] < tuned["normalised_score"]
