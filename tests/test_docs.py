"""Docs that run as written (issue 34, item 4): every Python and bash block of README.md and
docs/*.md is checked, so an import or a flag that moves breaks CI instead of a reader.

- every Python block parses, and every name it imports exists (modules imported, names looked
  up; a third-party package that is not installed skips only its own imports);
- every `adaptkit ...` line of a bash block names a real command, and every `--option` on it is
  one of that command's (or the root's) options;
- a block marked `<!-- docs-test: run (needs PKG) -->` runs in full, Python or bash (skipped
  without PKG); one marked `toy` runs its own text on a toy-size world of what the policy pages
  assume (a fine-tune run, its exports, its push in a Hub cache);
- the quickstart's whole tour (docs/quickstart_tiny.md) runs in a temp folder (slow);
- the extras table of docs/install.md is checked against pyproject.toml.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import typer

from adaptkit.cli import app

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARK = re.compile(r"<!--\s*docs-test:\s*(\w+)(?:\s*\(needs ([\w.]+)\))?\s*-->")


def blocks(lang: str) -> list[tuple[str, int, str, str | None]]:
    """(page, line, code, marker) of every fenced block in `lang` on the pages."""
    out = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            m = _FENCE.match(lines[i].strip())
            if m and m.group(1):
                start, body = i, []
                i += 1
                while i < len(lines) and lines[i].strip() != "```":
                    body.append(lines[i])
                    i += 1
                prev = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
                mark = _MARK.search(prev)
                if m.group(1) == lang:
                    code = "\n".join(_dedent(body))
                    out.append((page.relative_to(REPO).as_posix(), start + 1, code, mark))
            i += 1
    return out


def _dedent(lines: list[str]) -> list[str]:
    pad = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return [x[pad:] for x in lines]


def _ids(items):
    return [f"{page}:{line}" for page, line, *_ in items]


PYTHON = blocks("python")
BASH = blocks("bash")


@pytest.mark.parametrize(("page", "line", "code", "mark"), PYTHON, ids=_ids(PYTHON))
def test_python_blocks_parse_and_import_what_exists(page, line, code, mark):
    tree = ast.parse(code, f"{page}:{line}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                _import(alias.name, page, line)
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = _import(node.module, page, line)
            if module is None:
                continue
            for alias in node.names:
                if not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        pytest.fail(f"{page}:{line}: `from {node.module} import {alias.name}`: "
                                    f"{node.module} has no {alias.name}")  # fmt: skip


def _import(name: str, page: str, line: int):
    top = name.split(".")[0]
    if top != "adaptkit" and importlib.util.find_spec(top) is None:
        return None  # an extra that is not installed here: its own test runs where it is
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        if (
            missing
            and missing.split(".")[0] != "adaptkit"
            and not importlib.util.find_spec(missing.split(".")[0])
        ):
            return None  # an adaptkit module of an extra that is not installed here
        pytest.fail(f"{page}:{line}: `import {name}` fails: {exc}")


def _commands() -> dict[tuple[str, ...], object]:
    """Every command path (`('eval',)`, `('data', 'validate')`) → its click command."""
    root = typer.main.get_command(app)
    out: dict[tuple[str, ...], object] = {(): root}

    def walk(group, path):
        for name, cmd in getattr(group, "commands", {}).items():
            out[(*path, name)] = cmd
            walk(cmd, (*path, name))

    walk(root, ())
    return out


COMMANDS = _commands()


def _options(cmd) -> set[str]:
    names = {"--help", "-h"}
    for p in cmd.params:
        names |= set(getattr(p, "opts", ())) | set(getattr(p, "secondary_opts", ()) or ())
    return names


def adaptkit_lines(code: str) -> list[list[str]]:
    """The words of each `adaptkit ...` command in a bash block (continuations joined, comments
    and whatever follows `&&`, `;`, `|` split off)."""
    text = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        part: list[str] = []
        for w in [*words, "&&"]:
            if w in ("&&", "||", ";", "|"):
                if part and part[0] == "adaptkit":
                    out.append(part)
                part = []
            else:
                part.append(w)
    return out


@pytest.mark.parametrize(("page", "line", "code", "mark"), BASH, ids=_ids(BASH))
def test_bash_blocks_name_real_commands_and_options(page, line, code, mark):
    root_opts = _options(COMMANDS[()])
    for words in adaptkit_lines(code):
        rest = words[1:]
        while rest and rest[0] in root_opts:  # global options before the command
            rest = rest[2:] if rest[0] in ("--plugin", "--disable-plugin") else rest[1:]
        path: tuple[str, ...] = ()
        while rest and (*path, rest[0]) in COMMANDS:
            path, rest = (*path, rest[0]), rest[1:]
        if not path:
            if rest and not rest[0].startswith("-"):
                pytest.fail(f"{page}:{line}: `{shlex.join(words)}`: no command {rest[0]!r}")
            continue
        known = _options(COMMANDS[path]) | root_opts
        for w in rest:
            if w.startswith("--") and w.split("=", 1)[0] not in known:
                pytest.fail(
                    f"{page}:{line}: `{shlex.join(words)}`: `adaptkit {' '.join(path)}` has no "
                    f"option {w.split('=', 1)[0]}"
                )


RUN = [b for b in PYTHON if b[3] is not None and b[3].group(1) == "run"]
RUN_BASH = [b for b in BASH if b[3] is not None and b[3].group(1) == "run"]


@pytest.mark.parametrize(("page", "line", "code", "mark"), RUN, ids=_ids(RUN))
def test_blocks_marked_run_run(page, line, code, mark, tmp_path, monkeypatch):
    if mark.group(2):
        pytest.importorskip(mark.group(2))
    monkeypatch.chdir(tmp_path)
    from adaptkit.adapt.modes import MODES

    saved = dict(MODES)  # a block may register a mode (python_api.md): the table is global
    try:
        exec(compile(code, f"{page}:{line}", "exec"), {"__name__": "__docs__"})
    finally:
        MODES.clear()
        MODES.update(saved)


def _bash(code: str, cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    """A block as `bash -e -o pipefail` runs it, with this environment's adaptkit first."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.mark.parametrize(("page", "line", "code", "mark"), RUN_BASH, ids=_ids(RUN_BASH))
def test_bash_blocks_marked_run_run(page, line, code, mark, tmp_path):
    if mark.group(2):
        pytest.importorskip(mark.group(2))
    proc = _bash(code, tmp_path, 300)
    assert proc.returncode == 0, f"{page}:{line}: " + proc.stdout[-2000:] + proc.stderr[-2000:]


