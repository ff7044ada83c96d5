"""The seed guide's two command lines, exactly as printed (backslashes included, split as a shell
splits them), against a fork-layout checkpoint and adaptkit's own; a zero-shot row no base
group fits is a note; a failure after training says where the checkpoints are."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from helpers_fork import (
    FORK_GROUP,
    FORK_TASKS,
    fork_config,
    fork_state_dict,
    task_entry,
    write_fork_checkpoint,
    write_fork_task,
)
from typer.testing import CliRunner

import adaptkit.pipeline as pipeline
from adaptkit.ckpt.layout import latest_checkpoint
from adaptkit.cli import app
from adaptkit.data.history import read_task_metadata
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import EvalSettings

REPO = Path(__file__).resolve().parents[1]
# As the seed guide prints them: a shell keeps the backslashes inside the single quotes.
FINETUNE = (
    "finetune minicheetah --pretrained_path {base} --dataset_config_paths "
    "'[\\\"configs/minicheetah_finetune_config.yaml\\\"]' --name {name} --epochs 10 "
    "--data_dir {data} --freeze_transformer --lr 0.0001"
)
EVAL = (
    "eval --vintix_path {ckpt} --robot_type minicheetah --parallel --num_envs 100 --max_steps 1000"
)
runner = CliRunner()


def run(line: str, **kw: str):
    argv = shlex.split(line.format(**kw))
    return runner.invoke(app, argv, catch_exceptions=False)


@pytest.fixture
def small_compare(monkeypatch):
    """The fine-tune's comparison on 2 envs × 1 short episode (the command line is unchanged)."""
    settings = EvalSettings(num_envs=2, episodes=1, seed=777, episode_length=40)
    monkeypatch.setattr(pipeline.Recipe, "eval_settings", lambda self, **given: settings)


@pytest.fixture(scope="module")
def fork_world(tmp_path_factory):
    """A fork-size checkpoint and 33-dim Mini Cheetah histories as the fork writes them."""
    root = tmp_path_factory.mktemp("fork_world")
    write_fork_checkpoint(root / "models" / "fork" / "0015_epoch")
    (root / "configs").mkdir()
    shutil.copy(REPO / "configs" / "minicheetah_finetune_config.yaml", root / "configs")
    write_fork_task(root / "data" / "minicheetah_trajectories", histories=2, steps=600)
    return root


def test_seed_lines_against_a_fork_checkpoint(fork_world, small_compare, monkeypatch):
    monkeypatch.chdir(fork_world)
    r = run(FINETUNE, base="models/fork", name="N", data="data")
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())  # rich wraps long notes
    assert "'minicheetah' in observation layout fork33 (33 dims)" in out
    assert "store one observation row more than actions per chunk" in out
    assert "token order act,rew,obs (not recorded; config.json has the quadruped fork's" in out
    assert "frozen weights verified" in out
    table = json.loads((fork_world / "models/N/compare/compare.json").read_text())["table"]
    rows = {row["label"]: row for row in table}
    assert rows["zero-shot"]["mode"] == "zero-shot" and rows["zero-shot"]["group"] == FORK_GROUP
    assert rows["zero-shot"]["obs_layout"] == "fork33"
    assert rows["fine-tuned"]["mode"] == "native" and rows["fine-tuned"]["obs_layout"] == "fork33"
    ckpt = latest_checkpoint(fork_world / "models" / "N")  # early stopping keeps the best
    assert json.loads((ckpt / "config.json").read_text())["token_order"] == "act,rew,obs"
    task = json.loads((ckpt / "metadata.json").read_text())["minicheetah_walking_ad"]
    assert task["observation_shape"] == {"proprio": [33]} and task["obs_layout"] == "fork33"

    r = run(EVAL, ckpt="models/N")
    assert r.exit_code == 0, r.output
    s = json.loads((fork_world / "eval" / "minicheetah" / "summary.json").read_text())
    assert (s["num_envs"], s["control_steps"], s["obs_layout"]) == (100, 1000, "fork33")
    assert s["num_episodes"] >= 100 and s["token_order"] == "act,rew,obs"
    assert s["token_order_source"] == "recorded in config.json"


