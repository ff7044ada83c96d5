"""Issue 35's probes (reliability round 4), each a test that failed before its fix: a policy one
bad reading cannot poison (in-process and in the exported files themselves), exports written as
one set and bound to their sidecar, sidecars checked against the file and the simulator, a
shipped base checked against its record, caps on export, signals that say what was kept, and
the new probe classes of this round (at the end, each named).

Every refusal is one line that names the file/field/index, and — where files are involved —
every input and earlier output is hashed before and after (`snapshot`, round 3's)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers_model import reference_config, tiny_meta, tiny_model
from test_reliability import cli, finetune_args, one_error, write_mc_data
from test_reliability_round3 import COLLECT, snapshot

import adaptkit
from adaptkit.ckpt.checkpoint import save_checkpoint
from adaptkit.errors import AdaptkitError
from adaptkit.model import GroupDims

QUAD = {"quadruped_locomotion": GroupDims(45, 12)}
FORMATS = ["torchscript", "onnx"]
ROLL = ["--robot", "go1", "--num-envs", "1", "--episodes", "1", "--episode-length", "5"]


def _needs(fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def quad(tmp_path_factory) -> Path:
    """A tiny checkpoint with a Go1-sized group (45 obs, 12 joints), context 32."""
    model = tiny_model(groups=QUAD)
    meta = tiny_meta(QUAD, {"go1_walking_ad": "quadruped_locomotion"})
    root = tmp_path_factory.mktemp("quad")
    return save_checkpoint(root / "run" / "0001_epoch", model, meta, reference_config(model))


@pytest.fixture(scope="module")
def exported(quad, tmp_path_factory) -> dict[str, Path]:
    """The checkpoint exported once in each format (the tests copy what they tamper with)."""
    out = {}
    for fmt in FORMATS:
        if fmt == "onnx" and _missing_onnx():
            continue
        folder = tmp_path_factory.mktemp(fmt)
        r = cli("export", quad.parent, "--robot", "go1", "--format", fmt, "--out", folder)
        assert r.exit_code == 0, r.output
        out[fmt] = next(p for p in folder.iterdir() if p.suffix in (".pt", ".onnx"))
    return out


def _missing_onnx() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(m) is None for m in ("onnxruntime", "onnxscript"))


def _copy(policy: Path, dest: Path) -> Path:
    """policy file + sidecar copied into `dest` (a folder a test may tamper with)."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in (policy, policy.with_name(policy.name + ".json")):
        shutil.copy2(p, dest / p.name)
    return dest / policy.name


def _source(kind: str, quad: Path, exported: dict[str, Path]) -> Path:
    if kind == "in-process":
        return quad.parent
    _needs(kind)
    return exported[kind]


def _readings(n: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 45)).astype(np.float32)


# -- 1. one bad reading cannot poison the policy: refused before the context, state kept --------
BAD = {
    "nan obs": (("obs", 4, np.nan), "act: obs[4] is nan"),
    "inf obs": (("obs", 4, np.inf), "act: obs[4] is inf"),
    "1e30 obs": (("obs", 4, 1e30), "act: obs[4] is out of range"),
    "nan reward": (("reward", None, np.nan), "act: reward is nan"),
    "-inf reward": (("reward", None, -np.inf), "act: reward is -inf"),
}
RUNTIMES = ["in-process", *FORMATS]


def _bad_step(obs: np.ndarray, spec) -> tuple[np.ndarray, float]:
    field, index, value = spec
    obs = obs.copy()
    reward = 0.1
    if field == "obs":
        obs[index] = value
    else:
        reward = value
    return obs, reward


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(("bad", "message"), BAD.values(), ids=BAD.keys())
def test_one_bad_reading_is_refused_and_the_state_stays_as_before(
    quad, exported, runtime, bad, message
):
    source = _source(runtime, quad, exported)
    policy, twin = adaptkit.load_policy(source, "go1"), adaptkit.load_policy(source, "go1")
    obs = _readings()
    for p in (policy, twin):
        p.act(obs[0])
    with pytest.raises(AdaptkitError) as refused:
        policy.act(*_bad_step(obs[1], bad))
    assert str(refused.value).startswith(message)
    assert "refused before it enters the context" in str(refused.value)
    assert "|x| <= 1e+06" in str(refused.value)
    for t in range(1, 6):  # the refused step left no trace: the twin never saw it
        a, b = policy.act(obs[t], 0.1), twin.act(obs[t], 0.1)
        assert np.isfinite(a).all() and np.array_equal(a, b)


def test_a_bad_reading_in_a_batch_names_row_and_column(quad):
    policy = adaptkit.load_policy(quad.parent, "go1")
    obs = _readings(3)
    obs[2, 7] = np.nan
    with pytest.raises(AdaptkitError, match=r"act: obs\[2, 7\] is nan"):
        policy.act(obs, np.zeros(3))
    with pytest.raises(AdaptkitError, match=r"act: reward\[1\] is inf"):
        policy.act(_readings(3), np.array([0.0, np.inf, 0.0]))
    assert policy.act(_readings(3), np.zeros(3)).shape == (3, 12)


