"""``digests add|list|remove``: who gets which project's digest; ``mail test``: try the SMTP server.

A digest is one user's email of one project, ``daily`` or ``weekly``, in one of the dashboard's
languages (see :mod:`..integrations.digest`); the gateway writes it once the day (or the week,
from Monday, UTC) has begun, and sends it with the other emails. ``mail test`` sends one email
at once, through the SMTP settings a gateway would use, and says what the server answered.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..control import schema, tables
from ..control.db import Database, Work
from ..control.people import People, check_email
from ..errors import ConfigError
from ..integrations import mail as sending
from ..integrations.digest import FREQUENCIES
from ..integrations.mail_words import MAIL_WORDS
from ..integrations.messages import test_email
from ..integrations.outbox import new_id
from ..reading.formats import rfc3339
from ..settings import RULES, env_name, flag_name
from .base import Choice, cli, print_table, registry, settings

F = TypeVar("F", bound=Callable[..., Any])
_T = TypeVar("_T")
#: The languages of the emails: the dashboard's.
LANGUAGES = tuple(MAIL_WORDS)
#: The settings ``mail test`` takes as flags; the password only from VOXLOOP_SMTP_PASSWORD,
#: since a shell's history keeps its command lines.
MAIL_SETTINGS = ("smtp_host", "smtp_port", "smtp_tls", "smtp_user", "mail_from", "public_url")

_DIGESTS = tables.digests
_USERS = tables.users


@cli.group(short_help="add, list or remove users' daily or weekly digests")
def digests() -> None:
    """Add, list or remove digests: a user's daily or weekly email of one project's scores per
    channel, with their trend, and of the follow-ups that need action, within what the user may
    see. A digest is written once the UTC day (or the week, from Monday) has begun; emails go
    out through the SMTP server of the gateway's settings (--smtp-host...)."""


@digests.command(short_help="give a user a project's digest (or change its frequency)")
@click.argument("email")
@click.argument("project")
@click.argument("frequency", type=Choice(list(FREQUENCIES)), metavar="FREQUENCY")
@click.option(
    "--lang",
    type=Choice(list(LANGUAGES)),
    default="en",
    show_default=True,
    metavar="LANG",
    help=f"the language of the email: {', '.join(LANGUAGES)}",
)
def add(email: str, project: str, frequency: str, lang: str) -> None:
    """Send the user EMAIL a digest of PROJECT, FREQUENCY daily or weekly, in --lang. A user who
    has one already gets the new frequency and language. Prints "digest EMAIL PROJECT FREQUENCY
    LANG".

    The user must be able to see the project's dashboard or follow-up inbox; the digest shows
    what they may see, as it is when it is written.
    """
    with registry(settings(), needed=True) as found:
        known = found.project(project, reload=True)
        people = People(found.db)
        user = people.user(email)
        access = people.access_of(user)
        if not any(access.can(s, "view", known.id) for s in ("dashboard", "inbox")):
            raise ConfigError(
                f"user {user.email!r} may see neither the dashboard nor the follow-up inbox of"
                f" project {known.id!r}: add them to a group that does first"
            )
        _run(
            found.db,
            functools.partial(
                _put,
                dialect=found.db.dialect,
                user=user.id,
                project=known.id,
                frequency=frequency,
                lang=lang,
            ),
            write=True,
        )
    print(f"digest {user.email} {known.id} {frequency} {lang}")


async def _put(
    conn: AsyncConnection, *, dialect: str, user: str, project: str, frequency: str, lang: str
) -> None:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_DIGESTS).values(
        user=user, project=project, frequency=frequency, lang=lang, last_ms=None
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[_DIGESTS.c.user, _DIGESTS.c.project],
            set_={"frequency": frequency, "lang": lang},
        )
    )


@digests.command(name="list", short_help="list the digests")
@click.argument("project", required=False)
def list_(project: str | None) -> None:
    """List the digests (of PROJECT when given): a row per user and project, by email.

    On a terminal the table has a header; piped, each line is "EMAIL  PROJECT  FREQUENCY  LANG
    LAST" (LAST: when the last one was written, RFC 3339 UTC, or never), columns aligned.
    """
    with registry(settings(), needed=True) as found:
        if project is not None:
            found.project(project, reload=True)
        rows = _run(found.db, functools.partial(_rows, project=project))
    print_table(["email", "project", "frequency", "lang", "last"], rows, header=False)


