"""Group surgery: add a robot's group, freeze, report trainable parameters, verify frozen weights.

Freeze modes (`FreezeMode`):
- ``transformer`` — the seed's ``--freeze_transformer``, made safe: only the new group's
  encoders and decoder train; the transformer, every old group and the shared padding
  embeddings are frozen (so old robots behave bit-for-bit as before).
- ``none`` — everything trains (full fine-tune; old robots will change).
``patterns`` then adjust the mode: fnmatch patterns on parameter names, ``"pat"`` makes matches
trainable, ``"!pat"`` freezes them, applied in order; a pattern that matches nothing is an error.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptkit.adapt.modes import START_AUTO, ModeChoice
from adaptkit.ckpt.checkpoint import (
    Checkpoint,
    fingerprint,
    load_state_dict_file,
    resolve_checkpoint,
)
from adaptkit.ckpt.layout import MODEL_FILE
from adaptkit.defaults import FreezeMode
from adaptkit.errors import AdaptkitError
from adaptkit.meta import CheckpointMeta, Stats, TaskMeta
from adaptkit.model import GroupDims, Vintix, unwrap
from adaptkit.model.lora import META_KEY as LORA_META_KEY
from adaptkit.model.lora import TARGETS as LORA_TARGETS
from adaptkit.model.lora import LoRASpec
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec


# -- add a group -------------------------------------------------------------------------------
def robot_task_meta(spec: RobotSpec, stats: Stats) -> TaskMeta:
    """The complete metadata entry of a robot's task (its dims, reward scale, sparsity and
    observation layout)."""
    return TaskMeta.new(
        spec.task,
        spec.group,
        GroupDims(spec.obs_dim, spec.action_dim),
        stats,
        reward_scale=spec.reward_scale,
        episode_sparsity=spec.episode_sparsity,
        robot=spec.name,
        obs_layout=spec.obs_layout,
    )


def add_group(
    model: nn.Module,
    meta: CheckpointMeta,
    spec: RobotSpec,
    stats: Stats,
    *,
    replace: bool = False,
    warm_start_from: str | None = None,
) -> None:
    """Create `spec.group`'s encoders and decoder and add the task's complete entry to `meta`
    (in place). Only the new modules are initialised."""
    model = unwrap(model)
    group, task = spec.group, spec.task
    entry = robot_task_meta(spec, stats)  # validates the stats against the robot's dims
    dims = entry.dims
    tasks = meta.group_tasks()
    if task in meta and meta[task].group != group:
        raise AdaptkitError(
            f"task {task!r} already exists in the checkpoint in group {meta[task].group!r}; "
            "give the robot another task name"
        )
    if (task in meta or group in model.groups or group in tasks) and not replace:
        users = tasks.get(group, [])
        raise AdaptkitError(
            f"group {group!r} already exists in the checkpoint (tasks: {users}); choose a new "
            "group name for the robot, or pass replace=True to rebuild it"
        )
    others = [t for t in tasks.get(group, []) if t != task]
    if others:
        raise AdaptkitError(
            f"group {group!r} is shared with tasks {others}; replacing it would change them — "
            "choose a new group name for the robot"
        )
    if warm_start_from is not None:
        if warm_start_from == group or warm_start_from not in model.groups:
            raise AdaptkitError(
                f"warm start: group {warm_start_from!r} is not another group of the model "
                f"(groups: {sorted(g for g in model.groups if g != group)})"
            )
        if model.groups[warm_start_from] != dims:
            ref = model.groups[warm_start_from]
            raise AdaptkitError(
                f"warm start: group {warm_start_from!r} has obs/act {ref.obs_dim}/{ref.act_dim}, "
                f"robot {spec.name!r} has {dims.obs_dim}/{dims.act_dim}"
            )
    if group in model.groups:
        model.remove_group(group)
    model.add_group_modules(group, dims)
    if warm_start_from is not None:
        with torch.no_grad():
            for new, ref in zip(
                model.group_modules(group), model.group_modules(warm_start_from), strict=True
            ):
                new.load_state_dict(ref.state_dict())
    meta.add(entry)


# -- a mode applied ---------------------------------------------------------------------------
def apply_mode(
    model: nn.Module,
    meta: CheckpointMeta,
    robot: RobotSpec,
    stats: Stats,
    choice: ModeChoice,
    reporter: Reporter = SILENT,
) -> dict[str, Any]:
    """The surgery of a fresh fine-tune in `choice`'s mode (adaptkit.adapt.modes), in place:
    the robot's new group, started fresh or warm from an old group, LoRA when the mode has it,
    then the mode's own `setup`. Returns what config.json records of it (the warm start's
    source). Freezing follows (`freeze`, with `choice.freeze` and its patterns)."""
    recorded: dict[str, Any] = {}
    add_group(model, meta, robot, stats)
    if choice.start == START_AUTO:  # nothing probed the old groups (the main job does)
        reporter.note(
            "--init auto: no zero-shot probe chose an old group here (`adaptkit finetune` "
            "probes them); the new group starts fresh"
        )
    if choice.warm_start is not None:
        warm = warm_start_group(model, robot.group, choice.warm_start)
        reporter.note(warm.describe())
        recorded["warm_start"] = warm.source
    if choice.lora_rank is not None:
        lora = add_lora(model, meta, robot, choice.lora_rank, choice.lora_alpha)
        reporter.note(
            f"LoRA rank {lora.rank} (alpha {lora.alpha:g}) on {len(lora.targets)} trunk "
            f"Linear layers for group '{robot.group}' only"
        )
    if choice.mode.setup is not None:
        note = choice.mode.setup(model, meta, robot)
        if note:
            reporter.note(note)
    return recorded


# -- freezing ----------------------------------------------------------------------------------
@dataclass
class FreezeResult:
    mode: str
    trainable: list[str]
    frozen: list[str]
    n_trainable: int
    n_total: int
    pattern_matches: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "trainable_params": self.n_trainable,
            "total_params": self.n_total,
            "trainable_pct": 100.0 * self.n_trainable / max(self.n_total, 1),
            "trainable": self.trainable,
            "pattern_matches": self.pattern_matches,
        }


def add_lora(
    model: nn.Module, meta: CheckpointMeta, robot: RobotSpec, rank: int, alpha: float | None
) -> LoRASpec:
    """Give `robot.group` (already added) LoRA of the given rank (adaptkit.model.lora) and record
    it in its task's metadata entry (in place), so a checkpoint re-creates the modules before its
    weights load. alpha None: 2 × rank."""
    model = unwrap(model)
    spec = LoRASpec(int(rank), float(alpha if alpha is not None else 2 * rank), LORA_TARGETS)
    model.add_lora(robot.group, spec.rank, spec.alpha)
    entry = meta[robot.task]
    meta.add(
        TaskMeta(
            entry.task,
            entry.group,
            entry.dims,
            entry.reward_scale,
            entry.stats,
            {**entry.extra, LORA_META_KEY: spec.as_meta()},
        )
    )
    return spec


def _pattern_hint(names: Sequence[str]) -> str:
    roots = sorted({".".join(n.split(".")[:2]) + ".*" for n in names})
    return ", ".join(roots[:8])


def freeze(
    model: nn.Module,
    mode: FreezeMode | str = FreezeMode.TRANSFORMER,
    new_group: str | None = None,
    patterns: Sequence[str] | None = None,
) -> FreezeResult:
    """Set requires_grad per the mode (see the module docstring), then apply `patterns`."""
    model = unwrap(model)
    try:
        mode = FreezeMode(mode)
    except ValueError:
        choices = ", ".join(m.value for m in FreezeMode)
        raise AdaptkitError(f"freeze mode {mode!r}: expected one of {choices}") from None
    params = dict(model.named_parameters())
    if mode is FreezeMode.NONE:
        train = set(params)
    else:
        if new_group is None:
            raise AdaptkitError(f"freeze mode {mode!r} needs the new group's name")
        if new_group not in getattr(model, "groups", {}):
            raise AdaptkitError(f"freeze: model has no group {new_group!r} (add it first)")
        prefixes = Vintix.group_prefixes(new_group)
        train = {n for n in params if n.startswith(prefixes)}
    matches: dict[str, int] = {}
    for raw in patterns or []:
        negate = raw.startswith("!")
        pat = raw[1:] if negate else raw
        hit = [n for n in params if fnmatch.fnmatchcase(n, pat)]
        if not hit:
            raise AdaptkitError(
                f"freeze pattern {raw!r} matches no parameter (patterns match whole names, e.g. "
                f"{_pattern_hint(list(params))})"
            )
        matches[raw] = len(hit)
        train = train - set(hit) if negate else train | set(hit)
    for n, p in params.items():
        p.requires_grad_(n in train)
    trainable = [n for n in params if n in train]
    return FreezeResult(
        mode=mode.value,
        trainable=trainable,
        frozen=[n for n in params if n not in train],
        n_trainable=sum(params[n].numel() for n in trainable),
        n_total=sum(p.numel() for p in params.values()),
        pattern_matches=matches,
    )


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """What the optimiser should get: only parameters with requires_grad."""
    return [p for p in unwrap(model).parameters() if p.requires_grad]


# -- reports -----------------------------------------------------------------------------------
def _module_of(name: str) -> str:
    parts = name.split(".")
    if parts[0] == "transformer":
        return "transformer"
    if parts[0] == "encoder" and parts[1].startswith("prev_"):
        return "shared paddings"
    if parts[0] in ("encoder", "head") and len(parts) > 2:
        return f"group {parts[2]}"
    if parts[0] == "lora" and len(parts) > 1:  # a group's LoRA update of the trunk is its own
        return f"group {parts[1]}"
    return parts[0]


def parameter_report(model: nn.Module) -> list[dict[str, Any]]:
    """Rows per module (transformer, shared paddings, one per group) and a total row."""
    rows: dict[str, dict[str, Any]] = {}
    for name, p in unwrap(model).named_parameters():
        row = rows.setdefault(
            _module_of(name), {"module": _module_of(name), "params": 0, "trainable": 0}
        )
        row["params"] += p.numel()
        row["trainable"] += p.numel() if p.requires_grad else 0
    total = {
        "module": "total",
        "params": sum(r["params"] for r in rows.values()),
        "trainable": sum(r["trainable"] for r in rows.values()),
    }
    out = [*rows.values(), total]
    for r in out:
        r["trainable_pct"] = round(100.0 * r["trainable"] / max(r["params"], 1), 2)
    return out


def _token_order(ckpt: Checkpoint) -> tuple[str, str]:
    order = ckpt.token_order
    return (order.order, order.reason) if order else (ckpt.config.token_order, "model config")


def describe_groups(ckpt: Checkpoint) -> list[dict[str, Any]]:
    """Per group: tasks, dims, recorded observation layout, parameter count, and the token
    order every group's tokens are built in (for `adaptkit groups`)."""
    tasks = ckpt.meta.group_tasks()
    counts = {r["module"]: r["params"] for r in parameter_report(ckpt.model)}
    order, why = _token_order(ckpt)
    layouts = {}
    for t in ckpt.meta.tasks.values():
        layouts.setdefault(t.group, t.obs_layout)
    return [
        {
            "group": g,
            "tasks": tasks.get(g, []),
            "obs_dim": d.obs_dim,
            "act_dim": d.act_dim,
            "obs_layout": layouts.get(g),
            "params": counts.get(f"group {g}", 0),
            "token_order": order,
            "token_order_source": why,
        }
        for g, d in ckpt.groups.items()
    ]


