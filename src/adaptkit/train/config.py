"""Training settings: hyper-parameters (TrainConfig, with the fine-tune defaults), a whole
fine-tune job (FinetuneJob), and what a run did (RunResult)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptkit import defaults
from adaptkit.adapt.modes import ModeChoice, lr_for, resolve_mode
from adaptkit.ckpt.hub import parse_hub_ref
from adaptkit.ckpt.shipped import is_shipped_name
from adaptkit.defaults import FreezeMode, SaveFormat
from adaptkit.errors import AdaptkitError, short_repr
from adaptkit.robot import RobotSpec
from adaptkit.train.metrics import parse_destinations

PRECISIONS = tuple(p.value for p in defaults.Precision)
# what describes the machine rather than the run: a resumed run takes the given value
MACHINE_KEYS = ("max_memory",)


@dataclass
class TrainConfig:
    """Optimiser, schedule and data-window settings shared by pretrain and finetune.

    `batch_size` is the micro-batch of one process; one optimiser step sees
    batch_size × grad_accum × world_size windows (the global batch).
    """

    epochs: int = defaults.EPOCHS
    lr: float = defaults.LR
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = defaults.WEIGHT_DECAY  # applied to nn.Linear weights only
    warmup_ratio: float = defaults.WARMUP_RATIO  # share of optimiser steps warming up linearly
    min_lr_ratio: float = 0.0  # cosine floor, as a fraction of lr
    batch_size: int = defaults.BATCH_SIZE
    grad_accum: int = 1
    context_len: int | None = None  # None: the model's context_len
    trajectory_sparsity: int | None = None  # window start stride; None: context_len // 4
    precision: str = defaults.PRECISION.value
    grad_clip: float | None = 1.0
    seed: int = 0
    save_every: int = 1  # epochs between checkpoints (the last epoch is always saved)
    save_initial: bool = True  # write 0000_epoch (the untrained model) before training
    num_workers: int = 0
    max_steps_per_epoch: int | None = None  # cap optimiser steps per epoch (quick runs, benches)
    shuffle: bool = True
    # recompute transformer blocks in the backward; None: as the memory plan decides
    activation_checkpointing: bool | None = None
    # bytes the process may peak at (adaptkit.train.memory); None: a share of what is free
    max_memory: int | None = None
    # early stopping on a held-out validation loss (adaptkit.train.early_stop): this share of
    # the histories held out (0: off, as pretraining and the study's budgeted cells run), stop
    # after `patience` epochs that do not improve it by a relative `min_delta`
    val_share: float = 0.0
    patience: int = 2
    min_delta: float = 0.01

    def __post_init__(self) -> None:
        if isinstance(self.precision, defaults.Precision):
            self.precision = self.precision.value
        self.validate()
        self.betas = (float(self.betas[0]), float(self.betas[1]))

    @classmethod
    def for_finetune(cls, freeze_mode: str = "transformer", **overrides: Any) -> TrainConfig:
        """Fine-tune defaults: 10 epochs, bf16 autocast; lr 1e-3 when only the new group
        trains, else 1e-4.

        The seed's 1e-4 suits nudging pretrained weights (`none`). With the trunk frozen only a
        freshly initialised group trains, and 1e-4 leaves it undertrained on small budgets:
        Mini Cheetah, one learning history × 10 epochs: 1e-4 → 52 % of the demonstrator's
        return, 3e-4 → 92 %, 1e-3 → 101 % (with all eight histories every lr reaches ≈100 %).
        """
        base = {
            "epochs": defaults.FINETUNE_EPOCHS,
            "precision": defaults.FINETUNE_PRECISION.value,
            "val_share": defaults.FINETUNE_VAL_SHARE,
            "patience": defaults.FINETUNE_PATIENCE,
        }
        return cls(**{"lr": lr_for(freeze_mode), **base, **overrides})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Strict types: a bool is not a number, a string is neither (a config read back from
        state.pth or written by hand must not pass "false" as true or True as 1)."""

        def bad(name: str, expected: str) -> AdaptkitError:
            return AdaptkitError(
                f"training option '{name}' must be {expected}, "
                f"got {short_repr(getattr(self, name))}"
            )

        def number(v: Any) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

        for name in ("epochs", "batch_size", "grad_accum", "save_every", "patience"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name, "an integer >= 1")
        for name in ("context_len", "trajectory_sparsity", "max_steps_per_epoch"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise bad(name, "an integer >= 1 (or unset)")
        mm = self.max_memory
        if mm is not None and (isinstance(mm, bool) or not isinstance(mm, int) or mm < 2**20):
            raise bad("max_memory", "a number of bytes >= 1 MiB (or unset)")
        for name in ("seed", "num_workers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or (name == "num_workers" and v < 0):
                raise bad(name, "an integer" + (" >= 0" if name == "num_workers" else ""))
        for name in ("save_initial", "shuffle"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "true or false (a boolean, not a string or number)")
        if not (number(self.lr) and self.lr > 0):
            raise bad("lr", "a finite number > 0")
        if (
            not isinstance(self.betas, list | tuple)
            or len(self.betas) != 2
            or not all(number(b) and 0.0 <= b < 1.0 for b in self.betas)
        ):
            raise bad("betas", "two numbers in [0, 1)")
        if not (number(self.weight_decay) and self.weight_decay >= 0):
            raise bad("weight_decay", "a number >= 0")
        if not (number(self.warmup_ratio) and 0.0 <= self.warmup_ratio < 1.0):
            raise bad("warmup_ratio", "a number in [0, 1)")
        if not (number(self.val_share) and 0.0 <= self.val_share <= 0.5):
            raise bad("val_share", "a number in [0, 0.5] (0: no early stopping)")
        if not (number(self.min_delta) and 0.0 <= self.min_delta < 1.0):
            raise bad("min_delta", "a number in [0, 1)")
        if not (number(self.min_lr_ratio) and 0.0 <= self.min_lr_ratio <= 1.0):
            raise bad("min_lr_ratio", "a number in [0, 1]")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"one of {', '.join(PRECISIONS)}")
        if self.grad_clip is not None and not (number(self.grad_clip) and self.grad_clip > 0):
            raise bad("grad_clip", "a number > 0 (or unset to disable)")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def stride(self, context_len: int) -> int:
        """Window start stride: trajectory_sparsity, else a quarter of the context."""
        return self.trajectory_sparsity or max(1, context_len // 4)

    def config_json(self, context_len: int, extra: Mapping[str, Any]) -> dict[str, Any]:
        """config.json's training keys, as the reference spells them, plus adaptkit's own."""
        out = dict(extra)
        out.update(self.reference_keys(context_len, self.stride(context_len)))
        out["adaptkit_train"] = self.to_dict()
        return json.loads(json.dumps(out, default=str))

    def resumed(self, saved: Mapping[str, Any]) -> tuple[TrainConfig, list[str]]:
        """The settings a resumed run continues with (its own: else it could not end where an
        uninterrupted run ends), and the given values that were ignored for them."""
        cfg = TrainConfig.from_dict(dict(saved))
        cfg = cfg.replace(**{k: getattr(self, k) for k in MACHINE_KEYS})
        ignored = [
            f"{k}={v!r} (run: {getattr(cfg, k)!r})"
            for k, v in self.to_dict().items()
            if v != cfg.to_dict().get(k)
        ]
        return cfg, ignored

    def reference_keys(self, context_len: int, stride: int) -> dict[str, Any]:
        """The training keys of config.json, spelled as the reference writes them."""
        return {
            "context_len": context_len,
            "trajectory_sparsity": stride,
            "lr": self.lr,
            "betas": list(self.betas),
            "weight_decay": self.weight_decay,
            "precision": self.precision,
            "grad_accum_steps": self.grad_accum,
            "warmup_ratio": self.warmup_ratio,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "save_every": self.save_every,
            "seed": self.seed,
            "clip_grad": self.grad_clip,
        }


def _is_hub(path: Path | str) -> bool:
    """A Hub reference, or a shipped base's portable name (adaptkit:NAME@FP): not local paths."""
    return is_shipped_name(path) or parse_hub_ref(path) is not None


@dataclass
class FinetuneJob:
    """Everything one fine-tune needs. `None` fields take the documented defaults."""

    robot: RobotSpec
    # None: models/base if built, else the shipped base (adaptkit.bootstrap.ship.default_base); a
    # local path or a Hub reference
    pretrained_path: Path | str | None = None
    dataset_config_paths: tuple[Path, ...] = ()  # empty: the robot plugin's own entry
    data_dir: Path | None = None  # None: data/
    name: str | None = None  # None: <robot>_finetune
    save_dir: Path = defaults.SAVE_DIR
    # The adaptation mode (adaptkit.adapt.modes: frozen, warm, lora, full, ...); None: the one
    # the fields below spell (lora_rank → lora, warm_start → warm, freeze none → full, else
    # frozen). Those fields, when given, override the mode's settings; after construction they
    # hold what the run applies (`choice`).
    mode: str | None = None
    freeze: FreezeMode | None = None  # what trains; None: the mode's
    freeze_patterns: tuple[str, ...] = ()  # applied after the mode's own patterns
    train: TrainConfig | None = None  # None: TrainConfig.for_finetune, at the mode's lr
    resume: bool = False
    stats_path: Path | None = None
    device: str | None = None  # None: cuda when available
    save: SaveFormat = SaveFormat.AUTO  # full checkpoints or adapter-sized epochs
    keep: int | None = None  # keep only the newest N epochs (None: all)
    log: tuple[str, ...] = ()  # metrics destinations (jsonl, tensorboard, wandb); (): jsonl
    # The robot's observation layout; None: the one its data is in (adaptkit.data.layout).
    obs_layout: str | None = None
    # The base's token order; None: recorded in its config.json, else inferred (adaptkit.meta)
    # and checked on its own tasks' histories when at hand (adaptkit.ckpt.token_order).
    token_order: str | None = None
    # Other robots (e.g. the registry's): their histories under data_dir may be the base's own
    # tasks' data, for that check.
    known_robots: tuple[RobotSpec, ...] = ()
    # The mode's settings (adaptkit.adapt.surgery, adaptkit.model.lora), given or the mode's:
    # warm_start: "auto" or an old group's name: the new group starts from that group's weights
    # (the tensors whose shapes match); None: freshly initialised.
    warm_start: str | None = None
    # lora_rank: also train a low-rank update of the trunk's attention/MLP Linear layers that
    # applies to the new group's tokens only (old groups stay bit-identical); None: no LoRA.
    lora_rank: int | None = None
    lora_alpha: float | None = None  # None: 2 × rank (the update is scaled by alpha / rank)
    # The command that started the run, as typed (the CLI passes its argv): recorded in the
    # run's config.json, adapter and model card. None: a Python caller (recorded as such).
    command: str | None = None
    # How the new group starts (adaptkit.adapt.modes.parse_init): auto, fresh or warm:GROUP;
    # None: the mode's start. `auto` is settled by the main job's zero-shot probe
    # (adaptkit.pipeline), which records what it measured in `init_record` (config.json's
    # adaptkit_init, the model card); a fine-tune run without the probe starts fresh.
    init: str | None = None
    init_record: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.lora_rank is not None and (
            isinstance(self.lora_rank, bool)
            or not isinstance(self.lora_rank, int)
            or self.lora_rank < 1
        ):
            raise AdaptkitError(f"--lora-rank: must be an integer >= 1, got {self.lora_rank!r}")
        if self.warm_start is not None and not str(self.warm_start).strip():
            raise AdaptkitError("--warm-start: give 'auto' or an old group's name")
        self.freeze_patterns = tuple(self.freeze_patterns)
        choice = self.choice  # the one resolution of the flags into a mode and its settings
        self.mode, self.freeze = choice.mode.name, choice.freeze
        self.warm_start, self.lora_rank = choice.warm_start, choice.lora_rank
        self.init = choice.init
        self.save = SaveFormat(self.save)
        self.log = parse_destinations(self.log or None)
        self.known_robots = tuple(self.known_robots)
        self.dataset_config_paths = tuple(Path(p) for p in self.dataset_config_paths)
        self.save_dir = Path(self.save_dir)
        for attr in ("data_dir", "stats_path"):
            if getattr(self, attr) is not None:
                setattr(self, attr, Path(getattr(self, attr)))
        if self.pretrained_path is not None and not _is_hub(self.pretrained_path):
            self.pretrained_path = Path(self.pretrained_path)  # a Hub reference stays a string
        if self.train is None:
            self.train = TrainConfig.for_finetune(self.freeze, lr=choice.lr)

    @property
    def choice(self) -> ModeChoice:
        """The mode and the settings this fine-tune applies it with (adaptkit.adapt.modes)."""
        return resolve_mode(
            self.mode,
            init=self.init,
            freeze=self.freeze,
            warm_start=self.warm_start,
            lora_rank=self.lora_rank,
            lora_alpha=self.lora_alpha,
            patterns=self.freeze_patterns,
        )

    @property
    def run_name(self) -> str:
        return self.name or f"{self.robot.name}_finetune"

    @property
    def base_path(self) -> Path | str:
        return self.pretrained_path or defaults.BASE_MODEL

    @property
    def data_folder(self) -> Path:
        return self.data_dir or defaults.DATA_DIR


@dataclass
class RunResult:
    """What a training run did: where it wrote, how the loss went, what was verified."""

    run_dir: Path
    checkpoints: list[Path]
    final_loss: float | None
    epoch_losses: list[float]  # mean training loss of every epoch (all epochs, also resumed ones)
    steps: int  # optimiser steps done in total
    tokens: int  # timesteps trained on in this invocation
    seconds: float
    tokens_per_s: float
    resumed_from: Path | None = None
    trainable: dict[str, Any] = field(default_factory=dict)  # surgery's parameter report
    frozen_verified: bool | None = None  # None: nothing frozen to check
    frozen_report: str = ""
    adapter: Path | None = None
    notes: list[str] = field(default_factory=list)
    robot: RobotSpec | None = None  # the robot as trained: in its data's observation layout
    token_order: str | None = None  # the order the model was trained with (recorded)
    early_stop: dict[str, Any] | None = None  # where and why it stopped (train.early_stop)

    @classmethod
    def from_loop(
        cls, run_dir: Path, loop: Any, seconds: float, resumed_from: Path | None, **extra: Any
    ) -> RunResult:
        """From the Trainer's LoopResult."""
        return cls(
            run_dir=run_dir,
            checkpoints=list(loop.checkpoints),
            final_loss=loop.epoch_losses[-1] if loop.epoch_losses else None,
            epoch_losses=loop.epoch_losses,
            steps=loop.steps,
            tokens=loop.tokens,
            seconds=seconds,
            tokens_per_s=loop.tokens / max(loop.seconds, 1e-9),
            resumed_from=resumed_from,
            early_stop=loop.early_stop,
            **extra,
        )

    @property
    def last_checkpoint(self) -> Path | None:
        return self.checkpoints[-1] if self.checkpoints else None

    def as_dict(self) -> dict[str, Any]:
        """The JSON summary the CLI prints."""
        return {
            "run_dir": str(self.run_dir),
            "checkpoints": [str(p) for p in self.checkpoints],
            "final_loss": self.final_loss,
            "epoch_losses": self.epoch_losses,
            "steps": self.steps,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 2),
            "tokens_per_s": round(self.tokens_per_s, 1),
            "resumed_from": str(self.resumed_from) if self.resumed_from else None,
            "frozen_verified": self.frozen_verified,
            "frozen_report": self.frozen_report,
            "adapter": str(self.adapter) if self.adapter else None,
            "obs_layout": (self.robot.obs_layout or "custom") if self.robot else None,
            "token_order": self.token_order,
            "early_stop": self.early_stop,
            "notes": self.notes,
        }
