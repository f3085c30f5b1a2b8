"""``users create``, ``users list``, ``users disable`` and ``users reset-password``.

A password is never taken on the command line (shell histories keep it): a user is made with a
one-time password, printed once on stdout, which they change at first login. Each change is
recorded in the audit log as the operator's, never with the password.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from ..control.people import People, User
from ..privacy import audit
from .base import cli, print_table, registry, settings


@contextlib.contextmanager
def people() -> Iterator[People]:
    """The people of the registry that the global flags name; refuses a data dir without one."""
    with registry(settings(), needed=True) as found:
        yield People(found.db)


def _detail(user: User) -> dict[str, object]:
    """What the audit log keeps of a user made: their groups (the password is never kept)."""
    return {"groups": list(user.groups)}


def user_row(user: User) -> tuple[str, str, str, str]:
    """A user as ``users list`` shows it: email, groups, state, password."""
    return (
        user.email,
        ",".join(user.groups) or "-",
        "disabled" if user.disabled else "active",
        "one-time" if user.must_change_password else "set",
    )


def print_one_time(user: User, password: str) -> None:
    """What ``init --owner`` says of the owner it made: the one-time password, shown once."""
    print(f"owner {user.email}")
    print(f"  one-time password  {password}")
    print("  shown once; it must be changed at the first login, at /app/login")


@cli.group(short_help="create, list, disable users or reset their passwords")
def users() -> None:
    """Create, list or disable the people who log in to the dashboard, or reset a password.

    What a user may see and do comes from their access groups (see `groups`). Passwords are
    stored as argon2id hashes; a new user gets a one-time password, to change at first login.
    """


@users.command(short_help="create a user and print their one-time password, once")
@click.argument("email")
@click.option(
    "--group",
    "group",
    multiple=True,
    required=True,
    metavar="NAME",
    help="an access group the user is in: owner, admin or one of `groups list` (repeatable)",
)
def create(email: str, group: tuple[str, ...]) -> None:
    """Create the user EMAIL in each --group and print their one-time password on stdout, once;
    their description ("EMAIL  GROUPS  STATE  PASSWORD") goes to stderr.

    The user must change the password at their first login.
    """
    with people() as found:
        user, password = found.create_user(email, group)
        audit.record_sync(found.db, action="user.create", target=user.email, detail=_detail(user))
    print(password)
    print("  ".join(user_row(user)), file=sys.stderr)


@users.command(name="list", short_help="list the users and their groups")
def list_() -> None:
    """List the users: a row per user, by email.

    On a terminal the table has a header; piped, each line is "EMAIL  GROUPS  STATE  PASSWORD"
    (GROUPS comma-separated; STATE active or disabled; PASSWORD one-time until the user has
    changed it, else set), columns aligned.
    """
    with people() as found:
        rows = [user_row(user) for user in found.users()]
    print_table(["email", "groups", "state", "password"], rows, header=False)


@users.command(short_help="disable a user and end their sessions, at once")
@click.argument("email")
def disable(email: str) -> None:
    """Disable the user EMAIL: their sessions end at once on every replica, and they can no
    longer log in. Prints "disabled EMAIL"."""
    with people() as found:
        user = found.disable_user(email)
        audit.record_sync(found.db, action="user.disable", target=user.email)
    print(f"disabled {user.email}")


@users.command(name="reset-password", short_help="give a user a new one-time password")
@click.argument("email")
def reset_password(email: str) -> None:
    """Give the user EMAIL a new one-time password, printed on stdout once; their sessions end
    at once. They must change it at their next login."""
    with people() as found:
        password = found.reset_password(email)
        user = found.user(email)
        audit.record_sync(found.db, action="user.reset_password", target=user.email)
    print(password)
    print(f"{user.email}: a one-time password; their sessions ended", file=sys.stderr)