def test_the_torchscript_file_itself_refuses_a_bad_reading(exported):
    """Without adaptkit: torch.jit.load and act, as a robot's control loop would."""
    import torch

    policy, twin = (torch.jit.load(str(exported["torchscript"])) for _ in range(2))
    obs = torch.as_tensor(_readings())
    for p in (policy, twin):
        p.reset(1)
        p.act(obs[0], torch.tensor(0.0))
    bad = obs[1].clone()
    bad[4] = float("nan")
    for x, r, message in [
        (bad, torch.tensor(0.1), "act: obs[4] is nan: refused before it enters the context"),
        (obs[1], torch.tensor(float("inf")), "act: reward is inf: refused"),
        (obs[1] * 1e30, torch.tensor(0.1), "is out of range: refused"),
    ]:
        with pytest.raises(torch.jit.Error) as refused:
            policy.act(x, r)
        assert message in str(refused.value)
    for t in range(1, 6):
        a, b = policy.act(obs[t], torch.tensor(0.1)), twin.act(obs[t], torch.tensor(0.1))
        assert torch.isfinite(a).all() and torch.equal(a, b)


def _onnx_state(side: dict, batch: int = 1) -> dict[str, np.ndarray]:
    m = side["model"]
    cache = (m["layers"], batch, m["heads"], side["context_len"], m["head_dim"])
    return {
        "prev_action": np.zeros((batch, side["act_dim"]), np.float32),
        "step_index": np.zeros(batch, np.int64),
        "position": np.zeros((), np.int64),
        "k_cache": np.zeros(cache, np.float32),
        "v_cache": np.zeros(cache, np.float32),
    }


def test_the_onnx_file_itself_refuses_a_bad_reading(exported):
    """Without adaptkit: onnxruntime alone. A graph cannot raise, so the file's guard makes
    onnxruntime fail the run with the refusal's wording and the index; the state is the
    caller's and stays as it was."""
    _needs("onnx")
    import onnxruntime as ort

    path = exported["onnx"]
    side = json.loads(path.with_name(path.name + ".json").read_text())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state = _onnx_state(side)
    obs = _readings()

    def run(o, r, s):
        return session.run(None, {"obs": o[None], "reward": np.array([r], np.float32)} | s)

    _, *rest = run(obs[0], 0.0, state)
    state = dict(zip(state, rest, strict=True))
    bad = obs[1].copy()
    bad[4] = 1e30
    refusals = [
        (bad, 0.1, "act: obs[idx] is nan, inf or out of range: refused"),
        (obs[1], np.nan, "act: reward[idx] is nan, inf or out of range"),
    ]
    for o, r, message in refusals:
        with pytest.raises(Exception) as refused:
            run(o, r, state)
        assert message in str(refused.value)
        assert ("idx=4" if r == 0.1 else "idx=0") in str(refused.value)
    action, *_ = run(obs[1], 0.1, state)  # the same state steps on, finite
    assert np.isfinite(action).all()


# -- 2. an export is written as one set, and the pair is bound by the policy's hash -------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failed_sidecar_write_keeps_the_earlier_pair(quad, tmp_path, monkeypatch, fmt):
    _needs(fmt)
    import adaptkit.export.build as build

    out = tmp_path / "exp"
    args = ["export", quad.parent, "--robot", "go1", "--format", fmt, "--out", out]
    assert cli(*args).exit_code == 0
    before = snapshot(out)
    real = build.write_json

    def full(path, data, what="JSON"):
        raise AdaptkitError(f"{path}: cannot write the {what}: no space left on device")

    monkeypatch.setattr(build, "write_json", full)
    line = one_error(cli(*args, "--context-len", "16"))
    assert "no space left on device" in line
    monkeypatch.setattr(build, "write_json", real)
    assert snapshot(out) == before  # the old policy and its sidecar, byte for byte; no temp


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_policy_beside_another_exports_sidecar_is_refused(quad, exported, tmp_path, fmt):
    """What a kill between the two renames leaves: the new policy, the old sidecar."""
    _needs(fmt)
    policy = _copy(exported[fmt], tmp_path / "a")
    other = tmp_path / "b"
    r = cli("export", quad.parent, "--robot", "go1", "--format", fmt, "--out", other,
            "--context-len", "16")  # fmt: skip
    assert r.exit_code == 0, r.output
    shutil.copy2(other / policy.name, policy)  # the other export's file, this one's sidecar
    before = snapshot(tmp_path)
    line = one_error(cli("eval", "--exported", policy, *ROLL, "--out", tmp_path / "ev"))
    assert f"{policy}.json: records policy_sha256" in line and "different exports" in line
    with pytest.raises(AdaptkitError, match="different exports"):
        adaptkit.load_policy(policy)
    assert snapshot(tmp_path) == before


