"""`adaptkit pretrain` and `adaptkit finetune ROBOT`: parse options into a job, call the library,
render. (Library imports sit inside the commands: `adaptkit --help` stays fast without torch.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from adaptkit import defaults as D
from adaptkit.adapt.modes import mode_names, modes_help, resolve_mode
from adaptkit.commands import flags
from adaptkit.commands.config_file import (
    OPT_CONFIG,
    OPT_PRINT_CONFIG,
    ConfigCommand,
    recorded_command,
    save_resolved,
)
from adaptkit.commands.registry import complete_robot
from adaptkit.commands.render import RichReporter, err_console, print_json, render_compare
from adaptkit.defaults import FreezeMode, Precision, SaveFormat, TokenOrderChoice
from adaptkit.errors import AdaptkitError
from adaptkit.plugins import get_registry


def parse_config_paths(values: list[str] | None) -> list[str]:
    """Repeated paths and/or the seed's JSON list string '["a.yaml", "b.yaml"]'.

    The seed guide prints the list as '[\\"a.yaml\\"]': inside single quotes a shell keeps the
    backslashes, so escaped quotes (\\") are read as plain quotes."""
    out: list[str] = []
    for value in values or []:
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                try:  # the seed guide's spelling, backslashes included
                    items = json.loads(text.replace('\\"', '"'))
                except json.JSONDecodeError:
                    raise AdaptkitError(
                        f"--dataset-config-paths: not a JSON list ({exc}): {text}"
                    ) from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise AdaptkitError("--dataset-config-paths: expected a JSON list of paths")
            out.extend(items)
        elif text:
            out.append(text)
    return out


def _given(**kw: Any) -> dict[str, Any]:
    """The options the user actually set (None: not given, the library's default applies)."""
    return {k: v for k, v in kw.items() if v is not None}


def _summary(
    result: Any, as_json: bool, compare: Any = None, warnings: Any = None, init: Any = None
) -> None:
    """JSON on request; the text summary was drawn when training ended (RichReporter's
    `training_summary`), before any evaluation's bars and tables."""
    if as_json:
        extra = {"compare": compare.rows} if compare is not None else {}
        if warnings is not None:
            extra["warnings"] = list(warnings)
        if init is not None:
            extra["init"] = init
        print_json({**extra, **result.as_dict()})


# Options both training commands share (each declared once).
def _opt(default: Any, *names: str, help: str, show: str | bool = True, **kw: Any) -> Any:
    return typer.Option(default, *names, help=help, show_default=show, **kw)


OPT_BATCH = _opt(
    None, "--batch-size", "--batch_size", help="Windows per process.", show=str(D.BATCH_SIZE)
)
OPT_CONTEXT = _opt(
    None,
    "--context-len",
    "--context_len",
    help="Window length.",
    show="the model's context_len",
    min=1,
)
OPT_STRIDE = _opt(
    None,
    "--trajectory-sparsity",
    "--trajectory_sparsity",
    help="Window start stride.",
    show="context_len / 4",
)
OPT_ACCUM = _opt(
    None, "--grad-accum", "--grad_accum", help="Micro-batches per optimiser step.", show="1"
)
OPT_WARMUP = _opt(
    None,
    "--warmup-ratio",
    "--warmup_ratio",
    help="Share of steps warming up.",
    show=str(D.WARMUP_RATIO),
)
OPT_WD = _opt(
    None,
    "--weight-decay",
    "--weight_decay",
    help="AdamW decay (Linear weights).",
    show=str(D.WEIGHT_DECAY),
)
OPT_SAVE_EVERY = _opt(None, "--save-every", "--save_every", help="Epochs between saves.", show="1")
OPT_SEED = _opt(None, "--seed", help="Training seed.", show="0", min=0, max=flags.SEED_MAX)
OPT_RESUME = _opt(False, "--resume", help="Continue from the run's newest checkpoint.")
OPT_DEVICE = _opt(
    None, "--device", help="cpu or cuda.", show="cuda if available", callback=flags.device
)
OPT_SAVE_DIR = _opt(Path("models"), "--save-dir", "--save_dir", help="Runs go to SAVE_DIR/NAME/.")
OPT_JSON = _opt(False, "--json", help="Print the summary as JSON.")
OPT_KEEP = _opt(None, "--keep", help="Keep only the newest N epochs.", show="all")
OPT_CHECKPOINTING = _opt(
    None,
    "--activation-checkpointing/--no-activation-checkpointing",
    help="Recompute each transformer block in the backward instead of storing it.",
    show="as the memory plan decides",
)
OPT_MAX_MEMORY = _opt(
    None,
    "--max-memory",
    help="Memory the run may peak at (e.g. 4G, 512M): micro-batches, accumulation and "
    "checkpointing are chosen to fit, the global batch unchanged.",
    show="what the process holds + 60% of the free memory",
)
OPT_LOG = _opt(
    None,
    "--log",
    help="Metrics destinations, comma-separated: jsonl, tensorboard, wandb (RUN/metrics.jsonl "
    "is always written).",
    show="jsonl",
)
OPT_TOKEN_ORDER = _opt(
    None,
    "--token-order",
    "--token_order",
    help="The base checkpoint's token order (obs,act,rew released; act,rew,obs the fork's).",
    show="recorded in config.json, else inferred and checked on its own tasks' data",
)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""

    @app.command("finetune", cls=ConfigCommand)
    def finetune_cmd(
        robot: str = typer.Argument(
            ..., help="Robot name (see `adaptkit robots`).", autocompletion=complete_robot
        ),
        pretrained_path: str = _opt(
            None,
            "--pretrained-path",
            "--pretrained_path",
            help="Base checkpoint: an NNNN_epoch dir, a run dir (newest epoch), or a Hub repo "
            "(hf://ORG/NAME, optionally @REV and /SUBFOLDER).",
            show="SAVE_DIR/base if built there, else the base shipped with adaptkit "
            "(adaptkit:default)",
        ),
        dataset_config_paths: list[str] = _opt(
            None,
            "--dataset-config-paths",
            "--dataset_config_paths",
            help="Dataset config YAML(s): repeat, or a JSON list.",
            show="the robot plugin's entry; collected in simulation on first use",
        ),
        data_dir: Path = _opt(
            None,
            "--data-dir",
            "--data_dir",
            help="Folder the dataset configs' paths are relative to.",
            show="data, created and filled on first use",
        ),
        name: str = _opt(
            None, "--name", help="Run name.", show="ROBOT_finetune", callback=flags.run_name
        ),
        save_dir: Path = OPT_SAVE_DIR,
        mode: str = _opt(
            None,
            "--mode",
            help=f"Adaptation mode — {modes_help(scratch=False)}. --freeze, --warm-start and "
            "--lora-rank spell one too, or change the mode's settings.",
            show="frozen, or the one the flags below spell",
            callback=flags.finetune_mode,
            metavar="<" + "|".join(mode_names(scratch=False)) + ">",
        ),
        freeze: FreezeMode = _opt(
            None,
            "--freeze",
            help="transformer: only the new group trains; none: everything trains.",
            show="the mode's: transformer, none for --mode full",
        ),
        freeze_transformer: bool = _opt(
            False,
            "--freeze_transformer",
            help="The seed's spelling of --freeze transformer.",
            show=False,
        ),
        freeze_pattern: list[str] = _opt(
            None,
            "--freeze-pattern",
            help="fnmatch on param names; '!pat' freezes (repeatable).",
            show=False,
        ),
        init: str = _opt(
            None,
            "--init",
            help="How the new group starts: auto (warm from the old group that does best "
            "zero-shot on the robot in a seconds-long probe, when that beats standing still; "
            "else fresh), fresh, or warm:GROUP.",
            show="auto (the frozen mode's; lora/full: fresh)",
        ),
        warm_start: str = _opt(
            None,
            "--warm-start",
            "--warm_start",
            help="Start the new group from an old group's weights: auto (the old group whose "
            "dims match, else the tensors whose shapes match) or a group name.",
            show="freshly initialised",
        ),
        lora_rank: int = _opt(
            None,
            "--lora-rank",
            "--lora_rank",
            help="Also train a rank-N LoRA update of the trunk's attention/MLP layers that only "
            "the new group's tokens see (old robots stay bit-identical).",
            show="no LoRA",
        ),
        lora_alpha: float = _opt(
            None,
            "--lora-alpha",
            help="LoRA scale numerator (update × alpha/rank).",
            show="2 × rank",
        ),
        epochs: int = _opt(
            None, "--epochs", help="Epochs (at most: early stopping).", show=str(D.FINETUNE_EPOCHS)
        ),
        val_share: float = _opt(
            None,
            "--val-share",
            help="Share of the histories held out for early stopping on their validation loss "
            "(0: off, every epoch kept).",
            show=str(D.FINETUNE_VAL_SHARE),
        ),
        patience: int = _opt(
            None,
            "--patience",
            min=1,
            help="Stop after this many epochs without a 1 % better validation loss.",
            show=str(D.FINETUNE_PATIENCE),
        ),
        lr: float = _opt(
            None,
            "--lr",
            help="Peak learning rate.",
            show=f"{D.FINETUNE_LR_FROZEN:g} with --freeze transformer, else {D.FINETUNE_LR_FULL:g}",
        ),
        batch_size: int = OPT_BATCH,
        context_len: int = OPT_CONTEXT,
        stride: int = OPT_STRIDE,
        grad_accum: int = OPT_ACCUM,
        precision: Precision = _opt(
            None, "--precision", help="Arithmetic.", show=D.FINETUNE_PRECISION.value
        ),
        warmup_ratio: float = OPT_WARMUP,
        weight_decay: float = OPT_WD,
        save_every: int = OPT_SAVE_EVERY,
        seed: int = OPT_SEED,
        resume: bool = OPT_RESUME,
        save: SaveFormat = _opt(
            SaveFormat.AUTO,
            "--save",
            help="Each epoch: the full model, or the new group as an adapter "
            "(auto: adapter when only the new group trains and the base's weights are ≥ 100 MiB).",
        ),
        keep: int = OPT_KEEP,
        checkpointing: bool = OPT_CHECKPOINTING,
        max_memory: str = OPT_MAX_MEMORY,
        stats: Path = _opt(
            None, "--stats", help="stats.json with the robot's task.", show="found or computed"
        ),
        obs_layout: str = _opt(
            None,
            "--obs-layout",
            "--obs_layout",
            help="The robot's observation layout: locomotion45, fork33 (the fork's 33 dims).",
            show="the data's; collecting: the one a base group fits, else the plugin's",
        ),
        token_order: TokenOrderChoice = OPT_TOKEN_ORDER,
        device: str = OPT_DEVICE,
        evaluate: bool = _opt(
            True, "--eval/--no-eval", help="Afterwards: zero-shot vs fine-tuned in simulation."
        ),
        eval_envs: int = _opt(
            None,
            "--eval-envs",
            "--num_envs",
            "--num-envs",
            help="Envs to compare in.",
            min=1,
            show=str(D.NUM_ENVS),
        ),
        eval_episodes: int = _opt(
            None, "--eval-episodes", help="Episodes in one context.", show=str(D.EPISODES), min=1
        ),
        eval_seed: int = _opt(
            None,
            "--eval-seed",
            help="Env seed; no training data used it.",
            show=str(D.HELD_OUT_SEED),
            min=0,
            max=flags.SEED_MAX,
        ),
        recipe: str = typer.Option(
            "default", "--recipe", hidden=True, help="Sizes of what defaults build: default | tiny."
        ),
        log: list[str] = OPT_LOG,
        as_json: bool = OPT_JSON,
        config: Path = OPT_CONFIG,
        print_config: bool = OPT_PRINT_CONFIG,
    ) -> None:
        """Add ROBOT as a new group to a pretrained model, freeze the rest, train, save, compare."""
        from adaptkit.bootstrap.recipe import Recipe
        from adaptkit.pipeline import adapt
        from adaptkit.train import FinetuneJob, TrainConfig
        from adaptkit.train.memory import parse_memory

        if freeze_transformer and freeze is FreezeMode.NONE:
            raise AdaptkitError(f"--freeze_transformer contradicts --freeze {freeze.value}")
        # the flags as one mode and its settings (what trains, start, LoRA, the default lr)
        choice = resolve_mode(
            mode,
            init=init,
            freeze=FreezeMode.TRANSFORMER if freeze_transformer else freeze,
            warm_start=warm_start,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
        )
        registry = get_registry()
        plan = Recipe.named(recipe)
        options = _given(
            epochs=epochs, lr=lr, batch_size=batch_size, context_len=context_len,
            trajectory_sparsity=stride, grad_accum=grad_accum, precision=precision,
            warmup_ratio=warmup_ratio, weight_decay=weight_decay, save_every=save_every,
            seed=seed, activation_checkpointing=checkpointing,
            max_memory=parse_memory(max_memory), val_share=val_share, patience=patience,
        )  # fmt: skip
        job = FinetuneJob(
            robot=registry.robot(robot),
            pretrained_path=pretrained_path,
            dataset_config_paths=tuple(parse_config_paths(dataset_config_paths)),
            data_dir=data_dir,
            name=name,
            save_dir=save_dir,
            mode=choice.mode.name,
            freeze=choice.freeze,
            freeze_patterns=tuple(freeze_pattern or ()),
            train=TrainConfig.for_finetune(
                choice.freeze,
                **{
                    "lr": choice.lr,
                    "epochs": plan.finetune_epochs,
                    "precision": plan.precision,
                    **options,
                },
            ),
            resume=resume,
            stats_path=stats,
            device=device,
            save=save,
            keep=keep,
            log=tuple(log or ()),
            obs_layout=obs_layout,
            token_order=token_order.value if token_order else None,
            warm_start=choice.warm_start,
            lora_rank=choice.lora_rank,
            lora_alpha=choice.lora_alpha,
            command=recorded_command(),
            init=choice.init,
        )
        evaluation = plan.eval_settings(num_envs=eval_envs, episodes=eval_episodes, seed=eval_seed)
        result = adapt(
            job,
            registry,
            recipe=plan,
            evaluate=evaluate,
            evaluation=evaluation,
            reporter=RichReporter(quiet=as_json),
        )
        save_resolved(result.finetune.run_dir)
        _summary(result.finetune, as_json, result.compare, result.warnings, result.init)
        if result.compare is not None and not as_json:
            s = result.compare.reports["fine-tuned"].summary
            render_compare(
                result.compare,
                f"{robot}: zero-shot vs fine-tuned, seed {s['seed']}, {s['num_envs']} envs × "
                f"{s['episodes_requested']} episodes in one context",
            )
        if not as_json:
            for warning in result.warnings:  # below the table it is about
                err_console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)

    @app.command("build-base")
    def build_base_cmd(
        out: Path = typer.Option(
            None,
            "--out",
            help="The base's run folder.",
            show_default="models/base (models/in-context for --recipe in-context)",
        ),
        data_dir: Path = typer.Option(
            Path("data"), "--data-dir", help="Where the base robots' histories are (collected)."
        ),
        recipe: str = typer.Option(
            "default",
            "--recipe",
            help="default | tiny | in-context (the base that learns a body from its context, "
            "docs/in_context.md).",
        ),
        ship: bool = typer.Option(
            False,
            "--ship",
            help="Then copy it into the package as the base `finetune` starts from "
            "(maintainers; a source checkout, the default recipe).",
        ),
        where: bool = typer.Option(
            False,
            "--where",
            help="Only print the base `finetune` starts from: --out when it exists, else the "
            "shipped one (for scripts).",
        ),
    ) -> None:
        """Rebuild the default base from its recipe: collect the base robots' histories and
        pretrain (resumable); provenance.json records the recipe, command and data
        fingerprint."""
        from adaptkit.bootstrap.base import ensure_base_model
        from adaptkit.bootstrap.provenance import read_provenance
        from adaptkit.bootstrap.recipe import Recipe
        from adaptkit.bootstrap.ship import check_shippable, ship_base, shipped_base

        if recipe == "in-context":
            _build_in_context(out or Path("models/in-context"), ship, where)
            return
        out = out or Path("models/base")
        plan = Recipe.named(recipe)
        if where:
            print(out if out.exists() else (shipped_base(plan) or out))
            return
        if ship:
            check_shippable(plan)  # before minutes of building
        registry = get_registry()
        base = ensure_base_model(out, data_dir, registry, plan, RichReporter())
        info = read_provenance(base) or {}
        print_json({"base": str(base), "seconds": info.get("seconds")})
        if ship:
            dest = ship_base(base, registry)
            print_json({"shipped": str(dest), **(read_provenance(dest) or {}).get("check", {})})

    def _build_in_context(out: Path, ship: bool, where: bool) -> None:
        from adaptkit.bootstrap.in_context import IN_CONTEXT_BASE
        from adaptkit.bootstrap.provenance import read_provenance
        from adaptkit.study.in_context_base import build_in_context_base, ship_in_context_base

        if where:
            print(out if out.exists() else IN_CONTEXT_BASE)
            return
        registry = get_registry()
        base = build_in_context_base(out, registry, RichReporter())
        print_json({"base": str(base), "seconds": (read_provenance(base) or {}).get("seconds")})
        if ship:
            dest = ship_in_context_base(base, registry)
            print_json({"shipped": str(dest), **(read_provenance(dest) or {}).get("check", {})})

    @app.command("pretrain", cls=ConfigCommand)
    def pretrain_cmd(
        configs: list[str] = typer.Argument(..., help="Dataset config YAML(s)."),
        name: str = _opt(
            "base", "--name", help="Run name: SAVE_DIR/NAME/.", callback=flags.run_name
        ),
        model_config: Path = _opt(
            None,
            "--model-config",
            "--model_config",
            help="Model size YAML/JSON (config.json keys).",
            show="configs/model_small.yaml's sizes",
        ),
        data_dir: Path = _opt(
            Path("data"), "--data-dir", "--data_dir", help="Config paths are relative to it."
        ),
        save_dir: Path = OPT_SAVE_DIR,
        epochs: int = _opt(D.EPOCHS, "--epochs", help="Epochs."),
        lr: float = _opt(D.LR, "--lr", help="Peak learning rate."),
        batch_size: int = OPT_BATCH,
        context_len: int = OPT_CONTEXT,
        stride: int = OPT_STRIDE,
        grad_accum: int = OPT_ACCUM,
        precision: Precision = _opt(D.PRECISION, "--precision", help="Arithmetic."),
        warmup_ratio: float = OPT_WARMUP,
        weight_decay: float = OPT_WD,
        save_every: int = OPT_SAVE_EVERY,
        seed: int = OPT_SEED,
        resume: bool = OPT_RESUME,
        keep: int = OPT_KEEP,
        checkpointing: bool = OPT_CHECKPOINTING,
        max_memory: str = OPT_MAX_MEMORY,
        stats: Path = _opt(None, "--stats", help="stats.json.", show="found or computed"),
        device: str = OPT_DEVICE,
        log: list[str] = OPT_LOG,
        as_json: bool = OPT_JSON,
        shard_data: bool = _opt(
            False,
            "--shard-data",
            help="Under torchrun: each process reads only its part of every task's histories "
            "(docs/cluster.md).",
        ),
        config: Path = OPT_CONFIG,
        print_config: bool = OPT_PRINT_CONFIG,
    ) -> None:
        """Train a base model from scratch on every training task of the dataset configs."""
        from adaptkit.train import TrainConfig, pretrain
        from adaptkit.train.memory import parse_memory

        cfg = TrainConfig(**_given(
            epochs=epochs, lr=lr, batch_size=batch_size, context_len=context_len,
            trajectory_sparsity=stride, grad_accum=grad_accum, precision=precision,
            warmup_ratio=warmup_ratio, weight_decay=weight_decay, save_every=save_every,
            seed=seed, activation_checkpointing=checkpointing,
            max_memory=parse_memory(max_memory),
        ))  # fmt: skip
        result = pretrain(
            parse_config_paths(configs),
            data_dir=data_dir,
            name=name,
            save_dir=save_dir,
            model_config=model_config,
            train_config=cfg,
            resume=resume,
            stats_path=stats,
            device=device,
            reporter=RichReporter(quiet=as_json),
            registry=get_registry(),
            keep=keep,
            log=log or None,
            shard_data=shard_data,
            command=recorded_command(),
        )
        save_resolved(result.run_dir)
        _summary(result, as_json)
