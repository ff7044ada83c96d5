"""Config-file runs: `--config run.yaml` and `--print-config` for the commands that run jobs
(finetune, pretrain, eval, compare, study), the resolved config saved beside the run, and the
command line as typed, which runs record.

Built on click's own config-file mechanism, the context's `default_map` (typer sits on click):
the file's values become the options' defaults, so a flag on the command line overrides the
file, and every value goes through its option's own conversion and checks (type, choices,
ranges, callbacks) exactly as a command-line value does. So no new dependency: a Hydra/OmegaConf
or draccus layer would add a second parser and a second set of names for the same ~40 options.
Done here: unknown keys are refused (with the nearest key), a refused value is named by file and
key, and the resolved config is written back in the same keys, so `--config RUN/run.yaml`
repeats a run.

Keys are the options' long names (`batch-size` or `batch_size`, `eval` for --eval/--no-eval) and
the arguments' names (`robot`, `configs`, `models`); null means the option's default. A command
takes part by declaring OPT_CONFIG and OPT_PRINT_CONFIG and `cls=ConfigCommand`, and calls
`save_resolved(folder)` once it knows its output folder."""

from __future__ import annotations

import difflib
import enum
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer.core
import yaml

from adaptkit.commands.clicklib import BadParameter, UsageError
from adaptkit.errors import AdaptkitError

SAVED_CONFIG = "run.yaml"  # the resolved config, in the run's (or the output's) folder
_META = "adaptkit.config_file"  # ctx.meta key: what --config / --print-config set
_SKIP = ("config", "print_config", "help")
_argv: list[str] | None = None
_running: Any = None  # the context of the ConfigCommand now running (save_resolved reads it)


# -- the command line as typed ---------------------------------------------------------------
def remember_argv(args: Sequence[str] | None) -> None:
    """Called by the root command with the arguments it parses (sys.argv[1:] when run)."""
    global _argv
    _argv = list(sys.argv[1:] if args is None else args)


def remembered_argv() -> list[str]:
    """The arguments the root command parsed (sys.argv[1:] before it ran)."""
    return list(_argv if _argv is not None else sys.argv[1:])


def recorded_command() -> str:
    """`adaptkit …` exactly as it was typed (quoted for a POSIX shell)."""
    return shlex.join(["adaptkit", *remembered_argv()])


# -- keys ------------------------------------------------------------------------------------
def _params(ctx: Any) -> list[Any]:
    """The command's own options and arguments (not --config, --print-config, --help)."""
    return [p for p in ctx.command.params if p.name not in _SKIP and p.expose_value]


def _arguments(ctx: Any) -> set[str]:
    return {str(p.name) for p in _params(ctx) if getattr(p, "param_type_name", "") == "argument"}


def _key(param: Any, arguments: set[str]) -> str:
    """The name a config file uses for `param`: an argument's name, an option's first long
    name — unless an argument has that name (compare's `--models` marker): then its own."""
    longs = [o[2:] for o in param.opts if o.startswith("--")]
    if str(param.name) in arguments or not longs or longs[0] in arguments:
        return str(param.name)
    return longs[0]


def _names(param: Any, arguments: set[str]) -> set[str]:
    """Every spelling of `param` a config file may use: its key, its name, its long option
    names (dashes or underscores) — none that is an argument's name, unless it is that
    argument."""
    names = {_key(param, arguments), str(param.name), *(o[2:] for o in param.opts if o[:2] == "--")}
    names |= {n.replace("-", "_") for n in names} | {n.replace("_", "-") for n in names}
    own = {str(param.name)} if str(param.name) in arguments else set()
    return {n for n in names if n not in arguments or n in own}