# -- 3. caps on export: the window is checked as eval checks it ----------------------------------
@pytest.mark.parametrize(
    ("context", "message"),
    [
        ("2000000", "--context-len: must be in 1..1,048,576"),
        ("1000000", "the exported policy's KV cache"),
    ],
    ids=["past the 2^20 cap", "past free memory"],
)
def test_export_refuses_a_window_it_could_not_run(quad, tmp_path, monkeypatch, context, message):
    import adaptkit.evaluate.plan as plan

    monkeypatch.setattr(plan, "available_memory", lambda device="cpu": 100 << 20)
    before = snapshot(quad.parent)
    line = one_error(
        cli(
            "export",
            quad.parent,
            "--robot",
            "go1",
            "--out",
            tmp_path / "e",
            "--context-len",
            context,
        )
    )
    assert message in line
    assert snapshot(quad.parent) == before and not (tmp_path / "e").exists()


# -- 4. tampered sidecars: one line naming the field, never a traceback --------------------------
def _tamper(policy: Path, **changes) -> None:
    side = policy.with_name(policy.name + ".json")
    raw = json.loads(side.read_text())
    for key, value in changes.items():
        if value is None:
            raw.pop(key)
        elif callable(value):
            raw[key] = value(raw[key])
        else:
            raw[key] = value
    side.write_text(json.dumps(raw))


TAMPERED = {
    "no runtime": ({"runtime": None}, "field 'runtime' is missing"),
    "string act_dim": ({"act_dim": "12"}, "field 'act_dim' must be an integer"),
    "huge context": ({"context_len": 10**12}, "field 'context_len' must be an integer in 1.."),
    "negative context": ({"context_len": -4}, "field 'context_len' must be an integer in 1.."),
    "another context": ({"context_len": 16}, "field 'context_len' is 16, but policy"),
    "wrong layer count": (
        {"model": lambda m: {**m, "layers": 7}},
        "field 'model.layers' is 7, but policy",
    ),
    "obs_names of another layout": (
        {"obs_names": lambda n: n[:33], "obs_dim": 33},
        "field 'obs_dim' is 33, but policy",
    ),
    "obs_names shorter than obs_dim": (
        {"obs_names": lambda n: n[:33]},
        "field 'obs_names' must be a list of 45 names",
    ),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("changes", "message"), TAMPERED.values(), ids=TAMPERED.keys())
def test_a_tampered_sidecar_is_one_line(exported, tmp_path, fmt, changes, message):
    _needs(fmt)
    policy = _copy(exported[fmt], tmp_path / "t")
    _tamper(policy, **changes)
    before = snapshot(tmp_path)
    line = one_error(cli("eval", "--exported", policy, *ROLL, "--out", tmp_path / "ev"))
    assert f"{policy}.json: " in line and message in line
    with pytest.raises(AdaptkitError, match=message.replace("(", r"\(").replace(".", r"\.")):
        adaptkit.load_policy(policy)
    assert snapshot(tmp_path) == before


# -- 5. sidecar fields are checked against the simulator's robot ---------------------------------
MISMATCHED = {
    "reversed joint_order": ({"joint_order": lambda j: j[::-1]}, "field 'joint_order'"),
    "wrong default_pose": ({"default_pose": lambda p: [0.0] * len(p)}, "field 'default_pose'"),
    "wrong action_scale": (
        {"action": lambda a: {**a, "action_scale": 0.5}},
        "field 'action.action_scale'",
    ),
    "another robot": ({"robot": "a1"}, "field 'default_pose'"),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("changes", "message"), MISMATCHED.values(), ids=MISMATCHED.keys())
def test_sidecar_fields_are_checked_against_the_robot(exported, tmp_path, fmt, changes, message):
    _needs(fmt)
    policy = _copy(exported[fmt], tmp_path / "t")
    _tamper(policy, **changes)
    robot = json.loads(policy.with_name(policy.name + ".json").read_text())["robot"]
    line = one_error(
        cli("eval", "--exported", policy, *ROLL[2:], "--robot", robot, "--out", tmp_path / "ev")
    )
    assert message in line and f"but robot {robot!r} has" in line
    assert not (tmp_path / "ev").exists()


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--context-len", "8"), ("--group", "other_group"), ("--token-order", "act,rew,obs")],
)
def test_eval_exported_refuses_options_the_file_cannot_honour(exported, tmp_path, flag, value):
    line = one_error(
        cli(
            "eval",
            "--exported",
            exported["torchscript"],
            *ROLL,
            "--out",
            tmp_path / "e",
            flag,
            value,
        )
    )
    assert f"{flag} {value}: " in line and "fixed inside it" in line
    assert not (tmp_path / "e").exists()


# -- 6. batched misuse of a policy: one line, in every runtime -----------------------------------
MISUSE = {
    "reward of another batch": (
        lambda p: p.act(_readings(3), np.zeros(2)),
        "act: reward must be a number or [3]",
    ),
    "mask of the wrong length": (
        lambda p: (p.act(_readings(2), np.zeros(2)), p.start_episode([True, False, True])),
        "start_episode: mask must be [2]",
    ),
    "batch 0": (lambda p: p.act(np.zeros((0, 45))), "act: obs must be [45] or [B, 45] with B >= 1"),
    "reset(0)": (lambda p: p.reset(0), "reset: batch must be an integer >= 1"),
    "a string for obs": (lambda p: p.act("fast"), "act: obs must be real numbers"),
}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(("misuse", "message"), MISUSE.values(), ids=MISUSE.keys())
def test_batched_misuse_is_one_line(quad, exported, runtime, misuse, message):
    policy = adaptkit.load_policy(_source(runtime, quad, exported), "go1")
    with pytest.raises(AdaptkitError) as refused:
        misuse(policy)
    assert str(refused.value).startswith(message), refused.value