async def _rows(conn: AsyncConnection, *, project: str | None) -> list[tuple[str, ...]]:
    query = (
        select(
            _USERS.c.email,
            _DIGESTS.c.project,
            _DIGESTS.c.frequency,
            _DIGESTS.c.lang,
            _DIGESTS.c.last_ms,
        )
        .join(_USERS, _USERS.c.id == _DIGESTS.c.user)
        .order_by(_USERS.c.email, _DIGESTS.c.project)
    )
    if project is not None:
        query = query.where(_DIGESTS.c.project == project)
    return [
        (email, name, frequency, lang, "never" if last is None else rfc3339(last))
        for email, name, frequency, lang, last in await conn.execute(query)
    ]


@digests.command(short_help="stop a user's digest of a project")
@click.argument("email")
@click.argument("project")
def remove(email: str, project: str) -> None:
    """Stop the digest of PROJECT that the user EMAIL gets. Prints "removed EMAIL PROJECT"."""
    with registry(settings(), needed=True) as found:
        user = People(found.db).user(email)
        gone = _run(found.db, functools.partial(_remove, user=user.id, project=project), write=True)
    if not gone:
        raise ConfigError(
            f"user {user.email!r} gets no digest of project {project!r}:"
            " `voxloop-gateway digests list` shows the digests"
        )
    print(f"removed {user.email} {project}")


async def _remove(conn: AsyncConnection, *, user: str, project: str) -> bool:
    done = await conn.execute(
        delete(_DIGESTS).where(_DIGESTS.c.user == user, _DIGESTS.c.project == project)
    )
    return bool(done.rowcount)


def _run(db: Database, work: Work[_T], *, write: bool = False) -> _T:
    """``work`` on the control plane, once its schema is known to be this gateway's."""
    schema.prepare(db)
    return db.run(work, write=write)


# --- mail test ------------------------------------------------------------------------------


def mail_options(command: F) -> F:
    """A flag for each of :data:`MAIL_SETTINGS`, as ``serve`` has it."""
    for name in reversed(MAIL_SETTINGS):
        option = click.option(
            flag_name(name),
            name,
            default=None,
            metavar=name.upper(),
            help=f"{RULES[name].must_be}; {env_name(name)}",
        )
        command = option(command)
    return command


@cli.group(short_help="send a test email through the SMTP settings")
def mail() -> None:
    """Try the SMTP settings that a gateway sends its alerts, escalations and digests with."""


@mail.command(name="test", short_help="send one email now and say what the server answered")
@click.option("--to", "to", required=True, metavar="ADDRESS", help="who gets the test email")
@click.option(
    "--lang",
    type=Choice(list(LANGUAGES)),
    default="en",
    show_default=True,
    metavar="LANG",
    help=f"the language of the email: {', '.join(LANGUAGES)}",
)
@mail_options
def test(to: str, lang: str, **flags: str | None) -> None:
    """Send one email to ADDRESS at once, through the SMTP server of the settings (the flags
    below, or their VOXLOOP_* variables; the password only as VOXLOOP_SMTP_PASSWORD), outside
    the outbox. Prints "sent a test email to ADDRESS through HOST:PORT (TLS)"; a failure is one
    line with what the server said (exit status 1).
    """
    current = settings(flags)
    if not current.smtp_host:
        raise ConfigError("no SMTP server is set: --smtp-host or VOXLOOP_SMTP_HOST")
    recipient = check_email(to)
    server = f"{current.smtp_host}:{current.smtp_port}"
    email = test_email(lang, server=server, base_url=current.public_url or None)
    try:
        message = sending.compose(
            current,
            email_id=new_id("eml_"),
            recipient=recipient,
            subject=email.subject,
            text=email.text,
            html=email.html,
            created_ms=int(time.time() * 1000),
        )
    except ValueError as exc:
        raise ConfigError(f"--to {to!r} can't be an email's recipient: {exc}") from None
    asyncio.run(sending.send_now(current, [message]))
    print(
        f"sent a test email to {recipient} through"
        f" {current.smtp_host}:{current.smtp_port} ({current.smtp_tls})"
    )
