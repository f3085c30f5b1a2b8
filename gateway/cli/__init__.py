"""The ``voxloop-gateway`` command line: set up projects, keys and people, serve, read stats.

    voxloop-gateway init [--project demo] [--origin URL]... [--owner EMAIL]
                                       a data dir, a project, two keys, the first owner
    voxloop-gateway projects create NAME [--channel C]... | list
    voxloop-gateway keys create PROJECT --kind site|server|read [--channel C]... [--origin URL]...
                                       [--form F]...
    voxloop-gateway keys list [PROJECT] | revoke KEY_ID
    voxloop-gateway users create EMAIL --group NAME... | list | disable EMAIL
                          | reset-password EMAIL
    voxloop-gateway groups create NAME --project P [--channel C]... [--form F]...
                                       [--level SECTION=LEVEL]...
    voxloop-gateway groups list | grant NAME SECTION LEVEL | add-user NAME EMAIL
                           | remove-user NAME EMAIL
    voxloop-gateway groups scope NAME PROJECT [--channel C]... [--form F]... [--remove]
    voxloop-gateway export PROJECT --format csv|ndjson [filters] [-o FILE]   responses, streamed
    voxloop-gateway email-secret create PROJECT | list [PROJECT] | revoke ID   rating-link secrets
    voxloop-gateway privacy show PROJECT | set PROJECT [--scrub/--no-scrub] [--pattern N=RE]...
                            [--retention-days N | --keep-forever] [--retention-mode delete|redact]
    voxloop-gateway webhooks add PROJECT URL --event TYPE... | list [PROJECT] | remove ID
                             | rotate-secret ID | enable ID
    voxloop-gateway serve [--host H] [--port P] [--drain-seconds S] ...   every setting a flag
    voxloop-gateway demo                                      what `make run` does
    voxloop-gateway stats PROJECT --metric nps [--interval day] ...
    voxloop-gateway core                                      which core implementation loads
    voxloop-gateway migrate                                   bring the schema to this version
    voxloop-gateway erase PROJECT --respondent ID | --form F | --from T --to T | --all
                          [--dry-run] [--yes]     erase events everywhere; prints the receipt
    voxloop-gateway purge [--project P]... [--dry-run]        apply the retention windows now
    voxloop-gateway --store postgresql://… COMMAND            the same on PostgreSQL

Commands are click commands of the group :data:`base.cli`, a module per group of them; a new
one is a function in one of these modules (or a new module imported here). Every error is one
line on stderr and an exit status: 2 for what the command was given (a usage error, a bad
setting or name, a port in use), 1 for what went wrong while it ran (a store that can't be
read). Tables (``projects list``, ``keys list``, ``email-secret list``, ``users list``,
``groups list``, ``stats``) are drawn with rich on a terminal and printed as aligned plain
columns elsewhere.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from ..errors import ConfigError
from . import (
    email_secrets,
    export,
    groups,
    keys,
    ops,
    privacy,
    projects,
    serve,
    stats,
    users,
    webhooks,
)
from .base import PROG, cli, one_line, usage_line, without_secrets
from .digests import digests, mail  # noqa: F401  (their commands join cli)
from .privacy_ops import erase, purge  # noqa: F401  (their commands join cli)

__all__ = ["cli", "main"]
# each adds its commands to cli
_COMMANDS = (
    email_secrets,
    export,
    groups,
    keys,
    ops,
    privacy,
    projects,
    serve,
    stats,
    users,
    webhooks,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv``, else the process's arguments); returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    ctx: click.Context | None = None
    try:
        ctx = cli.make_context(PROG, args)
        with ctx:
            cli.invoke(ctx)
        return 0
    except click.exceptions.Exit as done:  # --help, --version
        return done.exit_code
    except click.UsageError as exc:
        print(usage_line(exc), file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"{PROG}: {without_secrets(str(exc), _store(ctx))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a store, the disk, the network: one line, never a traceback
        said = without_secrets(one_line(exc), _store(ctx))
        command = ctx.invoked_subcommand if ctx is not None else None
        print(f"{PROG}: {command} failed: {said}", file=sys.stderr)
        return 1


def _store(ctx: click.Context | None) -> str | None:
    """The ``--store`` given, if any: the URL that messages must show redacted."""
    store = ctx.params.get("store") if ctx is not None else None
    return store if isinstance(store, str) else None