def test_a_robot_that_is_no_name_is_one_line(quad):
    with pytest.raises(AdaptkitError, match="robot must be a robot's name or a RobotSpec, got int"):
        adaptkit.load_policy(quad.parent, 123)


def test_the_torchscript_file_refuses_batched_misuse_itself(exported):
    import torch

    policy = torch.jit.load(str(exported["torchscript"]))
    policy.reset(2)
    for call, message in [
        (lambda: policy.act(torch.zeros(3, 45), torch.zeros(2)), "reward must be a number or [3]"),
        (lambda: policy.start_episode(torch.ones(5, dtype=torch.bool)), "mask must be [2]"),
        (lambda: policy.act(torch.zeros(0, 45), torch.zeros(0)), "with B >= 1"),
        (lambda: policy.reset(0), "reset: batch must be >= 1"),
    ]:
        with pytest.raises(torch.jit.Error, match=message.replace("[", r"\[").replace("]", r"\]")):
            call()


# -- 7. the shipped base is checked against its record when used ----------------------------------
@pytest.fixture
def shipped_copy(tmp_path) -> Path:
    """A copy of the base adaptkit ships (weights, provenance.json), laid out as shipped."""
    from adaptkit.bootstrap.ship import SHIPPED_BASE

    dest = tmp_path / "bases" / "default"
    shutil.copytree(SHIPPED_BASE, dest)
    return dest


def _flip(path: Path, n: int = 64) -> None:
    """Flip `n` bytes in the middle of a file (inside model.pth's tensor bytes)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + n] = bytes(b ^ 0xFF for b in data[mid : mid + n])
    path.write_bytes(bytes(data))


def test_a_damaged_shipped_base_is_refused_naming_the_file(shipped_copy, tmp_path):
    from adaptkit.ckpt.load import load_checkpoint

    weights = next(shipped_copy.glob("*_epoch")) / "model.pth"
    _flip(weights)
    before = snapshot(shipped_copy)
    line = one_error(cli("inspect", shipped_copy))
    assert f"{weights}: its weights' fingerprint" in line and "provenance.json records" in line
    assert "pip install --force-reinstall --no-deps adaptkit" in line
    line = one_error(cli("eval", shipped_copy, *ROLL, "--out", tmp_path / "ev"))
    assert "its weights' fingerprint" in line and not (tmp_path / "ev").exists()
    with pytest.raises(AdaptkitError, match="its weights' fingerprint"):
        load_checkpoint(shipped_copy)  # what finetune and the main job load the base through
    assert snapshot(shipped_copy) == before


@pytest.mark.parametrize(
    ("damage", "message"),
    [("{", "provenance.json: invalid JSON"), ("[1, 2]", "provenance.json: expected a JSON object")],
    ids=["truncated", "not an object"],
)
def test_a_damaged_provenance_is_not_taken_for_no_base(shipped_copy, damage, message):
    from adaptkit.bootstrap.recipe import Recipe
    from adaptkit.bootstrap.ship import shipped_base

    (shipped_copy / "provenance.json").write_text(damage)
    with pytest.raises(AdaptkitError, match=message) as refused:
        shipped_base(Recipe(), shipped_copy)  # was None: the main job then built a whole base
    assert "git checkout -- src/adaptkit/bases" in str(refused.value)
    line = one_error(cli("inspect", shipped_copy))
    assert message in line


def test_half_a_shipped_base_is_not_taken_for_no_base(shipped_copy):
    from adaptkit.bootstrap.recipe import Recipe
    from adaptkit.bootstrap.ship import shipped_base

    (shipped_copy / "provenance.json").unlink()
    with pytest.raises(AdaptkitError, match="provenance.json: missing from the shipped base"):
        shipped_base(Recipe(), shipped_copy)


# -- 8. plugins and names: sizes and digits checked -----------------------------------------------
HUGE_PLUGIN = """
from adaptkit import CANONICAL_JOINTS, RobotSpec, hookimpl

@hookimpl
def register_robots(register):
    register(RobotSpec(
        name="hugebot", task="hugebot_walking_ad", group="hugebot_locomotion",
        obs_names=[f"o{{i}}" for i in range({n})], joint_names=CANONICAL_JOINTS,
        default_joint_angles=(0.0, 0.9, -1.8) * 4,
    ))
