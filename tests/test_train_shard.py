"""Pretraining across nodes with sharded data: two torchrun "nodes" (--nnodes 2, one process
each, gloo on 127.0.0.1) where each rank reads only its part of the histories, while the stats
are those of all the data (the same as one process computes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from helpers_train import TINY_MODEL, tiny_train, write_config, write_task

from adaptkit.errors import AdaptkitError
from adaptkit.train import pretrain

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch.distributed not built"
)

SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    sys.path.insert(0, {tests!r})
    from helpers_train import TINY_MODEL, tiny_train
    import adaptkit.data.validate as validate
    from adaptkit.train import pretrain
    torch.set_num_threads(1)
    read = []
    real = validate.check_history_file
    def check(path, *a, **k):
        read.append(path.name)
        return real(path, *a, **k)
    validate.check_history_file = check
    root = {root!r}
    r = pretrain([root + "/pretrain.yaml"], root + "/data", "sharded", root + "/models",
                 TINY_MODEL, tiny_train(epochs=1, batch_size=4), shard_data=True)
    print("READ", os.environ["RANK"], ",".join(sorted(read)), r.steps, flush=True)
    """
)


def _world(tmp_path):
    write_task(tmp_path / "data" / "go1", 45, 12, histories=4, steps=120, seed=1)
    return write_config(tmp_path / "pretrain.yaml", {"go1_walking": ("go1", "quadruped")})


def _stats(run_dir):
    meta = json.loads((sorted(run_dir.glob("*_epoch"))[-1] / "metadata.json").read_text())
    (task,) = meta.values()
    return {k: task[k] for k in ("obs_mean", "obs_std", "acs_mean", "acs_std")}


def test_two_nodes_read_only_their_shard(tmp_path):
    cfg = _world(tmp_path)
    one = pretrain([cfg], tmp_path / "data", "one", tmp_path / "models", TINY_MODEL,
                   tiny_train(epochs=1, batch_size=4))  # fmt: skip
    script = tmp_path / "node.py"
    script.write_text(SCRIPT.format(tests=os.path.dirname(__file__), root=str(tmp_path)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
              "--master-addr=127.0.0.1", f"--master-port={port}"]  # fmt: skip
    nodes = [
        subprocess.Popen(
            [*launch, f"--node-rank={n}", str(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for n in (0, 1)
    ]
    outs = [p.communicate(timeout=240)[0] for p in nodes]
    assert all(p.returncode == 0 for p in nodes), outs[0][-3000:] + outs[1][-3000:]
    lines = sorted(line.split() for out in outs for line in out.splitlines() if line[:4] == "READ")
    assert [line[:3] for line in lines] == [
        ["READ", "0", "history_0.h5,history_2.h5"],
        ["READ", "1", "history_1.h5,history_3.h5"],
    ]  # each node read only its part...
    assert lines[0][3] == lines[1][3]  # ...and both took the same number of steps (lock-step)
    sharded, whole = _stats(tmp_path / "models" / "sharded"), _stats(one.run_dir)
    for k in whole:  # ...yet the stats are those of all the data
        torch.testing.assert_close(torch.tensor(sharded[k]), torch.tensor(whole[k]))


def test_too_few_histories_to_share_is_one_line():
    from adaptkit.data.config import DatasetEntry

    entry = DatasetEntry("t", "default", __import__("pathlib").Path("x"), "g", 1.0, 1,
                         shard=(0, 3))  # fmt: skip
    assert entry.shard_of(["a", "b", "c", "d"]) == ["a", "d"]
    with pytest.raises(AdaptkitError, match="2 histories in x cannot be shared among 3"):
        entry.shard_of(["a", "b"])
