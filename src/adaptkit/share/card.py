"""The model card of a pushed folder (README.md): the Hub's YAML header — `library_name`, `tags`,
`base_model` (when the base is a Hub repo), and the evaluation in the Hub's `model-index` form —
then the body: what the model drives, how to load it, its base, the data, the plugin and the
command that produced it, as the run recorded them.

Truthful by construction: `model-index` lists only results of the pushed model itself (a row
whose summary names this checkpoint); the demonstrator, standing still and other models compared
with it (the base zero-shot) are listed in the body as references, named as such. Everything that
comes from a user (config values, labels, paths, the command) is quoted: inline code spans that no
backtick or newline can close, table cells with `|` escaped, shell words quoted with shlex, and
Python strings written as literals (issue 35, item 7)."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from adaptkit.adapt.modes import MODES
from adaptkit.ckpt.adapter import read_adapter
from adaptkit.ckpt.hub import parse_hub_ref
from adaptkit.ckpt.layout import ADAPTER_FILES, is_adapter
from adaptkit.ckpt.load import peek_config
from adaptkit.ckpt.shipped import is_shipped_name
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import read_json
from adaptkit.version import __version__

CARD_FILE = "README.md"
REFERENCE_POLICIES = ("demonstrator", "stand")  # baselines, never results of the model
_OWN_DISTRIBUTION = "adaptkit"  # the built-in robots' plugins ship inside adaptkit


# -- quoting -----------------------------------------------------------------------------------
def _one_line(value: Any) -> str:
    """A value as one line of printable text (newlines and control characters made visible)."""
    text = str(value)
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def code(value: Any) -> str:
    """An inline code span that shows `value` literally: delimited by a backtick run longer than
    any inside it (CommonMark), one line, padded when it starts or ends with a backtick."""
    text = _one_line(value)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def cell(value: Any) -> str:
    """A table cell: an inline code span with `|` escaped (GFM splits cells before spans)."""
    return code(value).replace("|", "\\|")


def shell_word(value: Any) -> str:
    """One shell word, quoted: a value cannot run a command, end the word, or the code block."""
    return shlex.quote(_one_line(value))


def _command_line(command: str) -> str:
    """A recorded command for a bash block: each word quoted, so that nothing in it is run but
    adaptkit with its arguments (a `;`, `|` or backtick inside stays an argument)."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: the whole text as one quoted word, visibly broken
        words = [command]
    return " ".join(shell_word(w) for w in words)


# -- evaluation rows ---------------------------------------------------------------------------
def evaluation_rows(ckpt: Path, given: list[Path]) -> list[dict[str, Any]]:
    """Rows (label, policy, checkpoint, robot, mean, std, episodes, seed, envs, task) from
    compare.json / summary.json files: the ones given, else the run's own comparison
    (RUN/compare/compare.json)."""
    paths = list(given) or [p for p in (ckpt.parent / "compare" / "compare.json",) if p.is_file()]
    rows = []
    for path in paths:
        data = read_json(path)
        runs = data.get("runs") if isinstance(data, dict) else None
        if runs is None and isinstance(data, dict) and "mean_return" in data:
            runs = {data.get("label", "model"): data}  # one eval's summary.json
        if not isinstance(runs, dict) or not all(isinstance(s, dict) for s in runs.values()):
            raise AdaptkitError(f"{path}: expected a compare.json or an eval summary.json")
        for label, s in runs.items():
            mean, std = s.get("mean_return"), s.get("std_return")
            if not isinstance(mean, int | float) or not math.isfinite(mean):
                continue  # a policy that finished no episode has nothing to report
            rows.append({
                "label": str(label), "policy": s.get("policy"), "checkpoint": s.get("checkpoint"),
                "robot": s.get("robot", data.get("robot")), "mean": float(mean),
                "std": float(std) if isinstance(std, int | float) and math.isfinite(std) else 0.0,
                "episodes": s.get("num_episodes"), "seed": s.get("seed"),
                "envs": s.get("num_envs"), "task": s.get("task", "walk"),
            })  # fmt: skip
    return rows


def _same_path(a: Any, b: Path) -> bool:
    try:
        return isinstance(a, str) and Path(a).resolve() == b.resolve()
    except OSError:
        return False