"""


def test_a_plugin_robot_with_absurd_observation_dims_is_refused_at_once(tmp_path):
    plugin = tmp_path / "huge.py"
    plugin.write_text(HUGE_PLUGIN.format(n=10**7))
    start = time.perf_counter()
    line = one_error(cli("--plugin", plugin, "robots"))
    assert "robot 'hugebot': field 'obs_names' has 10,000,000 names, more than the 65,536" in line
    assert time.perf_counter() - start < 15  # was 31 s for every command


@pytest.mark.parametrize("name", ["quadfam_０００１", "quadfam_٠٠٠١"])
def test_family_members_take_ascii_digits_only(registry, name):
    with pytest.raises(AdaptkitError, match=f"unknown robot {name!r}"):
        registry.robot(name)
    assert registry.robot("quadfam_0001").name == "quadfam_0001"


# -- 9. signals: one line saying what was kept and how to go on -----------------------------------
def _as_in_a_terminal() -> None:
    """The child's SIGINT and SIGHUP as a terminal gives them: a test runner started in the
    background (`&`, nohup) hands its children both ignored, and an ignored signal stays ignored."""
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def _adaptkit(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "adaptkit", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_in_a_terminal,
    )


def _signal_when(proc: subprocess.Popen, ready, signum: int, timeout: float = 240) -> str:
    """Send `signum` once `ready()` holds; the process's stderr after it exits."""
    try:
        deadline = time.time() + timeout
        while not ready():
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "never got ready"
            time.sleep(0.1)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return err


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    from test_reliability import base as make_base

    return make_base.__wrapped__(tmp_path_factory)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signalled_finetune_says_what_was_kept_and_how_to_resume(base, tmp_path, signum):
    data = write_mc_data(tmp_path)
    # --val-share 0: early stopping (issue 33, on by default for fine-tunes) would end this tiny
    # run after a few epochs, and a signal landing as the interpreter exits kills it outright
    args = finetune_args(
        base, data, tmp_path / "models", "run", "--epochs", "400", "--val-share", "0"
    )
    run = tmp_path / "models" / "run"
    proc = _adaptkit(*args)
    err = _signal_when(proc, lambda: (run / "0001_epoch").is_dir(), signum)
    assert proc.returncode == 128 + signum, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    name = signal.Signals(signum).name
    assert f"{run}: interrupted by {name}; " in lines[0]
    assert "is complete: `--resume` continues after epoch" in lines[0]
    assert lines[0].endswith(" --resume") and "to continue: adaptkit finetune minicheetah" in err
    assert not list(run.glob(".*tmp-*"))  # the epoch being written was not left half-done


def test_a_signalled_pretrain_says_what_was_kept_and_how_to_resume(tmp_path):
    from helpers_train import make_world

    paths = make_world(tmp_path)
    tiny = Path(__file__).resolve().parents[1] / "configs" / "model_tiny.yaml"
    run = tmp_path / "models" / "base"
    proc = _adaptkit("pretrain", paths["pretrain_config"], "--data-dir", paths["data"],
                     "--save-dir", tmp_path / "models", "--epochs", 400, "--batch-size", 8,
                     "--precision", "fp32", "--model-config", tiny)  # fmt: skip
    err = _signal_when(proc, lambda: (run / "0001_epoch").is_dir(), signal.SIGTERM)
    assert proc.returncode == 143
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {run}: interrupted by SIGTERM; ")
    assert "to continue: adaptkit pretrain " in lines[0] and lines[0].endswith(" --resume")


def test_a_signalled_collect_says_nothing_of_it_was_kept(tmp_path):
    data = tmp_path / "data"
    proc = _adaptkit("collect", "minicheetah", "--histories", 4, "--num-envs", 4,
                     "--steps-per-history", 200000, "--data-dir", data)  # fmt: skip
    folder = data / "minicheetah_trajectories"
    err = _signal_when(proc, lambda: list(data.glob(".minicheetah_trajectories.tmp-*/.history_*")),
                       signal.SIGTERM)  # fmt: skip
    assert proc.returncode == 143
    assert err.strip().splitlines() == [
        f"error: {folder}: interrupted by SIGTERM before the collection was complete: none of "
        "it was kept (nothing written); the same command starts over"
    ]
    assert not folder.exists() and not list(data.glob(".minicheetah_trajectories.*"))


