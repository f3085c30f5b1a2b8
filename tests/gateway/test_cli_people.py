"""``voxloop-gateway users``, ``groups``, ``keys --kind read`` and ``init --owner``, run as
commands on a real SQLite file and a real PostgreSQL: what they print, what they store, and the
one line they say when something is wrong.

Most commands run in this process, through the command line's ``main()`` (conftest's
``command``); ``init`` and a few others run as processes of their own, as a shell runs them.
"""

from __future__ import annotations

import asyncio
import functools
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxloop_gateway.cli import main
from voxloop_gateway.control.access import Scope
from voxloop_gateway.control.db import Database
from voxloop_gateway.control.passwords import COST_VARIABLE
from voxloop_gateway.control.people import WRONG_LOGIN, People, Session
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.errors import ApiError

from .conftest import Command, clean_environ, make_project
from .pg import pg_url

__all__ = ["pg_url"]  # a fixture

ADDRESS = "192.0.2.1"


def voxloop(
    data_dir: Path, where: str, *args: str, stdin: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``voxloop-gateway`` with ``args`` on the data dir's SQLite or the PostgreSQL ``where``."""
    store = [] if where == "sqlite" else ["--store", where]
    return subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(data_dir), *store, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(),
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
    )


@pytest.fixture
def in_place(where: str, tmp_path: Path, command: Command) -> Command:
    """``command`` on the test's data dir, and on PostgreSQL ``--store`` its database."""
    store = [] if where == "sqlite" else ["--store", where]
    return functools.partial(command, "--data-dir", str(tmp_path), *store)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr
    return done


def login(people: People, email: str, password: str) -> tuple[str, Session]:
    return asyncio.run(people.login(email, password, ADDRESS))


def fields(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines()]


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "sqlite"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def people(where: str, tmp_path: Path) -> Iterator[People]:
    """The people of the database the commands use, as the gateway reads them."""
    db = Database(tmp_path, where)
    yield People(db)
    db.close()


