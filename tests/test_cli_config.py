"""Config-file runs (issue 34, item 3) and the command line's rough edges (item 5): --config with
flags overriding it, --print-config, unknown keys and wrong types refused in one line naming the
file and the key, the resolved config saved beside the run and re-runnable; the robot taken from
the run; usage errors as one line; help that neither cuts option names nor breaks sentences; a
one-episode plot's ticks; export/ and push/ ignored by git."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from helpers_model import reference_config, tiny_meta, tiny_model
from typer.testing import CliRunner

from adaptkit.ckpt.checkpoint import save_checkpoint
from adaptkit.cli import app
from adaptkit.model import GroupDims

QUAD = {"quadruped_locomotion": GroupDims(45, 12)}
REPO = Path(__file__).resolve().parents[1]


def _run(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env, prog_name="adaptkit")


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(body)
    return path


ARGS = {"finetune": ["minicheetah"], "pretrain": ["d.yaml"], "eval": [], "compare": ["--robot",
        "go1", "a"], "study": []}  # fmt: skip


@pytest.mark.parametrize("command", list(ARGS))
def test_every_job_command_prints_its_resolved_config(command, tmp_path):
    res = _run(command, *ARGS[command], "--print-config")
    assert res.exit_code == 0, res.output
    body = yaml.safe_load(res.stdout)
    assert isinstance(body, dict) and "config" not in body and "print-config" not in body


def test_flags_override_the_file(tmp_path):
    cfg = _config(
        tmp_path, "robot: minicheetah\nepochs: 3\nbatch_size: 16\nlr: 1e-3\neval: false\n"
    )
    res = _run("finetune", "--config", cfg, "--epochs", "5", "--print-config")
    assert res.exit_code == 0, res.output
    got = yaml.safe_load(res.stdout)
    assert got["robot"] == "minicheetah" and got["epochs"] == 5 and got["batch-size"] == 16
    assert got["lr"] == 0.001 and got["eval"] is False
    # the printed config is itself a config file giving the same resolution
    again = _config(tmp_path, res.stdout)
    assert yaml.safe_load(_run("finetune", "--config", again, "--print-config").stdout) == got


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("epoch: 3\n", "unknown key 'epoch' (did you mean 'epochs'?)"),
        ("epochs: 3.5\n", "epochs: "),
        ("epochs: ten\n", "epochs: "),
        ("mode: sideways\n", "mode: "),
        ("save-dir: [a, b]\n", "save-dir: expected one value"),
        ("- epochs\n", "expected a mapping of option names to values"),
        ("epochs: 1\nepochs: 2\n", "duplicate key"),
        ("epochs: 1\n'epochs': 2\n", "duplicate key"),
        ("epochs: 1\nepochs_: 2\n", "unknown key 'epochs_'"),
        ("lr: 1\nlr_: 2\n", "unknown key 'lr_'"),
    ],
)
def test_bad_config_files_are_one_line_naming_the_key(tmp_path, body, expected):
    cfg = _config(tmp_path, body)
    res = _run("finetune", "minicheetah", "--config", cfg)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {cfg}: "), res.output
    assert expected in lines[0], res.output


def test_an_eval_saves_its_config_and_repeats_from_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tiny_model(groups=QUAD)
    tasks = {"go1_walking_ad": "quadruped_locomotion"}
    save_checkpoint(tmp_path / "run" / "0001_epoch", model, tiny_meta(QUAD, tasks),
                    reference_config(model))  # fmt: skip
    cfg = _config(tmp_path, "checkpoint: run\nrobot: go1\nnum-envs: 2\nepisodes: 1\n")
    res = _run("eval", "--config", cfg, "--episode-length", "6", "--out", "first", "--json")
    assert res.exit_code == 0, res.output
    saved = tmp_path / "first" / "run.yaml"
    resolved = yaml.safe_load(saved.read_text())
    assert resolved["episode-length"] == 6 and resolved["num-envs"] == 2
    res2 = _run("eval", "--config", saved, "--out", "second", "--json")
    assert res2.exit_code == 0, res2.output
    a, b = json.loads(res.stdout), json.loads(res2.stdout)
    assert a["per_episode"] == b["per_episode"] and a["mean_return"] == b["mean_return"]


def test_eval_without_a_recorded_robot_says_so(tmp_path):
    model = tiny_model(groups=QUAD)
    ckpt = save_checkpoint(tmp_path / "run" / "0001_epoch", model,
                           tiny_meta(QUAD, {"go1_walking_ad": "quadruped_locomotion"}),
                           reference_config(model))  # fmt: skip
    res = _run("eval", ckpt)
    assert res.exit_code == 1 and "records no robot; name the one to run" in res.output


def test_a_mistyped_option_is_one_line():
    res = _run("finetune", "minicheetah", "--epoch", "3")
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "error: No such option: --epoch (Possible options: --epochs, --keep) "
        "(see `adaptkit finetune --help`)"
    ]
    assert "╭" not in res.output


def test_help_keeps_option_names_and_sentences_whole():
    res = _run("finetune", "--help", env={"COLUMNS": "150"})
    assert res.exit_code == 0 and "…" not in res.output
    assert "--dataset-config-paths, --dataset_config_paths" in res.output
    assert "the base shipped with adaptkit (adaptkit:default)" in " ".join(res.output.split())
    assert "built from Go1/Go2/A1" not in res.output
    top = _run("--help", env={"COLUMNS": "150"}).output
    # a docstring's own line breaks no longer split its sentence: one line per command
    commands = top.split("Commands:\n", 1)[1].splitlines()
    assert len(commands) >= 15
    assert all(re.match(r"^  [a-z-]+ +\S", line) for line in commands), commands


def test_a_one_episode_plot_has_a_tick_at_episode_one():
    from adaptkit.evaluate.plot import curves_figure

    fig = curves_figure({"a": [{"episode": 0, "mean": 1.0, "std": 0.1, "n": 2}]}, "t")
    assert list(fig.axes[0].get_xticks()) == [1]


def test_outputs_in_the_working_folder_are_ignored_by_git():
    ignored = set((REPO / ".gitignore").read_text().split())
    assert {"/export/", "/push/", "/models/", "/eval/", "/compare/", "/study/"} <= ignored


def test_an_argument_and_an_option_of_the_same_name_keep_apart(tmp_path):
    """compare has a `models` argument and a `--models` marker flag: `models` is the argument;
    an option's other spellings (`label` for --labels) are keys too."""
    cfg = _config(tmp_path, "robot: go1\nmodels: [x, y]\nlabel: a,b\n")
    res = _run("compare", "--config", cfg, "--print-config")
    assert res.exit_code == 0, res.output
    got = yaml.safe_load(res.stdout)
    assert got["models"] == ["x", "y"] and got["labels"] == ["a,b"] and got["models_flag"] is False