def test_without_data_the_robot_is_collected_in_the_bases_layout(
    fork_world, small_compare, monkeypatch
):
    """`finetune ROBOT --pretrained-path FORK` with no data: collected in the layout a base
    group fits (33-dim), so the zero-shot row exists."""
    monkeypatch.chdir(fork_world)
    (fork_world / "empty").mkdir()
    r = runner.invoke(
        app,
        ["finetune", "minicheetah", "--pretrained-path", "models/fork", "--data-dir", "empty",
         "--name", "auto", "--epochs", "1", "--batch-size", "4", "--recipe", "tiny"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "layout fork33 (33 dims): fits the base's group 'quadruped_locomotion'" in out
    meta = read_task_metadata(fork_world / "empty" / "minicheetah_trajectories_fork33")
    assert meta["obs_layout"] == "fork33"
    table = json.loads((fork_world / "models/auto/compare/compare.json").read_text())["table"]
    assert [row["obs_layout"] for row in table[2:]] == ["fork33", "fork33"]


def test_seed_lines_against_adaptkits_own_checkpoint(tmp_path, small_compare, monkeypatch):
    from helpers_train import TINY_MODEL, make_world, tiny_train

    from adaptkit.train import pretrain

    paths = make_world(tmp_path, mc_steps=300)  # 45-dim histories, adaptkit's own writer
    pretrain([paths["pretrain_config"]], paths["data"], "base", tmp_path / "models", TINY_MODEL,
             tiny_train(epochs=1))  # fmt: skip
    (tmp_path / "configs").mkdir()
    shutil.copy(REPO / "configs" / "minicheetah_finetune_config.yaml", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    r = run(FINETUNE, base="models/base", name="N", data="data")
    assert r.exit_code == 0, r.output
    assert "token order" not in r.output  # recorded: nothing to say
    rows = {
        row["label"]: row
        for row in json.loads((tmp_path / "models/N/compare/compare.json").read_text())["table"]
    }
    assert rows["zero-shot"]["obs_layout"] == rows["fine-tuned"]["obs_layout"] == "locomotion45"
    r = run(EVAL, ckpt="models/N")
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "eval" / "minicheetah" / "summary.json").read_text())
    assert (s["num_envs"], s["control_steps"], s["mode"]) == (100, 1000, "native")
    assert s["token_order"] == "obs,act,rew"


@pytest.fixture(scope="module")
def odd_base(tmp_path_factory):
    """A fork-layout base whose quadruped group reads 48-dim observations: no layout of the
    Mini Cheetah fits it, so a zero-shot row cannot exist."""
    root = tmp_path_factory.mktemp("odd")
    sizes = dict(observation_emb_dim=16, action_emb_dim=8, reward_emb_dim=8, hidden_dim=32,
                 transformer_heads=2, intermediate_size=32)  # fmt: skip
    write_fork_checkpoint(
        root / "models" / "odd" / "0003_epoch",
        fork_state_dict({FORK_GROUP: (48, 12)}, **sizes),
        {t: task_entry(FORK_GROUP, 48, 12, i) for i, t in enumerate(FORK_TASKS)},
        fork_config(context_len=16, **sizes),
    )
    (root / "configs").mkdir()
    shutil.copy(REPO / "configs" / "minicheetah_finetune_config.yaml", root / "configs")
    write_fork_task(root / "data" / "minicheetah_trajectories", histories=2, steps=400, obs_dim=45)
    return root


def test_zero_shot_that_cannot_exist_is_a_note(odd_base, small_compare, monkeypatch):
    monkeypatch.chdir(odd_base)
    r = run(FINETUNE, base="models/odd", name="N", data="data")
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "zero-shot: zero-shot not applicable: checkpoint has no group whose dims fit" in out
    report = json.loads((odd_base / "models/N/compare/compare.json").read_text())
    rows = {row["label"]: row for row in report["table"]}
    assert rows["zero-shot"]["mode"] == "not applicable"
    assert rows["zero-shot"]["mean_return"] is None and "48, act 12" in rows["zero-shot"]["note"]
    assert rows["fine-tuned"]["mean_return"] is not None
    assert "zero-shot" in report["not_applicable"]
    # the same through `compare`: the command succeeds, the row says why
    r = runner.invoke(
        app,
        ["compare", "--robot", "minicheetah", "zs=models/odd", "ft=models/N", "--num-envs", "2",
         "--episodes", "1", "--episode-length", "30", "--no-demonstrator", "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [row["mode"] for row in out["table"]] == [None, "not applicable", "native"]


def test_a_failure_after_training_says_where_the_checkpoints_are(
    odd_base, small_compare, monkeypatch
):
    monkeypatch.chdir(odd_base)

    def broken(*args, **kwargs):
        raise AdaptkitError("simulator exploded")

    monkeypatch.setattr(pipeline, "compare", broken)
    r = runner.invoke(app, shlex.split(FINETUNE.format(base="models/odd", name="M", data="data")))
    assert r.exit_code == 1
    line = " ".join(r.output.split())
    assert "error: comparison failed: simulator exploded" in line
    newest = latest_checkpoint(odd_base / "models" / "M")  # early stopping keeps the best
    assert f"the trained checkpoints are in models/M (newest models/M/{newest.name})" in line
    assert (newest / "adapter_config.json").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--obs-layout", "fork34"], "layout 'fork34' is not one of locomotion45, fork33"),
        (
            ["--obs-layout", "locomotion45", "--dataset-config-paths",
             "configs/minicheetah_finetune_config.yaml"],
            "--obs-layout locomotion45: the histories of 'minicheetah_walking_ad'",
        ),
    ],
)  # fmt: skip
def test_layout_errors_are_one_line(fork_world, monkeypatch, extra, message):
    monkeypatch.chdir(fork_world)
    args = ["finetune", "minicheetah", "--pretrained-path", "models/fork", "--name", "err"]
    r = runner.invoke(app, [*args, "--no-eval", *extra])
    assert r.exit_code == 1 and message in " ".join(r.output.split())
    # one error line (the --init auto probe's notes may come before it), no traceback
    errors = [x for x in r.output.strip().splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and r.output.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in r.output
    assert not (fork_world / "models" / "err").exists()