def test_users_groups_and_read_keys_from_the_command_line(
    where: str, tmp_path: Path, people: People, in_place: Command
) -> None:
    if where != "sqlite":
        ok(voxloop(tmp_path, where, "migrate"))
    made = ok(voxloop(tmp_path, where, "init", "--project", "shop", "--owner", "Alice@Example.com"))
    lines = made.stdout.splitlines()
    assert lines[-3:-1] == ["owner alice@example.com", lines[-2]]
    told = re.fullmatch(r"  one-time password  (\S{20,})", lines[-2])
    assert told, lines
    assert "shown once" in lines[-1]
    _, session = login(people, "alice@example.com", told[1])
    assert session.user.groups == ("owner",) and session.user.must_change_password

    created = ok(in_place("users", "create", "bob@example.com", "--group", "admin"))
    bob_password = created.stdout.strip()
    assert created.stdout == bob_password + "\n" and len(bob_password) >= 20
    assert created.stderr.split() == ["bob@example.com", "admin", "active", "one-time"]
    bob_token, _ = login(people, "bob@example.com", bob_password)

    ok(in_place("projects", "create", "cafe"))
    group = ok(
        in_place(
            *("groups", "create", "support", "--project", "shop", "--channel", "app"),
            *("--form", "checkout", "--form", "signup"),
            *("--level", "dashboard=view", "--level", "responses=edit"),
        )
    )
    support_row = ["support", "shop", "app", "checkout,signup", "dashboard=view,responses=edit"]
    assert fields(group.stdout) == [[*support_row, "-"]]
    ok(in_place("users", "create", "carol@example.com", "--group", "support"))
    ok(in_place("groups", "add-user", "support", "bob@example.com"))
    ok(in_place("groups", "scope", "support", "cafe", "--channel", "web"))
    granted = ok(in_place("groups", "grant", "support", "exports", "view"))
    levels = "dashboard=view,responses=edit,exports=view"
    members = "bob@example.com,carol@example.com"
    assert fields(granted.stdout) == [
        ["support", "cafe", "web", "*", levels, members],
        ["support", "shop", "app", "checkout,signup", levels, members],
    ]
    listed = ok(in_place("groups", "list")).stdout
    assert [row[:2] + row[5:] for row in fields(listed)] == [
        ["admin", "*", "bob@example.com"],
        ["owner", "*", "alice@example.com"],
        ["support", "cafe", members],
        ["support", "shop", members],
    ]
    assert len({line.index("*") for line in listed.splitlines()[:2]}) == 1  # aligned
    carol = people.access_of(people.user("carol@example.com"))
    assert carol.visible("exports", "cafe", {"app", "web", "email"}) == {"web": None}
    ok(in_place("groups", "scope", "support", "cafe", "--remove"))
    ok(in_place("groups", "remove-user", "support", "bob@example.com"))
    assert people.user("bob@example.com").groups == ("admin",)

    users = ok(in_place("users", "list")).stdout
    assert fields(users) == [
        ["alice@example.com", "owner", "active", "one-time"],
        ["bob@example.com", "admin", "active", "one-time"],
        ["carol@example.com", "support", "active", "one-time"],
    ]
    disabled = ok(in_place("users", "disable", "BOB@example.com"))
    assert disabled.stdout == "disabled bob@example.com\n"
    assert asyncio.run(people.session(bob_token)) is None  # at once
    with pytest.raises(ApiError, match=WRONG_LOGIN):
        login(people, "bob@example.com", bob_password)
    assert fields(ok(in_place("users", "list")).stdout)[1][2] == "disabled"

    reset = ok(in_place("users", "reset-password", "alice@example.com"))
    new_password = reset.stdout.strip()
    assert new_password != told[1] and reset.stderr.startswith("alice@example.com: ")
    with pytest.raises(ApiError, match=WRONG_LOGIN):
        login(people, "alice@example.com", told[1])
    assert login(people, "alice@example.com", new_password)[1].user.must_change_password

    key = ok(
        in_place(
            *("keys", "create", "shop", "--kind", "read", "--channel", "app"),
            *("--form", "checkout"),
        )
    )
    raw = key.stdout.strip()
    assert raw.startswith("rk_") and len(raw) > 40
    assert key.stderr.split()[1:] == ["shop", "read", "active", "channels=app", "forms=checkout"]
    whole = ok(in_place("keys", "create", "shop", "--kind", "read")).stdout
    keys = ok(in_place("keys", "list", "shop")).stdout
    assert raw not in keys and whole.strip() not in keys
    rows = {row[0]: row for row in fields(keys)}
    assert rows[raw[:11] + "…"][1:] == ["shop", "read", "active", "app", "-", "checkout"]
    assert rows[whole[:11] + "…"][1:] == ["shop", "read", "active", "app,email,web", "-", "*"]
    assert all(len(row) == 7 for row in rows.values()), rows
    registry = Registry(tmp_path, where)
    try:
        registry.load()  # on PostgreSQL a gateway's reload comes within a second; here at once
        found = registry.authenticate(raw)
        assert found is not None
        assert found[0].scope() == Scope("shop", frozenset({"app"}), frozenset({"checkout"}))
    finally:
        registry.close()


