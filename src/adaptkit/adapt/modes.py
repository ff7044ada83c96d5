"""The adaptation modes, one table: how a base is adapted to a new robot.

A `Mode` says what trains (the new group only, or everything), how the new group starts
(freshly initialised, warm from an old group, or `auto`: warm from the old group that does best
zero-shot on the robot when that beats standing still, else fresh — the main job's probe decides,
adaptkit.pipeline), whether a group-conditional LoRA update of
the trunk trains too (and its default rank), whether there is no base at all (`scratch`: the
base's model size trained on the robot's data alone), freeze patterns applied on top, an
optional surgery function of its own, whether every old group stays bit-identical, and its
default learning rate. Fine-tune (`FinetuneJob.mode`), the CLI (`--mode`, its choices and help),
the study (its `--modes`, cells and report) and the model card all read this table.

A new mode is one `register_mode(Mode(...))` — plus, at most, one surgery function for its
`setup` (adaptkit.adapt.surgery has the pieces). Torch-free: the CLI shows the table in --help.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adaptkit import defaults
from adaptkit.defaults import FreezeMode
from adaptkit.errors import AdaptkitError

START_FRESH, START_WARM, START_AUTO = "fresh", "warm", "auto"  # how the new group starts
STARTS = (START_FRESH, START_WARM, START_AUTO)
# setup(model, meta, robot) after the new group is added (and warm-started / given LoRA),
# before freezing; returns a note for the run's report, or None. It must change only what the
# checkpoint records (weights' values, which weights train): it is not re-run on --resume.
SetupFn = Callable[[Any, Any, Any], "str | None"]


@dataclass(frozen=True)
class Mode:
    """One adaptation mode (see the module docstring)."""

    name: str
    help: str  # one line: --help, the study's report, the model card
    trains: FreezeMode = FreezeMode.TRANSFORMER  # the new group only, or everything (NONE)
    start: str = START_FRESH  # the new group fresh, warm from an old group, or auto (docstring)
    lora_rank: int | None = None  # LoRA on the trunk for the new group, at this default rank
    scratch: bool = False  # no base: the base's model size trained on the robot's data alone
    # fnmatch patterns on parameter names, applied after `trains` ("!pat" freezes; "{group}"
    # stands for the new group's name), as --freeze-pattern is
    patterns: tuple[str, ...] = ()
    setup: SetupFn | None = None  # surgery of the mode's own (SetupFn)
    keeps_old: bool = True  # every old group (and the trunk they share) stays bit-identical
    lr: float | None = None  # default peak learning rate; None: by what trains

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise AdaptkitError(f"adaptation mode {self.name!r}: a name is letters, digits, - or _")
        object.__setattr__(self, "trains", FreezeMode(self.trains))
        if self.start not in STARTS:
            raise AdaptkitError(
                f"adaptation mode {self.name!r}: start must be one of {', '.join(STARTS)}"
            )

    @property
    def default_lr(self) -> float:
        """The mode's lr, else 1e-3 when only the new group trains and 1e-4 when everything
        does (TrainConfig.for_finetune says why)."""
        if self.lr is not None:
            return self.lr
        return lr_for(self.trains)


def lr_for(trains: FreezeMode | str) -> float:
    """The fine-tune's default learning rate for what trains."""
    frozen = FreezeMode(trains) is FreezeMode.TRANSFORMER
    return defaults.FINETUNE_LR_FROZEN if frozen else defaults.FINETUNE_LR_FULL


MODES: dict[str, Mode] = {}  # in the order reports and --help list them


def register_mode(mode: Mode) -> Mode:
    """Add `mode` to the table (after the others); a name already there is refused."""
    if mode.name in MODES:
        raise AdaptkitError(f"adaptation mode {mode.name!r} is already registered")
    MODES[mode.name] = mode
    return mode


def get_mode(name: str) -> Mode:
    """The mode called `name`, or a one-line error listing the modes."""
    try:
        return MODES[name]
    except KeyError:
        raise AdaptkitError(
            f"adaptation mode {name!r}: expected one of {', '.join(MODES)}"
        ) from None


def mode_names(*, scratch: bool | None = None) -> tuple[str, ...]:
    """The modes' names in table order (`scratch`: only those with / without a base)."""
    return tuple(m.name for m in MODES.values() if scratch is None or m.scratch == scratch)


def modes_help(*, scratch: bool | None = None) -> str:
    """`name: help` for every mode, for --help."""
    return "; ".join(f"{m.name}: {m.help}" for m in MODES.values()
                     if scratch is None or m.scratch == scratch)  # fmt: skip