def test_a_signalled_export_leaves_no_temp_and_a_killed_ones_is_swept(quad, tmp_path):
    out = tmp_path / "exp"
    assert cli("export", quad.parent, "--robot", "go1", "--out", out).exit_code == 0
    before = snapshot(out)
    proc = _adaptkit("export", quad.parent, "--robot", "go1", "--out", out, "--context-len", 16)
    err = _signal_when(proc, lambda: list(out.glob(".*tmp-*")), signal.SIGTERM)
    assert proc.returncode == 143 and err.strip() == "error: interrupted by SIGTERM"
    assert snapshot(out) == before  # the earlier pair whole, nothing hidden left
    # what a kill -9 leaves (no handler runs), and an older adaptkit's temp file, are swept
    dead = out / ".outputs.tmp-deadbeef"
    dead.mkdir()
    (dead / "policy.pt").write_bytes(b"PK\x03\x04partial")
    (out / ".policy.pt.tmp-0badf00d").write_bytes(b"partial")
    assert cli("export", quad.parent, "--robot", "go1", "--out", out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["policy.pt", "policy.pt.json"]


def test_a_live_writers_temp_folder_is_not_swept(tmp_path):
    from adaptkit.fileio import file_set

    with file_set(tmp_path, "first") as live:
        (live / "a.txt").write_text("a")
        with file_set(tmp_path, "second") as other:  # sweeps dead sets: not the live one
            (other / "b.txt").write_text("b")
        assert live.is_dir() and (live / "a.txt").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


# -- 10. refusals name the right cause ------------------------------------------------------------
def test_a_missing_checkpoint_is_not_a_checkpoint_that_records_no_robot(tmp_path):
    missing = tmp_path / "nope"
    line = one_error(cli("export", missing, "--out", tmp_path / "e"))
    assert f"checkpoint {missing}: no such file or directory" in line
    assert "records no robot" not in line
    with pytest.raises(AdaptkitError, match="no such file or directory"):
        adaptkit.load_policy(missing)


def test_a_directory_is_not_a_missing_file(tmp_path):
    folder = tmp_path / "policy.pt"
    folder.mkdir()
    line = one_error(cli("eval", "--exported", folder, *ROLL, "--out", tmp_path / "ev"))
    assert f"{folder}: a directory, not a policy file" in line
    with pytest.raises(AdaptkitError, match="expected a NNNN_epoch dir"):  # a folder: a checkpoint
        adaptkit.load_policy(folder)
    (tmp_path / "d.yaml").mkdir()
    line = one_error(cli("data", "validate", tmp_path / "d.yaml", "--data-dir", tmp_path))
    assert "is a directory, not a file" in line and "not found" not in line


# -- 11. a resumed run's files are byte-identical to the uninterrupted run's ----------------------
def test_adapter_weights_are_the_same_bytes_every_time():
    """safetensors keeps its metadata in a hash map: its order changed from save to save."""
    import torch
    from safetensors.torch import save

    from adaptkit.ckpt.adapter import canonical_header

    tensors = {"b.weight": torch.ones(3), "a.weight": torch.arange(4.0)}
    blobs = {canonical_header(save(tensors, metadata={"format": "pt", "group": "g"}))
             for _ in range(24)}  # fmt: skip
    assert len(blobs) == 1
    blob = blobs.pop()
    n = int.from_bytes(blob[:8], "little")  # the format: u64 header length, JSON, data
    header = json.loads(blob[8 : 8 + n])
    assert list(header) == sorted(header) and list(header["__metadata__"]) == ["format", "group"]


def test_a_resumed_lora_run_ends_byte_identical(base, tmp_path, monkeypatch):
    from adaptkit.train.loop import Trainer

    data = write_mc_data(tmp_path)
    extra = ("--epochs", "2", "--lora-rank", "2")
    assert cli(*finetune_args(base, data, tmp_path / "a", "run", *extra)).exit_code == 0
    real = Trainer.train_step

    def diverge_in_epoch_2(self, it):
        loss = real(self, it)
        return float("nan") if self.global_step > self.steps_per_epoch + 3 else loss

    monkeypatch.setattr(Trainer, "train_step", diverge_in_epoch_2)
    one_error(cli(*finetune_args(base, data, tmp_path / "b", "run", *extra)))
    monkeypatch.setattr(Trainer, "train_step", real)
    r = cli(*finetune_args(base, data, tmp_path / "b", "run", *extra, "--resume"))
    assert r.exit_code == 0, r.output
    a, b = (tmp_path / x / "run" / "0002_epoch" for x in "ab")
    names = sorted(p.name for p in a.iterdir())
    assert "state.pth" in names and "adapter_model.safetensors" in names
    # the configs record the command as typed, whose --save-dir is each run's own folder
    same_dir = (str(tmp_path / "b").encode(), str(tmp_path / "a").encode())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes().replace(*same_dir), name


# == This round's own probes: classes nobody had tried (docs/reliability.md counts them) ==========
# -- P1. non-ASCII digits where adaptkit parses numbers out of names ------------------------------
def test_an_epoch_folder_with_fullwidth_digits_is_not_the_newest_epoch(quad, tmp_path):
    from adaptkit.ckpt.layout import latest_checkpoint

    run = tmp_path / "run"
    shutil.copytree(quad.parent, run)
    shutil.copytree(run / "0001_epoch", run / "０００５_epoch")
    assert latest_checkpoint(run).name == "0001_epoch"


def test_a_chunk_named_with_fullwidth_digits_is_refused(tmp_path):
    import h5py
    import yaml
    from test_reliability import MC_TASK, good_arrays

    folder = tmp_path / "data" / "minicheetah_trajectories"
    folder.mkdir(parents=True)
    obs, act, rew, step = good_arrays()
    with h5py.File(folder / "history_0.h5", "w") as f:  # the format by hand: start-end groups
        for name, s, e in (("０-４９", 0, 50), ("50-119", 50, 120)):
            g = f.create_group(name)
            g["proprio_observation"], g["action"] = obs[s:e], act[s:e]
            g["reward"], g["step_num"] = rew[s:e], step[s:e].astype(np.int32)
    (tmp_path / "mc.yaml").write_text(yaml.safe_dump(MC_TASK))
    line = one_error(cli("data", "validate", tmp_path / "mc.yaml", "--data-dir", tmp_path / "data"))
    assert "top-level entry '０-４９' is not a chunk group named 'start-end'" in line


def test_collect_never_takes_a_fullwidth_named_history_for_its_own(tmp_path):
    from test_reliability import good_arrays, write_h5

    data = tmp_path / "data"
    write_h5(data / "minicheetah_trajectories" / "history_００１.h5", *good_arrays())
    before = snapshot(data)
    line = one_error(cli("collect", "minicheetah", "--histories", 1, "--data-dir", data, *COLLECT))
    assert "holds files collect did not write (history_００１.h5)" in line
    assert snapshot(data) == before  # was deleted with the folder it replaced


# -- P2. a directory (or a file) where the other is expected: the right cause ---------------------
def test_directories_given_as_files_are_named_as_directories(quad, tmp_path):
    data = write_mc_data(tmp_path)
    for name in ("plug.py", "stats.json", "model.yaml"):
        (tmp_path / name).mkdir()
    line = one_error(cli("--plugin", tmp_path / "plug.py", "robots"))
    assert f"plugin file {tmp_path / 'plug.py'}: a directory, not a file" in line
    args = finetune_args(
        quad.parent, data, tmp_path / "m", "run", "--stats", tmp_path / "stats.json"
    )
    line = one_error(cli(*args))
    assert f"stats file {tmp_path / 'stats.json'}: a directory, not a file" in line
    line = one_error(cli("pretrain", tmp_path / "mc.yaml", "--data-dir", data, "--save-dir",
                         tmp_path / "m", "--model-config", tmp_path / "model.yaml"))  # fmt: skip
    assert f"model config {tmp_path / 'model.yaml'}: a directory, not a file" in line
    assert not (tmp_path / "m").exists()


def test_a_file_where_the_history_folder_should_be_is_named_as_a_file(tmp_path):
    data = write_mc_data(tmp_path)
    shutil.rmtree(data / "minicheetah_trajectories")
    (data / "minicheetah_trajectories").write_text("not a folder")
    line = one_error(cli("data", "validate", tmp_path / "mc.yaml", "--data-dir", data))
    assert "minicheetah_trajectories: the learning-history folder is a file, not a folder" in line


def test_a_directory_as_the_expert_is_refused(tmp_path):
    (tmp_path / "expert.pt").mkdir()
    line = one_error(
        cli("demonstrator", "go1", "--num-envs", 1, "--expert", tmp_path / "expert.pt")
    )
    assert "not 'trot' and not a file" in line


# -- P3. export folders in unusual states: a file, a dangling link, racing exports, renames ------
def test_export_into_a_file_or_a_dangling_link_is_one_line(quad, tmp_path):
    (tmp_path / "file").write_text("keep")
    line = one_error(cli("export", quad.parent, "--robot", "go1", "--out", tmp_path / "file"))
    assert "cannot create the export folder: it exists and is not a directory" in line
    assert (tmp_path / "file").read_text() == "keep"
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    line = one_error(cli("export", quad.parent, "--robot", "go1", "--out", tmp_path / "link"))
    assert "a symbolic link to" in line and not (tmp_path / "gone").exists()


def test_exports_racing_into_one_folder_leave_a_pair_that_loads(quad, tmp_path):
    out = tmp_path / "out"
    procs = [_adaptkit("export", quad.parent, "--robot", "go1", "--out", out, "--context-len", c)
             for c in (8, 16, 24)]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    policy = adaptkit.load_policy(out / "policy.pt")
    assert policy.act(np.zeros(45)).shape == (12,)
    assert sorted(p.name for p in out.iterdir()) == ["policy.pt", "policy.pt.json"]


def test_an_export_into_the_epoch_folder_and_a_renamed_pair_both_work(quad, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(quad.parent, run)
    assert cli("export", run, "--robot", "go1", "--out", run / "0001_epoch").exit_code == 0
    assert cli("inspect", run).exit_code == 0
    (run / "0001_epoch" / "policy.pt").rename(tmp_path / "walk.pt")
    (run / "0001_epoch" / "policy.pt.json").rename(tmp_path / "walk.pt.json")
    assert adaptkit.load_policy(tmp_path / "walk.pt").act(np.zeros(45)).shape == (12,)


# -- P4. the forms a policy's input may take -------------------------------------------------------
def test_policy_inputs_in_plain_forms_act_and_complex_ones_are_refused(quad):
    policy = adaptkit.load_policy(quad.parent, "go1")
    assert policy.act([0] * 45, 0).shape == (12,)  # a list of ints
    assert policy.act(np.zeros(45), [0.5]).shape == (12,)  # a one-element reward
    assert adaptkit.load_policy(quad.parent, "go1").act(np.zeros((1, 45)), [0.0]).shape == (1, 12)
    policy.close()
    assert np.isfinite(policy.act(np.zeros(45), 0.0)).all()  # close() restores threads only
    obs = np.zeros(45, complex)
    obs[3] = 1j
    with pytest.raises(AdaptkitError, match="act: obs must be real numbers .* complex128"):
        policy.act(obs)


# -- P5. plugin spec values past the checked ones ------------------------------------------------
ODD_PLUGIN = """
from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, RobotSpec, hookimpl

@hookimpl
def register_robots(register):
    register(RobotSpec(name="oddbot", task="oddbot_walking_ad", group="oddbot_locomotion",
        obs_names={obs}, joint_names=CANONICAL_JOINTS, default_joint_angles={pose}, {extra}))
"""
ODD = {
    "kp inf": ({"extra": "kp=float('inf')"}, "field 'kp' must be a finite number > 0, got inf"),
    "action_scale nan": ({"extra": "action_scale=float('nan')"}, "field 'action_scale' must be"),
    "int obs_names": ({"obs": "list(range(45))"}, "field 'obs_names' must be strings"),
    "string pose": (
        {"pose": "('0.0', '0.9', '-1.8') * 4"},
        "field 'default_joint_angles' must be finite numbers",
    ),
    "infinite bounds": (
        {"extra": "action_bounds=(float('-inf'), float('inf'))"},
        "field 'action_bounds' must be finite (low, high)",
    ),
}


@pytest.mark.parametrize(("fields", "message"), ODD.values(), ids=ODD.keys())
def test_plugin_spec_values_must_be_finite_real_numbers_and_names(tmp_path, fields, message):
    values = {"obs": "LOCOMOTION_OBS_NAMES", "pose": "(0.0, 0.9, -1.8) * 4", "extra": ""} | fields
    plugin = tmp_path / "oddbot.py"
    plugin.write_text(ODD_PLUGIN.format(**values))
    line = one_error(cli("--plugin", plugin, "robots", "--json"))
    assert "robot 'oddbot': " + message in line


# -- P6. non-finite numbers (NaN / Infinity tokens) in a checkpoint's JSON ------------------------
@pytest.mark.parametrize(
    ("file", "edit", "message"),
    [
        ("metadata.json", lambda m: m["go1_walking_ad"].update(reward_scale=float("nan")),
         "field 'reward_scale' must be a finite number"),
        ("config.json", lambda c: c.update(context_len=float("nan")),
         "field 'context_len' must be a positive integer, got nan"),
        ("metadata.json", lambda m: m["go1_walking_ad"]["obs_mean"].__setitem__(0, float("inf")),
         "'obs_mean' must be a non-empty list of finite numbers"),
    ],
    ids=["reward_scale NaN", "context_len NaN", "obs_mean Infinity"],
)  # fmt: skip
def test_non_finite_numbers_in_checkpoint_json_are_refused(quad, tmp_path, file, edit, message):
    run = tmp_path / "run"
    shutil.copytree(quad.parent, run)
    path = run / "0001_epoch" / file
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))  # Python writes the NaN / Infinity tokens
    line = one_error(cli("inspect", run))
    assert f"{path}: " in line and message in line