TOY = [b for b in PYTHON if b[3] is not None and b[3].group(1) == "toy"]


class _Steps:
    """`while running:` for a docs block: true for a few steps, then false."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __bool__(self) -> bool:
        self.n -= 1
        return self.n >= 0


@pytest.fixture(scope="module")
def toy_world(tmp_path_factory):
    """What the policy pages assume, at toy size: a fine-tune run models/minicheetah_finetune
    (a tiny base, one epoch), its exports (export/minicheetah/policy.pt; policy.onnx when the onnx
    extra is here; copies beside the working folder for the blocks that open "policy.pt"), and
    hf://ORG/NAME — its push (--with-export) laid out in a Hub cache (HF_HUB_OFFLINE)."""
    from helpers_hub import folder_files, lay_out
    from helpers_train import TINY_MODEL, job, make_world, tiny_train
    from typer.testing import CliRunner

    from adaptkit.plugins import get_registry
    from adaptkit.train import finetune, pretrain

    root = tmp_path_factory.mktemp("toy_docs")
    paths = make_world(root)
    base = pretrain([paths["pretrain_config"]], paths["data"], "base", root / "models",
                    TINY_MODEL, tiny_train(epochs=1))  # fmt: skip
    robot = get_registry().robot("minicheetah")
    finetune(job(robot, base.run_dir, paths["data"], "minicheetah_finetune", root / "models",
                 tiny_train(epochs=1)))  # fmt: skip
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    try:
        run = CliRunner().invoke
        formats = ["torchscript"]
        if all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime")):
            formats.append("onnx")
        for fmt in formats:
            res = run(app, ["export", "models/minicheetah_finetune", "--format", fmt])
            assert res.exit_code == 0, res.output
        for f in (root / "export" / "minicheetah").iterdir():
            (root / f.name).write_bytes(f.read_bytes())
        res = run(app, ["push", "models/minicheetah_finetune", "hf://ORG/NAME", "--dry-run",
                        "--out", "push/NAME", "--with-export"])  # fmt: skip
        assert res.exit_code == 0, res.output
    finally:
        mp.undo()
    lay_out(root / "hf", "ORG/NAME", "b" * 40, folder_files(root / "push" / "NAME"), ["main"])
    return root