@dataclass(frozen=True)
class ModeChoice:
    """A mode and the settings one fine-tune applies it with (`resolve_mode`)."""

    mode: Mode
    freeze: FreezeMode  # what trains, the mode's unless overridden
    warm_start: str | None  # the old group to start from ("auto" or a name); None: not warm
    lora_rank: int | None
    lora_alpha: float | None  # None: 2 × rank
    patterns: tuple[str, ...]  # the mode's patterns, then the given ones ({group} unexpanded)
    start: str = START_FRESH  # fresh, warm (from warm_start) or auto (still to be probed)

    @property
    def init(self) -> str:
        """How the new group starts, spelled as --init takes it: fresh, warm:GROUP, auto."""
        return f"warm:{self.warm_start}" if self.start == START_WARM else self.start

    @property
    def lr(self) -> float:
        """The default learning rate: the mode's own, else by what trains."""
        return self.mode.lr if self.mode.lr is not None else lr_for(self.freeze)

    def freeze_patterns(self, group: str) -> tuple[str, ...]:
        """The patterns with "{group}" as the new group's name."""
        return tuple(p.replace("{group}", group) for p in self.patterns)


def parse_init(init: str) -> tuple[str, str | None]:
    """--init auto | fresh | warm:GROUP (warm alone: warm:auto) → (start, warm-start source)."""
    text = str(init).strip()
    if text in (START_AUTO, START_FRESH):
        return text, None
    if text == START_WARM or text.startswith(f"{START_WARM}:"):
        source = text.partition(":")[2].strip() or "auto"
        return START_WARM, source
    raise AdaptkitError(f"--init: expected auto, fresh or warm:GROUP, got {init!r}")


def resolve_mode(
    mode: str | None = None,
    *,
    init: str | None = None,
    freeze: FreezeMode | str | None = None,
    warm_start: str | None = None,
    lora_rank: int | None = None,
    lora_alpha: float | None = None,
    patterns: tuple[str, ...] = (),
) -> ModeChoice:
    """Turn a fine-tune's flags into a mode and its settings, once.

    `mode` names a table entry; without it the older flags spell one (`--lora-rank` → lora,
    `--warm-start` → warm, `--freeze none` → full, else frozen). Given flags then override the
    mode's settings: `init` how the new group starts (auto, fresh, warm:GROUP; else the mode's
    start), `freeze` what trains, `warm_start` the old group (the older spelling of
    --init warm:GROUP; a warm start is from "auto" unless told), `lora_rank` / `lora_alpha` the
    LoRA update."""
    if mode is None:
        if lora_rank is not None:
            mode = "lora"
        elif warm_start is not None:
            mode = "warm"
        elif freeze is not None and FreezeMode(freeze) is FreezeMode.NONE:
            mode = "full"
        else:
            mode = "frozen"
    chosen = get_mode(mode)
    if chosen.scratch:
        raise AdaptkitError(
            f"--mode {chosen.name}: trains without a base, so it is no fine-tune (the study's "
            "scratch cells pretrain it: `adaptkit pretrain`)"
        )
    start, source = chosen.start, None
    if init is not None:
        start, source = parse_init(init)
        if warm_start is not None and (start, source) != (START_WARM, warm_start):
            raise AdaptkitError(
                f"--init {init} contradicts --warm-start {warm_start} (give one of them)"
            )
    elif warm_start is not None:
        start, source = START_WARM, warm_start
    if start == START_WARM and source is None:
        source = "auto"
    return ModeChoice(
        mode=chosen,
        freeze=FreezeMode(freeze) if freeze is not None else chosen.trains,
        warm_start=source if start == START_WARM else None,
        lora_rank=lora_rank if lora_rank is not None else chosen.lora_rank,
        lora_alpha=lora_alpha,
        patterns=(*chosen.patterns, *patterns),
        start=start,
    )


# -- today's modes ---------------------------------------------------------------------------
for _mode in (
    Mode("frozen", "a new group; the trunk and every old group frozen", start=START_AUTO),
    Mode("warm", "as frozen, the new group warm-started from an old group", start=START_WARM),
    Mode("lora", "as frozen, + a LoRA update of the trunk only the new group sees", lora_rank=4),
    Mode("full", "a new group; everything trains (old robots change)", FreezeMode.NONE,
         keeps_old=False),
    Mode("scratch", "no base: the base's model size on the robot's data alone", scratch=True,
         keeps_old=False),
):  # fmt: skip
    register_mode(_mode)
