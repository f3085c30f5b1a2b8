"""What every command shares: the root group, settings, the registry, tables, one-line errors.

The groups and commands here report a usage error in argparse's words, in one line naming what
was wrong (``argument --metric: invalid choice: 'stars'``, ``the following arguments are
required: verb``, ``unrecognized arguments: --all``); :func:`usage_line` writes it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import click
import rich.box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import __version__
from ..control.registry import Key as Key  # for every command
from ..control.registry import KeyKind as KeyKind
from ..control.registry import Registry as Registry
from ..errors import ConfigError
from ..service import secure_data_dir
from ..settings import (
    DEFAULT_DATA_DIR,
    RULES,
    Settings,
    env_name,
    flag_name,
    load_settings,
    redacted_store,
    unknown_variables,
)

PROG = "voxloop-gateway"
#: Settings every command reads, given before the command: where the registry and stores are.
GLOBAL_SETTINGS = ("data_dir", "store")

F = TypeVar("F", bound=Callable[..., Any])


class Unrecognized(click.UsageError):
    """Arguments no command takes: reported by the whole command line, as argparse does."""

    def __init__(self, words: Sequence[str], ctx: click.Context | None = None) -> None:
        super().__init__(f"unrecognized arguments: {' '.join(words)}", ctx)


class Command(click.Command):
    """A command whose extra arguments are ``unrecognized arguments``, like its unknown options."""

    allow_extra_args = True

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _in(ctx):
            rest = super().parse_args(ctx, args)
        if rest and not ctx.resilient_parsing:
            raise Unrecognized(rest, ctx)
        return rest


@contextlib.contextmanager
def _in(ctx: click.Context) -> Iterator[None]:
    """Name ``ctx`` in a usage error that click's parser raised without its command."""
    try:
        yield
    except click.UsageError as exc:
        if exc.ctx is None:
            exc.ctx = ctx
        raise


class Group(click.Group):
    """A group of commands that asks for its command (or verb) by name, in one line.

    The root's choice is called ``command``, a group's below it ``verb``, as in the messages
    ``the following arguments are required: verb`` and ``argument command: invalid choice``.
    """

    command_class = Command
    group_class = type

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("invoke_without_command", True)  # so that it can say what is missing
        kwargs.setdefault("subcommand_metavar", "COMMAND [ARGS]...")
        super().__init__(*args, **kwargs)

    @staticmethod
    def dest(ctx: click.Context) -> str:
        return "command" if ctx.parent is None else "verb"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _in(ctx):
            return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if self.get_command(ctx, name) is None and not name.startswith("-"):
            choices = ", ".join(repr(c) for c in self.list_commands(ctx))
            raise click.UsageError(
                f"argument {self.dest(ctx)}: invalid choice: {name!r} (choose from {choices})", ctx
            )
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        if not ctx.resilient_parsing and not (ctx.args or _chosen(ctx)):
            raise click.UsageError(f"the following arguments are required: {self.dest(ctx)}", ctx)
        return super().invoke(ctx)


def _chosen(ctx: click.Context) -> bool:
    """Whether a command follows the group's own options on the command line."""
    return bool(getattr(ctx, "_protected_args", None))


class Choice(click.Choice[str]):
    """click's choice, refusing a value in argparse's words."""

    def get_invalid_choice_message(self, value: Any, ctx: click.Context | None) -> str:
        choices = ", ".join(repr(c) for c in self.choices)
        return f"invalid choice: {value!r} (choose from {choices})"


@click.group(
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Every error is one line on stderr and an exit status: 2 for what the command was"
    " given (a usage error, a bad setting or name, a port in use), 1 for what went wrong while"
    " it ran (a store that can't be read). Every setting of `serve` and `demo` is a flag or a"
    " VOXLOOP_* variable; flags win.",
)
@click.version_option(__version__, "--version", prog_name=PROG, message="%(prog)s %(version)s")
@click.option(
    "--data-dir",
    metavar="DATA_DIR",
    default=None,
    help=f"where the registry and stores live (VOXLOOP_DATA_DIR, default ./{DEFAULT_DATA_DIR})",
)
@click.option(
    "--store",
    metavar="STORE",
    default=None,
    help="sqlite (the files in the data dir, the default) or a postgresql:// URL shared by"
    " every replica (VOXLOOP_STORE)",
)
def cli(data_dir: str | None, store: str | None) -> None:
    """voxloop's gateway: projects, keys, serving, stats.

    Global flags go before the command: voxloop-gateway --data-dir /srv/voxloop keys list.
    """


def setting_options(command: F) -> F:
    """Add a flag for every setting but the global ones, as text: ``load_settings`` reads and
    checks flags and variables alike."""
    defaults = Settings()
    for name in reversed(list(RULES)):
        if name in GLOBAL_SETTINGS:
            continue
        default = getattr(defaults, name)
        option = click.option(
            flag_name(name),
            name,
            default=None,
            metavar=name.upper(),
            help=f"{RULES[name].must_be}; {env_name(name)}, default {default or 'none'}",
        )
        command = option(command)
    return command