# -- P7. signals in the short commands: eval's outputs -------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signalled_eval_keeps_the_earlier_outputs_and_leaves_no_temp(quad, tmp_path, signum):
    out = tmp_path / "ev"
    assert cli("eval", quad.parent, *ROLL, "--out", out).exit_code == 0
    before = snapshot(out)
    # the signal must land while eval writes its set: the writing takes milliseconds, so the
    # child's plot step is held open (test instrumentation only; the command runs unchanged)
    hold = (
        "import sys, time; import adaptkit.evaluate.report as r; p = r.plot_curves; "
        "r.plot_curves = lambda *a, **k: (p(*a, **k), time.sleep(60)); "
        "from adaptkit.cli import main; sys.argv[0] = 'adaptkit'; main()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", hold, "eval", str(quad.parent), *ROLL, "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=_as_in_a_terminal,
    )  # fmt: skip
    err = _signal_when(proc, lambda: list(out.glob(".outputs.tmp-*/curve.png")), signum)
    assert proc.returncode == 128 + signum
    assert err.strip() == f"error: interrupted by {signal.Signals(signum).name}"
    assert snapshot(out) == before
    assert not list(out.glob(".*tmp-*"))


# -- P8. eval --exported with options the file cannot honour (beyond item 9's) --------------------
def test_eval_exported_refuses_kv_dtype_device_and_video(exported, tmp_path):
    policy = exported["torchscript"]
    for extra, message in [
        (["--kv-dtype", "bf16"], "--kv-dtype bf16: "),
        (["--video"], "--video: films a checkpoint's rollout"),
        (["--device", "cpu", "--reset-context"], "--reset-context: "),
    ]:
        line = one_error(cli("eval", "--exported", policy, *ROLL, "--out", tmp_path / "e", *extra))
        assert message in line
    assert not (tmp_path / "e").exists()