def split_rows(
    ckpt: Path, rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the pushed model's rows, references): a row is the model's only when its summary says
    a model policy ran from this very checkpoint folder."""
    own = [r for r in rows if r["policy"] == "model" and _same_path(r["checkpoint"], ckpt)]
    return own, [r for r in rows if r not in own]


def _reference_name(row: dict[str, Any]) -> str:
    if row["policy"] == "demonstrator":
        return "reference: the demonstrator (scripted expert)"
    if row["policy"] == "stand":
        return "reference: standing still (zero action)"
    if row["policy"] == "model":
        return "reference: another model compared on the same seeds (not this one)"
    return "reference: not recorded as this model's result"


def _model_index(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = [
        {
            "task": {"type": "reinforcement-learning", "name": "in-context locomotion"},
            "dataset": {
                "type": f"adaptkit/{r['robot']}-{r['task']}",
                "name": f"{r['robot']} {r['task']} (MuJoCo, adaptkit)",
            },
            "metrics": [
                {
                    "type": "mean_reward",
                    "value": f"{r['mean']:.2f} +/- {r['std']:.2f}",
                    "name": f"mean_reward ({r['label']})",
                    "verified": False,
                }
            ],
        }
        for r in rows
    ]
    return [{"name": name, "results": results}]


# -- what the run recorded ---------------------------------------------------------------------
def _recorded(ckpt: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the run's config keys, the adapter's base/group facts) of a pushed checkpoint."""
    config = peek_config(ckpt).extra if not is_adapter(ckpt) else {}
    facts: dict[str, Any] = {}
    if is_adapter(ckpt) or all((ckpt / f).is_file() for f in ADAPTER_FILES):
        cfg = read_adapter(ckpt)[0]
        config = {**cfg.config, **config}
        facts = {
            "group": cfg.group, "base": cfg.base.name, "base_fingerprint": cfg.base.fingerprint,
            "token_order": cfg.token_order,
        }  # fmt: skip
    return config, facts


def _base_lines(base: str | None, fingerprint: str | None) -> list[str]:
    if not base:
        return []
    fp = f", fingerprint {code(fingerprint[:16])}" if fingerprint else ""
    if is_shipped_name(base):
        return [f"- Base model: {code(base)} — the base shipped inside adaptkit{fp}; it loads "
                "wherever that adaptkit version is installed"]  # fmt: skip
    if parse_hub_ref(base) is not None:
        return [f"- Base model: {code(base)} on the Hub{fp}"]
    return [f"- Base model: {code(base)} — a local checkpoint of the training machine, not "
            f"uploaded{fp}; give it with `--base PATH_OR_HF_REF`"]  # fmt: skip


def _plugin_lines(robot: str | None, plugin: Any) -> list[str]:
    if not robot:
        return []
    if not isinstance(plugin, dict):
        return [f"- Robot: {code(robot)} (its plugin was not recorded)"]
    dist, version = plugin.get("distribution"), plugin.get("version")
    if dist == _OWN_DISTRIBUTION:
        return [
            f"- Robot: {code(robot)}, built into adaptkit (plugin {code(plugin.get('plugin'))})"
        ]
    if dist:
        spec = f"{dist}=={version}" if version else str(dist)
        return [f"- Robot: {code(robot)} from the plugin package {code(spec)}: install it with "
                f"{code('pip install ' + shell_word(spec))}"]  # fmt: skip
    return [f"- Robot: {code(robot)} from the plugin file {code(plugin.get('file'))} (not an "
            "installed package: load it with `adaptkit --plugin FILE`)"]  # fmt: skip


def _data_lines(config: dict[str, Any]) -> list[str]:
    data = config.get("data")
    if isinstance(data, dict):
        lines = [
            f"- Data: task {code(data.get('task'))}, {data.get('histories')} history file(s) in "
            f"{code(data.get('path'))}, sha256 {code(str(data.get('sha256'))[:16])}",
        ]
        configs = data.get("dataset_config")
        if isinstance(configs, list):
            lines += [f"- Dataset config: {code(p)}" for p in configs]
        else:
            lines += [f"- Dataset config: {_one_line(configs)}"]
        collected = data.get("collected_by")
        if isinstance(collected, dict) and isinstance(collected.get("adaptkit"), dict):
            c = collected["adaptkit"]
            keys = ("method", "expert", "histories", "steps_per_history", "seed", "sim", "task")
            lines += [f"- Collected by adaptkit: {code(json.dumps({k: c.get(k) for k in keys}))}"]
        else:
            lines += [f"- Collected by: {_one_line(collected or 'not recorded')}"]
        return lines
    paths = config.get("dataset_config_paths") or []
    return [f"- Dataset config: {code(p)}" for p in paths] or ["- Data: not recorded"]


# -- the card ----------------------------------------------------------------------------------
def model_card(
    ckpt: Path,
    repo_id: str,
    kind: str,
    evaluations: list[dict[str, Any]],
    command: str | None = None,
    exports: list[str] | None = None,
) -> str:
    """The README.md of the pushed folder: the Hub's YAML header, then the body."""
    config, facts = _recorded(ckpt)
    robot = config.get("robot") if isinstance(config.get("robot"), str) else None
    base = facts.get("base") or config.get("pretrained_path")
    base = str(base) if base else None
    base_ref = parse_hub_ref(base) if base and not is_shipped_name(base) else None
    own, references = split_rows(ckpt, evaluations)
    exports = list(exports or [])
    meta: dict[str, Any] = {
        "library_name": "adaptkit",
        "license": "apache-2.0",
        "tags": [
            "adaptkit", "robotics", "reinforcement-learning", "in-context-rl", "vintix",
            "locomotion", "mujoco", *([robot] if robot else []),
        ],
        "pipeline_tag": "reinforcement-learning",
    }  # fmt: skip
    if base_ref is not None:
        meta["base_model"] = base_ref.repo_id
    if own:
        meta["model-index"] = _model_index(repo_id.split("/")[-1], own)
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    recorded = config.get("command") if isinstance(config.get("command"), str) else None
    uploaded = "adapter (one group on top of its base)" if kind == "adapter" else "checkpoint"
    ref = f"hf://{repo_id}"
    eval_line = f"adaptkit eval {ref}" + ("" if robot else " --robot ROBOT")
    load = f"policy = adaptkit.load_policy({json.dumps(ref)}" + ("" if robot else ', "ROBOT"') + ")"
    lines = [
        "---", header.rstrip(), "---", "",
        f"# {repo_id.split('/')[-1]}", "",
        "A Vintix-style in-context RL transformer adapted with "
        f"[adaptkit](https://pypi.org/project/adaptkit/) {__version__}"
        + (f" to the robot {code(robot)}" if robot else "") + ".", "",
        f"- Uploaded: the {uploaded}" + (f", and exported policies: {', '.join(map(code, exports))}"
                                         if exports else ""),
        *([f"- Group: {code(facts['group'])}"] if facts.get("group") else []),
        *_base_lines(base, facts.get("base_fingerprint")),
        *_plugin_lines(robot, config.get("robot_plugin")),
        *([f"- Token order: {code(facts['token_order'])}"] if facts.get("token_order") else []),
        *([_mode_line(config["adaptkit_mode"])] if config.get("adaptkit_mode") else []),
        *([_init_line(config["adaptkit_init"])] if config.get("adaptkit_init") else []),
        "", "## Use", "", "```bash", eval_line, "```", "",
        "```python", "import adaptkit", "", load,
        "action = policy.act(obs)  # raw observation in, raw action out", "```", "",
    ]  # fmt: skip
    if exports:
        pt = next((e for e in exports if e.endswith(".pt")), exports[0])
        lines += [
            "The exported files run without adaptkit (TorchScript: torch only; ONNX: onnxruntime "
            "only), or with it:", "", "```python",
            f"policy = adaptkit.load_policy({json.dumps(f'{ref}/{pt}')})", "```", "",
        ]  # fmt: skip
    if kind == "adapter":
        lines += [
            "An adapter loads onto its base, which adaptkit finds by the name and fingerprint "
            "recorded above and checks by fingerprint; give `--base PATH_OR_HF_REF` if it is "
            "elsewhere.",
            "",
        ]
    if own or references:
        lines += ["## Evaluation", ""]
        head = "| policy | robot | mean return ± std | episodes | envs | seed |"
        rule = "|---|---|---|---|---|---|"

        def row(r: dict[str, Any], name: str) -> str:
            return (f"| {cell(r['label'])} ({name}) | {cell(r['robot'])} | {r['mean']:.2f} ± "
                    f"{r['std']:.2f} | {cell(r['episodes'])} | {cell(r['envs'])} | "
                    f"{cell(r['seed'])} |")  # fmt: skip

        if own:
            lines += ["This model:", "", head, rule, *(row(r, "this model") for r in own), ""]
        else:
            lines += ["No evaluation of this model itself was recorded.", ""]
        if references:
            lines += [
                "References on the same seeds (not results of this model):", "", head, rule,
                *(row(r, _reference_name(r).removeprefix("reference: ")) for r in references),
                "",
            ]  # fmt: skip
    lines += ["## Training data and command", "", *_data_lines(config)]
    if recorded:
        lines += ["- Command (recorded by the run):", "", "```bash", _command_line(recorded), "```"]
    elif command:
        lines += ["- Command (as given to `adaptkit push --command`, not recorded by the run):",
                  "", "```bash", _command_line(command), "```"]  # fmt: skip
    elif "command" in config:
        lines += ["- Command: none (the run was started from Python, not the command line)"]
    else:
        lines += ["- Command: not recorded"]
    keys = ("epochs", "lr", "batch_size", "freeze", "context_len", "seed")
    trained = {k: config[k] for k in keys if k in config}
    if trained:
        lines += [f"- Settings: {code(json.dumps(trained))}"]
    return "\n".join(lines) + "\n"


def _mode_line(name: Any) -> str:
    """The run's recorded adaptation mode and its help line (adaptkit.adapt.modes)."""
    mode = MODES.get(name) if isinstance(name, str) else None
    return f"- Adaptation mode: {code(name)}" + (f" ({mode.help})" if mode else "")


def _init_line(record: Any) -> str:
    """How the new group started (config.json's adaptkit_init: the --init choice and, for
    `auto`, the zero-shot probe that made it); every recorded value quoted like the rest."""
    if not isinstance(record, dict):
        return f"- New group started: {code(record)}"
    line = f"- New group started: {code(record.get('init'))} (asked: {code(record.get('asked'))})"
    groups, stand = record.get("groups"), record.get("stand")
    if isinstance(groups, dict) and isinstance(stand, int | float):
        probe = ", ".join(
            f"{code(g)} {r:.2f}" for g, r in groups.items() if isinstance(r, int | float)
        )
        line += f"; zero-shot probe {probe or 'no group fits'} vs standing still {stand:.2f}"
    return line