NO_REGISTRY = (
    "no registry in {data}/registry.sqlite3: run `voxloop-gateway init` first"
    " (or `make run` for a demo)"
)
#: arguments -> the one line on stderr (whole, or its start for a usage error)
ERRORS: dict[str, tuple[list[str], str]] = {
    "users-create-no-group": (
        ["users", "create", "x@example.com"],
        "voxloop-gateway users create: the following arguments are required: --group",
    ),
    "users-create-bad-email": (
        ["users", "create", "not-an-email", "--group", "owner"],
        "voxloop-gateway: email 'not-an-email' must look like name@example.com"
        " (at most 254 characters)",
    ),
    "users-create-exists": (
        ["users", "create", "ALICE@example.com", "--group", "owner"],
        "voxloop-gateway: user 'alice@example.com' already exists",
    ),
    "users-create-unknown-group": (
        ["users", "create", "x@example.com", "--group", "staff"],
        "voxloop-gateway: no group 'staff'; groups: admin, owner, support",
    ),
    "users-disable-unknown": (
        ["users", "disable", "x@example.com"],
        "voxloop-gateway: no user 'x@example.com'; `voxloop-gateway users list` shows them",
    ),
    "users-reset-unknown": (
        ["users", "reset-password", "x@example.com"],
        "voxloop-gateway: no user 'x@example.com'; `voxloop-gateway users list` shows them",
    ),
    "users-verb": (
        ["users", "delete", "alice@example.com"],
        "voxloop-gateway users: argument verb: invalid choice: 'delete'",
    ),
    "groups-create-no-project": (
        ["groups", "create", "sales"],
        "voxloop-gateway groups create: the following arguments are required: --project",
    ),
    "groups-create-unknown-project": (
        ["groups", "create", "sales", "--project", "nope"],
        "voxloop-gateway: no project 'nope'; projects: shop",
    ),
    "groups-create-unknown-channel": (
        ["groups", "create", "sales", "--project", "shop", "--channel", "sms"],
        "voxloop-gateway: project 'shop' has no channel sms; its channels: app, email, kiosk, web",
    ),
    "groups-create-bad-form": (
        ["groups", "create", "sales", "--project", "shop", "--form", "a b"],
        "voxloop-gateway: form 'a b' must be 1-64 characters of A-Z a-z 0-9 . _ -",
    ),
    "groups-create-bad-name": (
        ["groups", "create", "Sales Team", "--project", "shop"],
        "voxloop-gateway: group 'Sales Team' must be 1-64 characters of a-z 0-9 _ -,"
        " starting with a letter or digit",
    ),
    "groups-create-bad-level": (
        ["groups", "create", "sales", "--project", "shop", "--level", "dashboard=admin"],
        "voxloop-gateway groups create: argument --level: 'dashboard=admin' must be"
        " SECTION=LEVEL (SECTION: dashboard, responses, exports, inbox, alerts, settings, users,"
        " privacy, audit; LEVEL: none, view, edit)",
    ),
    "groups-create-exists": (
        ["groups", "create", "support", "--project", "shop"],
        "voxloop-gateway: group 'support' already exists",
    ),
    "groups-grant-builtin": (
        ["groups", "grant", "admin", "users", "edit"],
        "voxloop-gateway: the built-in group 'admin' can't be changed: it covers every project;"
        " make a group of your own with `groups create`",
    ),
    "groups-grant-unknown": (
        ["groups", "grant", "sales", "users", "edit"],
        "voxloop-gateway: no group 'sales'; groups: admin, owner, support",
    ),
    "groups-grant-bad-section": (
        ["groups", "grant", "support", "stats", "view"],
        "voxloop-gateway groups grant: argument section: invalid choice: 'stats' (choose from"
        " 'dashboard', 'responses', 'exports', 'inbox', 'alerts', 'settings', 'users', 'privacy',"
        " 'audit')",
    ),
    "groups-grant-bad-level": (
        ["groups", "grant", "support", "users", "admin"],
        "voxloop-gateway groups grant: argument level: invalid choice: 'admin' (choose from"
        " 'none', 'view', 'edit')",
    ),
    "groups-add-user-again": (
        ["groups", "add-user", "owner", "alice@example.com"],
        "voxloop-gateway: user 'alice@example.com' is already in group 'owner'",
    ),
    "groups-add-user-unknown": (
        ["groups", "add-user", "support", "x@example.com"],
        "voxloop-gateway: no user 'x@example.com'; `voxloop-gateway users list` shows them",
    ),
    "groups-remove-user-not-in": (
        ["groups", "remove-user", "admin", "alice@example.com"],
        "voxloop-gateway: user 'alice@example.com' is not in group 'admin'",
    ),
    "groups-scope-remove-with-channel": (
        ["groups", "scope", "support", "shop", "--remove", "--channel", "app"],
        "voxloop-gateway groups scope: --remove takes no --channel or --form",
    ),
    "groups-scope-remove-not-covered": (
        ["groups", "scope", "support", "nope", "--remove"],
        "voxloop-gateway: group 'support' does not cover project 'nope'",
    ),
    "keys-read-origin": (
        ["keys", "create", "shop", "--kind", "read", "--origin", "https://shop.example"],
        "voxloop-gateway: a read key is for servers and BI tools, not web pages: no --origin",
    ),
    "keys-site-form": (
        ["keys", "create", "shop", "--kind", "site", "--form", "checkout"],
        "voxloop-gateway: only a read key is narrowed to forms: --form needs --kind read",
    ),
    "keys-read-bad-form": (
        ["keys", "create", "shop", "--kind", "read", "--form", "a/b"],
        "voxloop-gateway: form 'a/b' must be 1-64 characters of A-Z a-z 0-9 . _ -",
    ),
    "keys-bad-kind": (
        ["keys", "create", "shop", "--kind", "admin"],
        "voxloop-gateway keys create: argument --kind: invalid choice: 'admin'"
        " (choose from 'site', 'server', 'read')",
    ),
}


