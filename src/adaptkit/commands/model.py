"""`adaptkit groups`, `adaptkit inspect`: what is inside a checkpoint; `adaptkit merge`: an
adapter and its base as one full checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from adaptkit.commands.render import RichReporter, console, print_json, table
from adaptkit.defaults import TokenOrderChoice
from adaptkit.plugins import get_registry

CKPT = typer.Argument(
    ...,
    help="An NNNN_epoch checkpoint dir, a run dir (takes the latest), an adapter dir, or a Hub "
    "repo (hf://ORG/NAME, optionally @REV and /SUBFOLDER).",
)
BASE = typer.Option(
    None,
    "--base",
    help="The base of an adapter (local path or hf://ORG/NAME).",
    show_default="the base the adapter records",
)
TOKEN_ORDER = typer.Option(
    None,
    "--token-order",
    "--token_order",
    help="Token order to load with (obs,act,rew released; act,rew,obs the fork's).",
    show_default="recorded in config.json, else inferred",
)
DATA_DIR = typer.Option(
    None,
    "--data-dir",
    "--data_dir",
    help="Check an unrecorded token order on the checkpoint's own tasks' histories here.",
    show_default="no check",
)


def _load(
    ckpt: str,
    base: str | None,
    token_order: TokenOrderChoice | None,
    data_dir: Path | None,
    quiet: bool,
    hash_weights: bool = True,
):
    """The checkpoint, its token order settled on data when --data-dir is given."""
    from adaptkit.ckpt.load import load_checkpoint
    from adaptkit.ckpt.token_order import own_task_data, settle_token_order

    loaded = load_checkpoint(
        ckpt,
        hash_weights=hash_weights,
        base=base,
        token_order=token_order.value if token_order else None,
    )
    if data_dir is not None:
        robots = list(get_registry().robots.values())
        data = own_task_data(loaded, data_dir, robots)
        settle_token_order(loaded, data, RichReporter(quiet=quiet))
    return loaded


def groups(
    ckpt: str = CKPT,
    base: str | None = BASE,
    token_order: TokenOrderChoice | None = TOKEN_ORDER,
    data_dir: Path | None = DATA_DIR,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Groups and tasks inside a checkpoint, their obs/act dims, layouts and parameter counts,
    and the token order (and why)."""
    from adaptkit.adapt.surgery import describe_groups

    # shapes only: a full checkpoint's weights are mapped, never hashed
    loaded = _load(ckpt, base, token_order, data_dir, json_out, hash_weights=False)
    rows = describe_groups(loaded)
    if json_out:
        print_json(rows)
        return
    cols = ["group", "tasks", "obs", "act", "layout", "params"]
    data = [
        (
            r["group"],
            ", ".join(r["tasks"]),
            r["obs_dim"],
            r["act_dim"],
            r["obs_layout"] or "-",
            f"{r['params']:,}",
        )
        for r in rows
    ]
    console.print(table(f"groups in {loaded.path}", cols, data))
    if rows:
        r = rows[0]
        console.print(f"token order: {r['token_order']} ({r['token_order_source']})")


def inspect(
    ckpt: str = CKPT,
    base: str | None = BASE,
    token_order: TokenOrderChoice | None = TOKEN_ORDER,
    data_dir: Path | None = DATA_DIR,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Model config, token order (and why), parameters per module and the weights' fingerprint."""
    from adaptkit.adapt.surgery import describe_checkpoint

    info = describe_checkpoint(_load(ckpt, base, token_order, data_dir, json_out))
    if json_out:
        print_json(info)
        return
    console.print(f"[bold]{info['path']}[/]  fingerprint {info['fingerprint'][:16]}")
    if info["base"]:
        console.print(f"adapter on base {info['base']}", highlight=False)
    console.print(f"token order: {info['token_order']} ({info['token_order_source']})")
    cfg = info["model_config"]
    console.print(table("model config", ["key", "value"], cfg.items()))
    params = [
        (r["module"], f"{r['params']:,}", f"{r['trainable']:,}", r["trainable_pct"])
        for r in info["parameters"]
    ]
    console.print(table("parameters", ["module", "params", "trainable", "%"], params))
    g = [(r["group"], ", ".join(r["tasks"]), r["obs_dim"], r["act_dim"]) for r in info["groups"]]
    console.print(table("groups", ["group", "tasks", "obs", "act"], g))


def merge(
    adapter: str = typer.Argument(
        ...,
        help="The adapter: a dir with adapter_config.json + adapter_model.safetensors (e.g. an "
        "epoch of a fine-tune), or a run dir (its newest epoch).",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Where to write: an NNNN_epoch dir, or a run dir (gets the adapter's NNNN_epoch).",
    ),
    base: str | None = BASE,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Base + adapter → one full checkpoint (model.pth, metadata.json, config.json)."""
    from adaptkit.ckpt.adapter import read_adapter
    from adaptkit.ckpt.checkpoint import resolve_checkpoint
    from adaptkit.ckpt.load import merge_adapter
    from adaptkit.model.lora import lora_groups

    src = resolve_checkpoint(adapter)
    cfg, tensors = read_adapter(src)
    path = merge_adapter(src, out, base=base)
    info = {
        "merged": str(path),
        "adapter": str(src),
        "group": cfg.group,
        "tasks": list(cfg.tasks.tasks),
        "base_fingerprint": cfg.base.fingerprint,
        "adapter_tensors": len(tensors),
        "lora": cfg.group in lora_groups(cfg.tasks),
    }
    if json_out:
        print_json(info)
        return
    # LoRA that only one group's tokens see cannot be folded into the shared trunk without
    # changing every other group, so its tensors stay separate: adaptkit's layout, not the seed's
    layout = (
        f"adaptkit's layout (its LoRA tensors stay as lora.{cfg.group}.*, which the reference "
        "loader does not read)"
        if info["lora"]
        else "the reference layout"
    )
    console.print(
        f"wrote {path}: base + group '{cfg.group}' ({', '.join(info['tasks'])}), a full "
        f"checkpoint in {layout}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("groups")(groups)
    app.command("inspect")(inspect)
    app.command("merge")(merge)
    app.command("apply-adapter", help="The same as `merge`.", hidden=True)(merge)