def describe_checkpoint(ckpt: Checkpoint) -> dict[str, Any]:
    """Everything `adaptkit inspect` shows."""
    return {
        "path": str(ckpt.path),
        "fingerprint": ckpt.fingerprint,
        "adapters": [str(p) for p in ckpt.adapters],
        "base": str(ckpt.base_path) if ckpt.base_path else None,
        "token_order": _token_order(ckpt)[0],
        "token_order_source": _token_order(ckpt)[1],
        "model_config": ckpt.config.model_dict(),
        "other_config": dict(ckpt.config.extra),
        "groups": describe_groups(ckpt),
        "parameters": parameter_report(ckpt.model),
        "has_training_state": ckpt.state_path is not None,
    }


# -- verification ------------------------------------------------------------------------------
def frozen_fingerprint(model: nn.Module, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """Hashes of every frozen parameter (and buffer), taken before training.

    `known`: hashes already taken of these very tensors (e.g. while loading them); the ones
    found there are not hashed again."""
    model = unwrap(model)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    frozen |= {n for n in model.state_dict() if n not in dict(model.named_parameters())}
    known = known or {}
    todo = sorted(n for n in frozen if n not in known)
    return {**{n: known[n] for n in frozen if n in known}, **fingerprint(model, todo)}


def verify_frozen(
    before: Mapping[str, str], model_or_state: nn.Module | Mapping[str, torch.Tensor]
) -> None:
    """Raise if any tensor hashed in `before` is missing or changed."""
    sd = (
        unwrap(model_or_state).state_dict()
        if isinstance(model_or_state, nn.Module)
        else model_or_state
    )
    missing = [k for k in before if k not in sd]
    now = fingerprint(sd, [k for k in before if k in sd])  # one (threaded) pass
    changed = [k for k, h in now.items() if h != before[k]]
    if missing or changed:
        parts = []
        if changed:
            parts.append(
                f"{len(changed)} changed ({', '.join(changed[:5])}"
                f"{', ...' if len(changed) > 5 else ''})"
            )
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:5])})")
        raise AdaptkitError("frozen weights are not bit-identical: " + "; ".join(parts))