def settings(flags: Mapping[str, str | None] | None = None) -> Settings:
    """The settings: the global flags, the command's ``flags``, the variables; warns on stderr
    of each ``VOXLOOP_*`` variable nothing reads."""
    for warning in unknown_variables():
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    root = click.get_current_context().find_root().params
    given = dict(flags or {})
    given["data_dir"] = root.get("data_dir")
    given["store"] = root.get("store")
    return load_settings(given)


@contextlib.contextmanager
def registry(settings: Settings, *, needed: bool) -> Iterator[Registry]:
    """The registry, closed after; ``needed``: refuse a data dir without one rather than make
    an empty one (on PostgreSQL the schema check says first what is missing).

    Closes the data dir again if a copy or a restore left it open. Best effort: a command that
    needs the stores (serve, demo, stats, migrate) says what is wrong with them itself.
    """
    found = Registry(settings.data_dir, settings.store)
    try:
        if needed and settings.store == "sqlite" and not found.db.exists():
            raise no_registry(found)
        if not settings.postgres and settings.data_dir.is_dir():
            with contextlib.suppress(OSError):
                secure_data_dir(settings.data_dir)
        yield found
    finally:
        found.close()


def print_keys(project: str, site: str, server: str) -> None:
    """What ``init`` and ``demo`` say of the keys they made: shown once."""
    print(f"project {project}")
    print(f"  site key   {site}   (public: web pages and apps)")
    print(f"  server key {server}   (secret: servers only)")
    print("  keys are shown once and stored hashed; `keys create` makes more.")


def no_registry(registry: Registry) -> ConfigError:
    return ConfigError(
        f"no registry in {registry.db.where}: run `{PROG} init` first (or `make run` for a demo)"
    )


# --- tables ---------------------------------------------------------------------------------


def print_table(
    columns: Sequence[str | tuple[str, str]],
    rows: Sequence[Sequence[str]],
    *,
    header: bool = True,
) -> None:
    """Rows under their columns (a name, or a name and ``"right"``), on stdout.

    On a terminal: a rich table with its header. Elsewhere (a pipe, a file): plain text, no
    box, no colour, columns aligned and separated by two spaces, no trailing spaces, and the
    header line only if ``header``, so scripts can split the lines.
    """
    terminal = sys.stdout.isatty()
    table = Table(
        box=rich.box.SIMPLE_HEAD if terminal else None,
        show_header=header or terminal,
        header_style="bold" if terminal else "",
        pad_edge=terminal,
        show_edge=terminal,
    )
    for column in columns:
        name, justify = (column, "left") if isinstance(column, str) else column
        table.add_column(name, justify="right" if justify == "right" else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    if terminal:
        Console(highlight=False).print(table)
        return
    plain = Console(
        file=io.StringIO(),
        width=1_000_000,
        color_system=None,
        force_terminal=False,
        highlight=False,
        emoji=False,
        markup=False,
    )
    with plain.capture() as captured:
        plain.print(table)
    for line in captured.get().splitlines():
        print(line.rstrip())


# --- one-line errors ------------------------------------------------------------------------


def usage_line(exc: click.UsageError) -> str:
    """A usage error as one line, as argparse wrote it: the command, what, where to look."""
    ctx = exc.ctx
    where = ctx.command_path if ctx is not None else PROG
    if isinstance(exc, (Unrecognized, click.NoSuchOption)):
        where = PROG
        said = exc.message
        if isinstance(exc, click.NoSuchOption):
            said = f"unrecognized arguments: {exc.option_name}"
    elif isinstance(exc, click.BadOptionUsage) and "requires" in exc.message:
        said = f"argument {exc.option_name}: expected one argument"
    elif isinstance(exc, click.MissingParameter) and exc.param is not None:
        said = f"the following arguments are required: {_param_name(exc.param)}"
    elif isinstance(exc, click.BadParameter) and exc.param is not None:
        said = f"argument {_param_name(exc.param)}: {exc.message}"
    else:
        said = exc.format_message()
    return f"{where}: {said} (see {where} --help)"


def _param_name(param: click.Parameter) -> str:
    if isinstance(param, click.Option):
        return "/".join(param.opts)
    return param.name or param.human_readable_name


def one_line(exc: BaseException) -> str:
    """An exception in one line: its type, and its message with the whitespace collapsed."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def without_secrets(message: str, store: str | None) -> str:
    """``message`` with the store URL, wherever a library may have quoted it, shown redacted."""
    for url in (store, os.environ.get(env_name("store"))):
        if url:
            message = message.replace(url, redacted_store(url))
    return message
