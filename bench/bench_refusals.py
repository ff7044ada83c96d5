"""How fast bad input is refused: each probe of issue 27 run as the real CLI (a fresh process,
imports included), timed wall-clock. The goal is under 3 s each on this machine.

    python bench/bench_refusals.py

Fixtures are built in a temp folder: a tiny checkpoint (tests/helpers_model.py) edited per probe,
a dataset YAML alias bomb, a history with 1e30 values (h5py, by hand), a folder of your own
histories for `collect` to refuse.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tiny checkpoint
from helpers_model import tiny_checkpoint

from adaptkit.plugins import get_registry


def edited(root: Path, name: str, **changes) -> Path:
    ckpt = tiny_checkpoint(root, name=name)
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg.update(changes)
    (ckpt / "config.json").write_text(json.dumps(cfg))
    return ckpt


def history(path: Path, huge: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(200, 45)).astype(np.float32)
    if huge:
        obs[40:50] = 1e30
    with h5py.File(path, "w") as f:
        g = f.create_group("0-199")
        g["proprio_observation"] = obs
        g["action"] = rng.normal(size=(200, 12)).astype(np.float32)
        g["reward"] = rng.normal(size=200).astype(np.float32)
        g["step_num"] = (np.arange(200) % 50).astype(np.int32)


def main() -> None:
    root = Path(tempfile.mkdtemp())
    deep = edited(root, "deep", transformer_depth=1_000_000)
    wide = edited(root, "wide", intermediate_size=10**9)
    bad_meta = tiny_checkpoint(root, name="meta")
    (bad_meta / "metadata.json").write_text('{"groups": {')
    good = tiny_checkpoint(root, name="good")
    bomb = root / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    bomb.write_text("\n".join(lines) + "\n")
    (root / "mc.yaml").write_text(json.dumps(get_registry().robot("minicheetah").dataset_entry()))
    history(root / "huge" / "minicheetah_trajectories" / "history_0.h5", huge=True)
    history(root / "mine" / "minicheetah_trajectories" / "my_run.h5")
    probes = {
        "inspect: transformer_depth 1e6": ["inspect", deep],
        "inspect: intermediate_size 1e9": ["inspect", wide],
        "eval: truncated metadata.json": ["eval", bad_meta, "--robot", "minicheetah"],
        "compare: truncated metadata.json": ["compare", bad_meta, "--robot", "minicheetah"],
        "data validate: YAML alias bomb": ["data", "validate", bomb],
        "data validate: 1e30 observations": [
            "data",
            "validate",
            root / "mc.yaml",
            "--data-dir",
            root / "huge",
        ],
        "collect: into a folder of your files": [
            "collect",
            "minicheetah",
            "--data-dir",
            root / "mine",
        ],
        "finetune: --name ../../escape": ["finetune", "minicheetah", "--name", "../../escape"],
        "eval: --device cuda (CPU torch)": [
            "eval",
            good,
            "--robot",
            "minicheetah",
            "--device",
            "cuda",
        ],
        "eval: --seed -1": ["eval", good, "--robot", "minicheetah", "--seed", "-1"],
        "eval: --context-len 0": ["eval", good, "--robot", "minicheetah", "--context-len", "0"],
    }
    print(f"{'probe':40s} {'exit':>4s} {'seconds':>7s}  first line")
    for name, args in probes.items():
        cmd = [sys.executable, "-m", "adaptkit", *map(str, args)]
        start = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=120)
        took = time.perf_counter() - start
        err = [ln for ln in r.stderr.splitlines() if ln.strip()]
        first = next((ln for ln in err if "rror" in ln), err[0] if err else "")
        print(f"{name:40s} {r.returncode:4d} {took:7.2f}  {first.strip()[:90]}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