def verify_against_checkpoint(
    model: nn.Module, path: Path | str, keys: Sequence[str] | None = None
) -> None:
    """Check that the model holds the checkpoint file's weights (all of the file's tensors, or
    `keys`) — catches a pretrained trunk re-initialised after loading (the HPT bug)."""
    file_path = resolve_checkpoint(path) / MODEL_FILE
    sd = load_state_dict_file(file_path)
    live = unwrap(model).state_dict()
    names = list(sd) if keys is None else list(keys)
    missing = [k for k in names if k not in live]
    differ = [k for k in names if k in live and not torch.equal(live[k].detach().cpu(), sd[k])]
    if missing or differ:
        raise AdaptkitError(
            f"model does not hold the weights of {file_path}: "
            f"{len(differ)} differ ({', '.join(differ[:5])}), "
            f"{len(missing)} missing ({', '.join(missing[:5])})"
        )


# -- warm start --------------------------------------------------------------------------------
@dataclass
class WarmStart:
    """What `warm_start_group` copied into the new group, and from where."""

    source: str
    copied: list[str]  # the new group's tensor names that took the source's values
    skipped: list[str]  # shapes differ: left as initialised

    def describe(self) -> str:
        if not self.skipped:
            return (
                f"warm start: all {len(self.copied)} tensors of the new group from '{self.source}'"
            )
        return (
            f"warm start from '{self.source}': copied {len(self.copied)} tensors whose shapes "
            f"match, kept {len(self.skipped)} freshly initialised "
            f"({', '.join(self.skipped[:4])}{', ...' if len(self.skipped) > 4 else ''})"
        )


