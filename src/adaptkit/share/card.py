"""The model card of a pushed folder (README.md): the Hub's YAML header — `library_name`, `tags`,
`base_model` (when the base is a Hub repo), and the evaluation table in the Hub's `model-index`
form (one result per policy of the run's comparison, metric `mean_reward` as "mean +/- std", the
Hub's RL convention) — then the body: what the model drives, how to load it, the data and the
command that produced it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from adaptkit.adapt.modes import MODES
from adaptkit.ckpt.adapter import read_adapter
from adaptkit.ckpt.hub import parse_hub_ref
from adaptkit.ckpt.layout import ADAPTER_FILES, is_adapter
from adaptkit.ckpt.load import peek_config
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import read_json
from adaptkit.version import __version__

CARD_FILE = "README.md"


def evaluation_rows(ckpt: Path, given: list[Path]) -> list[dict[str, Any]]:
    """Rows (label, robot, mean, std, episodes, seed, envs) from compare.json / summary.json files:
    the ones given, else the run's own comparison (RUN/compare/compare.json)."""
    paths = list(given) or [p for p in (ckpt.parent / "compare" / "compare.json",) if p.is_file()]
    rows = []
    for path in paths:
        data = read_json(path)
        runs = data.get("runs") if isinstance(data, dict) else None
        if runs is None and isinstance(data, dict) and "mean_return" in data:
            runs = {data.get("label", "model"): data}  # one eval's summary.json
        if not isinstance(runs, dict):
            raise AdaptkitError(f"{path}: expected a compare.json or an eval summary.json")
        for label, s in runs.items():
            mean, std = s.get("mean_return"), s.get("std_return")
            if not isinstance(mean, int | float) or not math.isfinite(mean):
                continue  # a policy that finished no episode has nothing to report
            rows.append({
                "label": label, "robot": s.get("robot", data.get("robot")), "mean": mean,
                "std": std if isinstance(std, int | float) else 0.0,
                "episodes": s.get("num_episodes"), "seed": s.get("seed"),
                "envs": s.get("num_envs"), "task": s.get("task", "walk"),
            })  # fmt: skip
    return rows


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


def model_card(
    ckpt: Path,
    repo_id: str,
    kind: str,
    evaluations: list[dict[str, Any]],
    command: str | None = None,
) -> str:
    """The README.md of the pushed folder: the Hub's YAML header, then the body."""
    config = peek_config(ckpt).extra if not is_adapter(ckpt) else {}
    token_order = None
    group = base_name = None
    if is_adapter(ckpt) or all((ckpt / f).is_file() for f in ADAPTER_FILES):
        cfg = read_adapter(ckpt)[0]
        config = {**cfg.config, **config}
        group, base_name, token_order = cfg.group, cfg.base.name, cfg.token_order
    robot = config.get("robot")
    base_name = base_name or config.get("pretrained_path")
    base_ref = parse_hub_ref(base_name) if isinstance(base_name, str) else None
    meta: dict[str, Any] = {
        "library_name": "adaptkit",
        "license": "apache-2.0",
        "tags": [
            "adaptkit",
            "robotics",
            "reinforcement-learning",
            "in-context-rl",
            "vintix",
            "locomotion",
            "mujoco",
            *([robot] if robot else []),
        ],
        "pipeline_tag": "reinforcement-learning",
    }
    if base_ref is not None:
        meta["base_model"] = base_ref.repo_id
    if evaluations:
        meta["model-index"] = _model_index(repo_id.split("/")[-1], evaluations)
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    data = config.get("dataset_config_paths") or []
    cmd = command or (
        f"adaptkit finetune {robot} --pretrained-path {base_name}" if robot and base_name else None
    )
    uploaded = "adapter (one group on top of its base)" if kind == "adapter" else "checkpoint"
    lines = [
        "---", header.rstrip(), "---", "",
        f"# {repo_id.split('/')[-1]}", "",
        "A Vintix-style in-context RL transformer adapted with "
        f"[adaptkit](https://pypi.org/project/adaptkit/) {__version__}"
        + (f" to the **{robot}** robot" if robot else "") + ".", "",
        f"- Uploaded: the {uploaded}",
        *([f"- Group: `{group}`"] if group else []),
        *([f"- Base model: `{base_name}`"] if base_name else []),
        *([f"- Token order: `{token_order}`"] if token_order else []),
        *([_mode_line(config["adaptkit_mode"])] if config.get("adaptkit_mode") else []),
        *([_init_line(config["adaptkit_init"])] if config.get("adaptkit_init") else []),
        "", "## Use", "", "```bash",
        f"adaptkit eval hf://{repo_id}" + (f" --robot {robot}" if robot else " --robot ROBOT"),
        "```", "", "```python", "import adaptkit", "",
        f'policy = adaptkit.load_policy("hf://{repo_id}"' + ("" if robot else ', "ROBOT"') + ")",
        "action = policy.act(obs)  # raw observation in, raw action out", "```", "",
    ]  # fmt: skip
    if kind == "adapter":
        lines += [
            "An adapter loads onto its base, which adaptkit checks by fingerprint; give "
            "`--base PATH_OR_HF_REF` if the recorded base is not at hand.",
            "",
        ]
    if evaluations:
        lines += [
            "## Evaluation", "",
            "| policy | robot | mean return ± std | episodes | envs | seed |",
            "|---|---|---|---|---|---|",
            *(f"| {r['label']} | {r['robot']} | {r['mean']:.2f} ± {r['std']:.2f} | "
              f"{r['episodes']} | {r['envs']} | {r['seed']} |" for r in evaluations),
            "",
        ]  # fmt: skip
    lines += ["## Training data and command", ""]
    lines += [f"- Dataset config: `{p}`" for p in data] or ["- Dataset config: not recorded"]
    lines += [f"- Command: `{cmd}`" if cmd else "- Command: not recorded"]
    keys = ("epochs", "lr", "batch_size", "freeze", "context_len", "seed")
    trained = {k: config[k] for k in keys if k in config}
    if trained:
        lines += [f"- Settings: {json.dumps(trained)}"]
    return "\n".join(lines) + "\n"


def _mode_line(name: str) -> str:
    """The run's recorded adaptation mode and its help line (adaptkit.adapt.modes)."""
    mode = MODES.get(name)
    return f"- Adaptation mode: `{name}`" + (f" ({mode.help})" if mode else "")


def _init_line(record: Any) -> str:
    """How the new group started (config.json's adaptkit_init: the --init choice and, for
    `auto`, the zero-shot probe that made it)."""
    if not isinstance(record, dict):
        return f"- New group started: `{record}`"
    line = f"- New group started: `{record.get('init')}` (asked: `{record.get('asked')}`)"
    groups, stand = record.get("groups"), record.get("stand")
    if isinstance(groups, dict) and isinstance(stand, int | float):
        probe = ", ".join(f"`{g}` {r:.2f}" for g, r in groups.items() if isinstance(r, int | float))
        line += f"; zero-shot probe {probe or 'no group fits'} vs standing still {stand:.2f}"
    return line