@pytest.mark.parametrize(("page", "line", "code", "mark"), TOY, ids=_ids(TOY))
def test_policy_blocks_run_on_a_toy_run(page, line, code, mark, toy_world, monkeypatch):
    """The block's own text, on the toy world, with the names it leaves to the reader (obs,
    reward, running, ...) given toy values."""
    import numpy as np

    if mark.group(2):
        pytest.importorskip(mark.group(2))
    monkeypatch.chdir(toy_world)
    monkeypatch.setenv("HF_HUB_CACHE", str(toy_world / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rng = np.random.default_rng(0)
    side = json.loads((toy_world / "policy.pt.json").read_text())
    m = side["model"]
    names = {
        "__name__": "__docs__",
        "obs": rng.normal(size=45).astype(np.float32), "reward": 0.5, "r": 0.5,
        "running": _Steps(5), "episode_ended": True,
        "obs_batch": rng.normal(size=(2, 45)).astype(np.float32), "rewards": np.zeros(2),
        "act_dim": side["act_dim"],
        "cache_shape": (m["layers"], 1, m["heads"], side["context_len"], m["head_dim"]),
    }  # fmt: skip
    exec(compile(code, f"{page}:{line}", "exec"), names)
    action = names.get("action")
    if action is not None and not isinstance(action, list):
        assert np.asarray(action).shape[-1] == 12 and np.isfinite(np.asarray(action)).all()


def test_the_checks_see_the_blocks():
    """The extractor finds the blocks it claims to check (a broken fence regex checks nothing)."""
    assert len(PYTHON) >= 8 and len(BASH) >= 15 and RUN and RUN_BASH and len(TOY) >= 4
    assert sum(len(adaptkit_lines(code)) for _, _, code, _ in BASH) >= 40


@pytest.mark.slow
def test_the_quickstart_tour_runs_as_written(tmp_path):
    """docs/quickstart_tiny.md's block, as `bash -e` runs it, in a folder of its own."""
    ((_, _, code, _),) = [b for b in BASH if b[0] == "docs/quickstart_tiny.md"]
    (tmp_path / "configs").symlink_to(REPO / "configs")
    proc = _bash(code, tmp_path, 1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "tiny" / "study" / "report.md").is_file()


def test_the_extras_table_matches_pyproject():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    text = (REPO / "docs" / "install.md").read_text()
    rows = dict(re.findall(r"^\| `([\w-]+)` \| ([^|]*) \|", text, re.M))
    assert set(rows) == set(extras), "docs/install.md's extras table vs pyproject.toml"
    (spec,) = extras["all"]
    in_all = set(spec.split("[", 1)[1].rstrip("]").split(","))
    assert set(re.findall(r"`([\w-]+)`", rows["all"])) == in_all
    for name, reqs in extras.items():
        if name == "all":
            continue
        for req in reqs:  # each package the extra installs is named in its row
            pkg = re.split(r"[<>=\[ ]", req, maxsplit=1)[0].lower()
            assert pkg.replace("_", "-") in rows[name].lower().replace("_", "-"), (name, pkg)
    readme = (REPO / "README.md").read_text()
    docs_row = next(x for x in readme.splitlines() if x.startswith("| [Install and extras]"))
    assert set(re.findall(r"`([\w-]+)`", docs_row)) >= set(extras) - {"dev"}


def test_the_plugin_pages_file_adds_a_robot(tmp_path):
    """docs/plugins.md's first block is a file that, "saved anywhere, adds a robot", loaded as
    the page says: `adaptkit --plugin spot_plugin.py robots`."""
    code = next(c for p, _, c, _ in PYTHON if p == "docs/plugins.md" and "spot_plugin.py" in c)
    (tmp_path / "spot_plugin.py").write_text(code)
    proc = _bash("adaptkit --plugin spot_plugin.py robots", tmp_path, 300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert re.search(r"^\W*spot\b", proc.stdout, re.M), proc.stdout