def warm_start_source(model: nn.Module, group: str, source: str) -> str:
    """The old group to warm-start `group` from: `source` itself, or for "auto" the first old
    group (by name) with the same obs/act dims, else the first old group at all (then only
    the tensors whose shapes match are copied, e.g. the decoder's hidden layers)."""
    model = unwrap(model)
    old = sorted(g for g in model.groups if g != group)
    if not old:
        raise AdaptkitError("--warm-start: the base has no other group to start from")
    if source != "auto":
        if source not in old:
            raise AdaptkitError(
                f"--warm-start: group {source!r} is not an old group of the base (groups: {old})"
            )
        return source
    dims = model.groups[group]
    same = [g for g in old if model.groups[g] == dims]
    return (same or old)[0]


def warm_start_group(model: nn.Module, group: str, source: str = "auto") -> WarmStart:
    """Copy an old group's weights into the freshly added `group` where the shapes match.

    Only the new group's tensors change: the source is read, never written."""
    model = unwrap(model)
    if group not in model.groups:
        raise AdaptkitError(f"warm start: model has no group {group!r} (add it first)")
    src = warm_start_source(model, group, source)
    copied: list[str] = []
    skipped: list[str] = []
    sd = model.state_dict()
    with torch.no_grad():
        for new_prefix, src_prefix in zip(
            Vintix.group_prefixes(group), Vintix.group_prefixes(src), strict=True
        ):
            for name, t in sd.items():
                if not name.startswith(new_prefix) or name.startswith("lora."):
                    continue
                ref = sd.get(src_prefix + name[len(new_prefix) :])
                if ref is not None and ref.shape == t.shape:
                    t.copy_(ref)
                    copied.append(name)
                else:
                    skipped.append(name)
    return WarmStart(src, copied, skipped)