@pytest.fixture
def alice_and_support(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[People]:
    """Project ``shop``, the owner alice@example.com and the group ``support``; no VOXLOOP_*
    but the cost of password hashes."""
    for name in list(os.environ):
        if name.startswith("VOXLOOP_") and name != COST_VARIABLE:
            monkeypatch.delenv(name)
    make_project(tmp_path)
    db = Database(tmp_path)
    people = People(db)
    people.create_user("alice@example.com", ["owner"])
    people.create_group("support", {"dashboard": "view"}, [Scope("shop")])
    yield people
    db.close()


def check_one_line(status: int, out: str, err: str, line: str) -> None:
    """Status 2, nothing on stdout, and ``line`` on stderr: whole, or a usage error's start."""
    assert (status, out) == (2, ""), err
    said = err.splitlines()
    assert len(said) == 1 and said[0].startswith(line), said
    if said[0].startswith("voxloop-gateway: "):
        assert said[0] == line
    else:
        assert said[0].endswith(" --help)")  # a usage error says where to look


@pytest.mark.parametrize(("args", "line"), ERRORS.values(), ids=ERRORS)
def test_what_is_wrong_is_one_line_and_status_2(
    tmp_path: Path,
    alice_and_support: People,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    line: str,
) -> None:
    people = alice_and_support
    before = (people.users(), people.groups())
    status = main(["--data-dir", str(tmp_path), *args])
    check_one_line(status, *capsys.readouterr(), line)
    assert (people.users(), people.groups()) == before


def test_errors_are_one_line_and_status_2_from_the_command_too(
    tmp_path: Path, alice_and_support: People
) -> None:
    """A few of the cases above, as a separate process: what a shell sees."""
    people = alice_and_support
    before = (people.users(), people.groups())
    for case in ("users-create-no-group", "users-create-exists", "groups-grant-builtin"):
        args, line = ERRORS[case]
        done = voxloop(tmp_path, "sqlite", *args)
        check_one_line(done.returncode, done.stdout, done.stderr, line)
    assert (people.users(), people.groups()) == before


@pytest.mark.parametrize("command", [["users", "list"], ["groups", "list"]])
def test_a_data_dir_without_a_registry_is_refused(tmp_path: Path, command: list[str]) -> None:
    done = voxloop(tmp_path / "empty", "sqlite", *command)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "voxloop-gateway: " + NO_REGISTRY.format(data=tmp_path / "empty")
    ]
    assert not (tmp_path / "empty").exists()


def test_init_with_a_bad_owner_makes_nothing(tmp_path: Path) -> None:
    done = voxloop(tmp_path / "data", "sqlite", "init", "--owner", "alice")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "voxloop-gateway: email 'alice' must look like name@example.com (at most 254 characters)"
    ]
    assert not (tmp_path / "data").exists()


def on_a_terminal(data_dir: Path, answers: str) -> subprocess.CompletedProcess[str]:
    """``init`` with its standard input a terminal, on which ``answers`` are typed."""
    leader, follower = pty.openpty()
    try:
        os.write(leader, answers.encode())
        return voxloop(data_dir, "sqlite", "init", stdin=follower)
    finally:
        os.close(follower)
        os.close(leader)


def test_init_on_a_terminal_asks_for_the_first_owner_until_the_answer_is_valid(
    tmp_path: Path,
) -> None:
    skipped = ok(on_a_terminal(tmp_path / "skipped", "\n"))
    assert "the first owner's email" in skipped.stdout and "owner " not in skipped.stdout
    assert ok(voxloop(tmp_path / "skipped", "sqlite", "users", "list")).stdout == ""

    asked = ok(on_a_terminal(tmp_path / "asked", "alice\nAlice@Example.com\n"))
    assert "email 'alice' must look like name@example.com" in asked.stdout + asked.stderr
    password = re.search(r"one-time password  (\S+)", asked.stdout)
    assert password, asked.stdout
    assert "owner alice@example.com" in asked.stdout
    db = Database(tmp_path / "asked")
    try:
        _, session = login(People(db), "alice@example.com", password[1])
        assert session.user.groups == ("owner",)
    finally:
        db.close()


def test_init_without_a_terminal_asks_nothing(tmp_path: Path) -> None:
    made = ok(voxloop(tmp_path, "sqlite", "init"))
    assert "owner" not in made.stdout and "email" not in made.stdout
    assert ok(voxloop(tmp_path, "sqlite", "users", "list")).stdout == ""
