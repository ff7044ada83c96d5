"""The main job under torchrun: rank 0 alone builds the missing defaults, the others wait for it,
every rank trains, rank 0 alone compares."""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time

import pytest
import torch
from helpers_train import torchrun

from adaptkit.bootstrap.rank_zero import build_on_rank_zero
from adaptkit.errors import AdaptkitError

SCRIPT = textwrap.dedent(
    """
    import json, os, torch
    from adaptkit.pipeline import Recipe, adapt
    from adaptkit.plugins import get_registry
    from adaptkit.progress import NoteCollector
    from adaptkit.train import FinetuneJob, TrainConfig
    torch.set_num_threads(1)
    recipe = Recipe.tiny()
    notes = NoteCollector()
    job = FinetuneJob(get_registry().robot("minicheetah"),
                      train=TrainConfig.for_finetune("transformer", epochs=1, precision="fp32",
                                                     batch_size=4))
    r = adapt(job, recipe=recipe, reporter=notes)
    print("RESULT " + json.dumps({"rank": int(os.environ["RANK"]), "built": r.notes,
          "notes": notes.notes, "steps": r.finetune.steps, "compare": r.compare is not None}))
    """
)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_torchrun_builds_defaults_once_on_rank_zero(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    proc = torchrun(script, tmp_path, timeout=300)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[len("RESULT ") :])
            results[r["rank"]] = r
    assert set(results) == {0, 1}, proc.stdout
    zero, one = results[0], results[1]
    assert any("no base model" in n for n in zero["built"])
    assert any("collecting" in n and "minicheetah" in n for n in zero["built"])
    assert one["built"] == [] and one["notes"] == []  # it waited, built nothing, said nothing
    assert zero["steps"] == one["steps"] > 0  # both trained, in lock-step
    assert zero["compare"] and not one["compare"]
    # collected once: the tiny recipe's histories, not one set per rank
    tiny_histories = 2
    for folder in ("go1_trajectories", "minicheetah_trajectories"):
        assert len(list((tmp_path / "data" / folder).glob("*.h5"))) == tiny_histories
    marker = json.loads((tmp_path / "models" / "base" / "provenance.json").read_text())
    assert marker["complete"] is True
    assert not (tmp_path / "models" / ".defaults-build-failed").exists()
    # rank 0 alone logged: one line per step, then the comparison as an eval summary
    lines = [json.loads(x) for x in (tmp_path / "models" / "minicheetah_finetune" /
                                     "metrics.jsonl").read_text().splitlines()]  # fmt: skip
    assert [r["step"] for r in lines if "event" not in r] == list(range(1, zero["steps"] + 1))
    (ev,) = [r for r in lines if r.get("event") == "eval"]
    assert ev["step"] == zero["steps"]
    assert set(ev) >= {"demonstrator", "stand", "zero-shot", "fine-tuned"}
    assert ev["fine-tuned"]["num_episodes"] > 0 and "pct_demonstrator" in ev["fine-tuned"]


def test_waiting_rank_stops_when_rank_zero_fails(tmp_path):
    flag = tmp_path / "failed"

    def fail_later() -> None:
        time.sleep(0.3)
        flag.write_text("AdaptkitError: robot 'x': no simulator")

    threading.Thread(target=fail_later).start()
    with pytest.raises(AdaptkitError, match="rank 1: rank 0 failed .*no simulator"):
        build_on_rank_zero(lambda: None, lambda: False, flag, rank=1)


def test_waiting_rank_ignores_an_old_failure_and_returns_when_ready(tmp_path):
    flag = tmp_path / "failed"
    flag.write_text("from an earlier launch")
    old = time.time() - 3600
    os.utime(flag, (old, old))
    done = threading.Event()
    threading.Timer(0.3, done.set).start()
    build_on_rank_zero(lambda: None, done.is_set, flag, rank=1)
    assert done.is_set()


def test_rank_zero_records_its_failure_and_clears_it_on_success(tmp_path):
    flag = tmp_path / "models" / "failed"

    def broken() -> None:
        raise AdaptkitError("no data")

    with pytest.raises(AdaptkitError, match="no data"):
        build_on_rank_zero(broken, lambda: False, flag, rank=0)
    assert flag.read_text() == "AdaptkitError: no data"
    build_on_rank_zero(lambda: None, lambda: True, flag, rank=0)
    assert not flag.exists()