# -- reading ---------------------------------------------------------------------------------
def read_config(ctx: Any, path: Path) -> dict[str, Any]:
    """The file's values by parameter name; unknown keys refused. Each value is then converted
    and checked by its option's own type as a command-line value would be (a wrong type is
    refused naming the file and the key: ConfigCommand.parse_args)."""
    from adaptkit.fileio import read_yaml

    data = read_yaml(path, "config file")
    where = str(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AdaptkitError(
            f"{where}: expected a mapping of option names to values, got {type(data).__name__}"
        )
    params, arguments = _params(ctx), _arguments(ctx)
    by_name = {n: p for p in params for n in _names(p, arguments)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        param = by_name.get(str(key))
        if param is None:
            close = difflib.get_close_matches(str(key), sorted(by_name), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AdaptkitError(
                f"{where}: unknown key {key!r}{hint}; `adaptkit {ctx.info_name} --print-config` "
                "lists the keys"
            )
        if param.name in out:
            raise AdaptkitError(f"{where}: {key!r} given twice (as {_key(param, arguments)!r})")
        if value is None:
            continue  # null: the option's own default
        many = getattr(param, "multiple", False) or param.nargs == -1
        if many and not isinstance(value, list):
            value = [value]  # one path for a repeatable option
        elif not many and isinstance(value, list | dict):
            raise AdaptkitError(f"{where}: {key}: expected one value, got {value!r}")
        out[str(param.name)] = value
    return out


def _load(ctx: Any, value: Path | None) -> Path | None:
    """--config (eager): the file's values become the options' defaults (click's default_map),
    so the command line still overrides each of them."""
    if value is None:
        return None
    try:
        values = read_config(ctx, Path(value))
    except AdaptkitError as exc:
        raise UsageError(str(exc)) from None
    ctx.default_map = {**(ctx.default_map or {}), **values}
    ctx.meta[_META] = str(value)
    return value


OPT_CONFIG = typer.Option(
    None,
    "--config",
    is_eager=True,
    callback=_load,
    dir_okay=False,
    help="YAML file of option values (keys: the options' long names); a flag on the command "
    f"line overrides it. The run saves its resolved config as {SAVED_CONFIG}.",
    show_default=False,
)
OPT_PRINT_CONFIG = typer.Option(
    False,
    "--print-config",
    help="Print the resolved config (command line, then --config, then defaults) as YAML; run "
    "nothing.",
)


# -- the resolved config ---------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def resolved(ctx: Any) -> dict[str, Any]:
    """Every option and argument of the command as this run resolved it (command line, then
    --config, then the defaults), in the config file's keys."""
    arguments = _arguments(ctx)
    return {_key(p, arguments): _plain(ctx.params.get(str(p.name))) for p in _params(ctx)}


def config_text(ctx: Any) -> str:
    head = f"# the resolved config of `adaptkit {ctx.info_name}` (repeat it: --config FILE)\n"
    return head + yaml.safe_dump(resolved(ctx), sort_keys=False, allow_unicode=True)


def save_resolved(folder: Path | str | None) -> Path | None:
    """Write the running command's resolved config into `folder` as run.yaml (atomic). None
    (nothing written) outside a config-file command."""
    ctx = _running
    if folder is None or ctx is None:
        return None
    from adaptkit.fileio import write_text_atomic

    path = Path(folder) / SAVED_CONFIG
    write_text_atomic(path, config_text(ctx), "resolved config")
    return path


class ConfigCommand(typer.core.TyperCommand):
    """A command with OPT_CONFIG and OPT_PRINT_CONFIG among its options: a value from the file
    that its option refuses is named by file and key, and --print-config prints the resolved
    config instead of running."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except BadParameter as exc:
            source = ctx.get_parameter_source(exc.param.name) if exc.param is not None else None
            if ctx.meta.get(_META) and getattr(source, "name", "") == "DEFAULT_MAP":
                key = _key(exc.param, _arguments(ctx))
                raise UsageError(f"{ctx.meta[_META]}: {key}: {exc.message}") from None
            raise

    def invoke(self, ctx: Any) -> Any:
        global _running
        if ctx.params.get("print_config"):
            typer.echo(config_text(ctx), nl=False)
            return None
        _running = ctx
        try:
            return super().invoke(ctx)
        finally:
            _running = None
