"""`adaptkit pretrain` and `adaptkit finetune ROBOT`: parse options, call adaptkit.train, render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from adaptkit.commands.render import console, print_json, table
from adaptkit.errors import AdaptkitError

PRECISION_HELP = "fp32, or bf16 autocast."


def parse_config_paths(values: list[str] | None) -> list[str]:
    """Repeated paths and/or the seed's JSON list string '["a.yaml", "b.yaml"]'."""
    out: list[str] = []
    for value in values or []:
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                raise AdaptkitError(f"--dataset-config-paths: not a JSON list ({exc})") from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise AdaptkitError("--dataset-config-paths: expected a JSON list of paths")
            out.extend(items)
        elif text:
            out.append(text)
    return out


class Renderer:
    """Turns the library's progress events into rich output (rank 0 only gets events)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Progress | None = None
        self.task = None

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        getattr(self, f"on_{event}", lambda d: None)(data)

    def on_note(self, d: dict[str, Any]) -> None:
        console.print(f"[cyan]note:[/] {d['message']}", highlight=False)

    def on_trainable(self, d: dict[str, Any]) -> None:
        if self.quiet:
            return
        rows = [
            (r["module"], f"{r['params']:,}", f"{r['trainable']:,}", f"{r['trainable_pct']:.1f}%")
            for r in d["rows"]
        ]
        mode = d["freeze"]["mode"] if d.get("freeze") else "none (training from scratch)"
        console.print(
            table(f"Parameters (freeze: {mode})", ["module", "params", "trainable", "%"], rows)
        )

    def on_start(self, d: dict[str, Any]) -> None:
        console.print(
            f"training {d['epochs'] - d['start_epoch']} epoch(s) × {d['steps_per_epoch']} steps, "
            f"global batch {d['global_batch']} windows ({d['tokens_per_step']:,} timesteps/step), "
            f"{d['world_size']} process(es)",
            highlight=False,
        )
        if self.quiet:
            return
        self.bar = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.bar.start()
        self.task = self.bar.add_task(
            "train",
            total=d["total_steps"],
            completed=d["global_step"],
            epoch=d["start_epoch"] + 1,
            epochs=d["epochs"],
            loss="-",
            tps="-",
        )

    def on_step(self, d: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.update(
                self.task,
                completed=d["step"],
                epoch=d["epoch"],
                loss=f"{d['loss']:.4f}",
                tps=f"{d['tokens_per_s']:,.0f}",
            )

    def on_epoch(self, d: dict[str, Any]) -> None:
        msg = f"epoch {d['epoch']}: mean loss {d['loss']:.5f}"
        if self.bar is not None:
            self.bar.console.print(msg, highlight=False)
        else:
            console.print(msg, highlight=False)

    def on_checkpoint(self, d: dict[str, Any]) -> None:
        msg = f"saved {d['path']}"
        (self.bar.console if self.bar is not None else console).print(msg, highlight=False)

    def on_done(self, d: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _summary(result, as_json: bool, compare: Any = None) -> None:
    if as_json:
        print_json(
            {
                **({"compare": compare.rows} if compare is not None else {}),
                "run_dir": result.run_dir,
                "checkpoints": result.checkpoints,
                "final_loss": result.final_loss,
                "epoch_losses": result.epoch_losses,
                "steps": result.steps,
                "tokens": result.tokens,
                "seconds": round(result.seconds, 2),
                "tokens_per_s": round(result.tokens_per_s, 1),
                "resumed_from": result.resumed_from,
                "frozen_verified": result.frozen_verified,
                "frozen_report": result.frozen_report,
                "adapter": result.adapter,
                "notes": result.notes,
            }
        )
        return
    losses = ", ".join(f"{x:.4f}" for x in result.epoch_losses)
    console.print(f"[bold]done[/] in {result.seconds:.1f}s — epoch losses: {losses}")
    if result.frozen_verified:
        console.print(f"[green]✓ frozen weights verified:[/] {result.frozen_report}")
    elif result.frozen_verified is None and result.frozen_report:
        console.print(f"frozen weights: {result.frozen_report}")
    if result.last_checkpoint:
        console.print(f"checkpoint: {result.last_checkpoint}", highlight=False)
    if result.adapter:
        console.print(f"adapter:    {result.adapter}", highlight=False)


def _given(**kw: Any) -> dict[str, Any]:
    """The options the user actually set (None: not given, the library's default applies)."""
    return {k: v for k, v in kw.items() if v is not None}


def _recipe(name: str):
    from adaptkit.quickstart import Recipe

    recipes = {"default": Recipe, "tiny": Recipe.tiny}
    if name not in recipes:
        raise AdaptkitError(f"--recipe: expected one of {', '.join(recipes)}, got {name!r}")
    return recipes[name]()


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""

    @app.command("finetune")
    def finetune_cmd(
        robot: str = typer.Argument(..., help="Robot name (see `adaptkit robots`)."),
        pretrained_path: Path = typer.Option(
            None,
            "--pretrained-path",
            "--pretrained_path",
            help="Base checkpoint: an NNNN_epoch dir or a run dir (newest epoch). "
            "Default: SAVE_DIR/base, built from Go1/Go2/A1 on first use.",
            show_default=False,
        ),
        dataset_config_paths: list[str] = typer.Option(
            None,
            "--dataset-config-paths",
            "--dataset_config_paths",
            help="Dataset config YAML(s): repeat, or a JSON list. Default: the robot plugin's "
            "entry; its histories are collected in simulation on first use.",
        ),
        data_dir: Path = typer.Option(
            None,
            "--data-dir",
            "--data_dir",
            help="Folder the dataset configs' paths are relative to. [default: data, created "
            "and filled on first use]",
        ),
        name: str = typer.Option(None, "--name", help="Run name (default <robot>_finetune)."),
        save_dir: Path = typer.Option(Path("models"), "--save-dir", "--save_dir"),
        freeze: str = typer.Option(
            "transformer", "--freeze", help="transformer | new-group-only | none."
        ),
        freeze_transformer: bool = typer.Option(
            False,
            "--freeze-transformer",
            "--freeze_transformer",
            help="The seed's spelling of --freeze transformer (the default).",
        ),
        freeze_pattern: list[str] = typer.Option(
            None, "--freeze-pattern", help="fnmatch on param names; '!pat' freezes (repeatable)."
        ),
        epochs: int = typer.Option(None, "--epochs", help="[default: 10]"),
        lr: float = typer.Option(
            None, "--lr", help="[default: 1e-3 when only the new group trains, else 1e-4]"
        ),
        batch_size: int = typer.Option(None, "--batch-size", "--batch_size"),
        context_len: int = typer.Option(None, "--context-len", "--context_len"),
        stride: int = typer.Option(
            None, "--trajectory-sparsity", "--trajectory_sparsity", help="Window start stride."
        ),
        grad_accum: int = typer.Option(None, "--grad-accum", "--grad_accum"),
        precision: str = typer.Option(
            None, "--precision", help=PRECISION_HELP + " [default: bf16]"
        ),
        warmup_ratio: float = typer.Option(None, "--warmup-ratio", "--warmup_ratio"),
        weight_decay: float = typer.Option(None, "--weight-decay", "--weight_decay"),
        save_every: int = typer.Option(None, "--save-every", "--save_every"),
        seed: int = typer.Option(None, "--seed"),
        resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint."),
        stats: Path = typer.Option(None, "--stats", help="stats.json with the robot's task."),
        device: str = typer.Option(None, "--device", help="cpu or cuda (default: cuda if any)."),
        evaluate: bool = typer.Option(
            True, "--eval/--no-eval", help="Afterwards: zero-shot vs fine-tuned in simulation."
        ),
        eval_envs: int = typer.Option(
            None, "--eval-envs", "--num_envs", "--num-envs", help="[default: 16]"
        ),
        eval_episodes: int = typer.Option(
            None, "--eval-episodes", help="Episodes in one context. [default: 3]"
        ),
        eval_seed: int = typer.Option(
            None, "--eval-seed", help="Env seed; no training data used it. [default: 777]"
        ),
        recipe: str = typer.Option(
            "default", "--recipe", hidden=True, help="Sizes of what defaults build: default | tiny."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Add ROBOT as a new group to a pretrained model, freeze the rest, train, save, compare."""
        from adaptkit.commands.evaluate import eval_progress, render_compare
        from adaptkit.commands.render import collect_progress
        from adaptkit.quickstart import adapt

        if freeze_transformer and freeze != "transformer":
            raise AdaptkitError("--freeze_transformer contradicts --freeze " + freeze)
        options = dict(
            epochs=epochs, lr=lr, batch_size=batch_size, context_len=context_len,
            trajectory_sparsity=stride, grad_accum=grad_accum, precision=precision,
            warmup_ratio=warmup_ratio, weight_decay=weight_decay, save_every=save_every,
            seed=seed,
        )  # fmt: skip
        renderer = Renderer(quiet=as_json)
        with eval_progress(not as_json) as make_eval:
            result = adapt(
                robot,
                pretrained_path=pretrained_path,
                dataset_config_paths=parse_config_paths(dataset_config_paths) or None,
                data_dir=data_dir,
                name=name,
                save_dir=save_dir,
                freeze_mode=freeze,
                freeze_patterns=list(freeze_pattern or []),
                train_options=_given(**options),
                resume=resume,
                stats_path=stats,
                device=device,
                evaluate=evaluate,
                eval_envs=eval_envs,
                eval_episodes=eval_episodes,
                eval_seed=eval_seed,
                recipe=_recipe(recipe),
                train_progress=renderer,
                collect_progress=None if as_json else collect_progress,
                eval_progress=make_eval,
                note=None if as_json else lambda m: renderer.on_note({"message": m}),
            )
        _summary(result.finetune, as_json, result.compare)
        if result.compare is not None and not as_json:
            s = result.compare.reports["fine-tuned"].summary
            render_compare(
                result.compare,
                f"{robot}: zero-shot vs fine-tuned, seed {s['seed']}, {s['num_envs']} envs × "
                f"{s['episodes_requested']} episodes in one context",
            )

    @app.command("pretrain")
    def pretrain_cmd(
        configs: list[str] = typer.Argument(..., help="Dataset config YAML(s)."),
        name: str = typer.Option("base", "--name", help="Run name: {save_dir}/{name}/."),
        model_config: Path = typer.Option(
            None, "--model-config", "--model_config", help="Model size YAML/JSON (default small)."
        ),
        data_dir: Path = typer.Option(Path("data"), "--data-dir", "--data_dir"),
        save_dir: Path = typer.Option(Path("models"), "--save-dir", "--save_dir"),
        epochs: int = typer.Option(10, "--epochs"),
        lr: float = typer.Option(3e-4, "--lr"),
        batch_size: int = typer.Option(None, "--batch-size", "--batch_size"),
        context_len: int = typer.Option(None, "--context-len", "--context_len"),
        stride: int = typer.Option(None, "--trajectory-sparsity", "--trajectory_sparsity"),
        grad_accum: int = typer.Option(None, "--grad-accum", "--grad_accum"),
        precision: str = typer.Option(None, "--precision", help=PRECISION_HELP),
        warmup_ratio: float = typer.Option(None, "--warmup-ratio", "--warmup_ratio"),
        weight_decay: float = typer.Option(None, "--weight-decay", "--weight_decay"),
        save_every: int = typer.Option(None, "--save-every", "--save_every"),
        seed: int = typer.Option(None, "--seed"),
        resume: bool = typer.Option(False, "--resume"),
        stats: Path = typer.Option(None, "--stats", help="stats.json (default: computed)."),
        device: str = typer.Option(None, "--device"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Train a base model from scratch on every training task of the dataset configs."""
        from adaptkit.train import TrainConfig, pretrain

        cfg = TrainConfig(**_given(
            epochs=epochs, lr=lr, batch_size=batch_size, context_len=context_len,
            trajectory_sparsity=stride, grad_accum=grad_accum, precision=precision,
            warmup_ratio=warmup_ratio, weight_decay=weight_decay, save_every=save_every,
            seed=seed,
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
            progress=Renderer(quiet=as_json),
        )
        _summary(result, as_json)
