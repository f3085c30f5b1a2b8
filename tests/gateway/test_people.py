"""People, access groups, sessions and read keys in the control plane, on a real SQLite file and
a real PostgreSQL: passwords, logins and their throttling, sessions across replicas, access."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_gateway.control import schema
from voxloop_gateway.control.access import BUILTIN_LEVELS, Denied, Scope, read_key_access
from voxloop_gateway.control.db import Database
from voxloop_gateway.control.people import (
    MINUTE_MS,
    WRONG_LOGIN,
    People,
    Rules,
    Throttle,
    token_hash,
)
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.control.tables import sessions, users
from voxloop_gateway.errors import ApiError, ConfigError

from .pg import pg_schema_url

__all__ = ["pg_schema_url"]  # a fixture

PASSWORD = "correct horse battery"
START_MS = 1_800_000_000_000
#: Few failures before a lock, so that the tests hash little; the windows as by default.
RULES = Rules(account=Throttle(3, 15 * MINUTE_MS), address=Throttle(5, 15 * MINUTE_MS))
SHOP_CHANNELS = frozenset({"app", "email", "kiosk", "web"})
#: For tests of something else than hashing: argon2id at its cheapest.
CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


class Clock:
    """Milliseconds since the epoch, moved by the test."""

    def __init__(self) -> None:
        self.now = START_MS

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


class Place:
    """A control-plane database with projects ``shop`` and ``cafe``, and what opens it."""

    def __init__(self, data_dir: Path, where: str) -> None:
        self.data_dir, self.where = data_dir, where
        self.clock = Clock()
        self.opened: list[Database] = []
        self.registry = Registry(data_dir, where)
        self.opened.append(self.registry.db)
        if where != "sqlite":
            schema.migrate(self.registry.db)
        self.registry.create_project("shop", ["kiosk"])
        self.registry.create_project("cafe")
        self.people = self.replica()

    def replica(self, **options: Any) -> People:
        """A People of its own database connection, as another gateway process has."""
        db = Database(self.data_dir, self.where)
        self.opened.append(db)
        options.setdefault("rules", RULES)
        options.setdefault("clock", self.clock)
        return People(db, **options)

    def close(self) -> None:
        for db in self.opened:
            db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    where = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    made = Place(tmp_path, where)
    yield made
    made.close()


def stored(people: People, column: Any, email: str) -> Any:
    """One column of the users row of ``email``, as stored."""

    async def read(conn: AsyncConnection) -> Any:
        return (await conn.execute(select(column).where(users.c.email == email))).scalar_one()

    return people.db.run(read)


def seen_ms(people: People, token: str) -> int | None:
    async def read(conn: AsyncConnection) -> int | None:
        found = await conn.execute(
            select(sessions.c.seen_ms).where(sessions.c.token_hash == token_hash(token))
        )
        value = found.scalar()
        return None if value is None else int(value)

    return people.db.run(read)


async def refused(status: int, attempt: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await attempt
    assert caught.value.status == status, caught.value
    return caught.value


# --- passwords ---------------------------------------------------------------------------------


async def test_passwords_are_hashed_with_argon2id_and_shown_nowhere(place: Place) -> None:
    people = place.people
    user, password = people.create_user("Alice@Example.com", ["owner"], PASSWORD)
    assert user.email == "alice@example.com" and password == PASSWORD
    assert not user.must_change_password
    digest = stored(people, users.c.password_hash, "alice@example.com")
    # argon2id at the cost configured (the default's is in test_passwords.py)
    assert digest.startswith("$argon2id$v=19$m=") and not people.passwords.needs_rehash(digest)
    assert PASSWORD not in digest
    token, session = await people.login("alice@example.com", PASSWORD, "192.0.2.1")
    for shown in (repr(user), repr(session), repr(session.user), repr(session.access)):
        assert PASSWORD not in shown and token not in shown and session.csrf not in shown
        assert digest not in shown
    # The session's row holds the token's digest only.
    assert seen_ms(people, token) == START_MS

    async def tokens(conn: AsyncConnection) -> list[bytes]:
        return [bytes(t) for t in (await conn.execute(select(sessions.c.token_hash))).scalars()]

    assert people.db.run(tokens) == [token_hash(token)]


def test_a_user_made_without_a_password_gets_a_one_time_one(place: Place) -> None:
    user, password = place.people.create_user("bob@example.com", ["admin"])
    assert user.must_change_password and len(password) >= 20
    again, other = place.people.create_user("carol@example.com", ["admin"])
    assert other != password
    assert [u.email for u in place.people.users()] == ["bob@example.com", "carol@example.com"]
    assert place.people.users()[0].must_change_password


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("x" * 11, "password must be at least 12 characters"),
        ("x" * 129, "password must be at most 128 characters"),
        ("ALICE@example.com", "password must not be the email address"),
    ],
    ids=["short", "long", "email"],
)
def test_a_password_given_to_create_user_follows_the_rules(
    place: Place, password: str, rule: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{rule}$"):
        place.people.create_user("alice@example.com", ["owner"], password)
    assert place.people.users() == []


# --- logging in --------------------------------------------------------------------------------


async def test_login_right_wrong_unknown_and_disabled(place: Place) -> None:
    people = place.people
    people.create_user("alice@example.com", ["owner"], PASSWORD)
    token, session = await people.login(" ALICE@example.com ", PASSWORD, "192.0.2.1")
    assert session.user.email == "alice@example.com" and session.user.groups == ("owner",)
    assert session.created_ms == session.seen_ms == START_MS
    assert len(token) >= 43 and len(session.csrf) >= 43 and token != session.csrf
    again = await people.session(token)
    assert again is not None and again.csrf == session.csrf

    for email, password in [
        ("alice@example.com", PASSWORD + "!"),
        ("nobody@example.com", PASSWORD),
    ]:
        wrong = await refused(401, people.login(email, password, "192.0.2.2"))
        assert wrong.message == WRONG_LOGIN

    place.people.disable_user("alice@example.com")
    assert await people.session(token) is None
    disabled = await refused(401, people.login("alice@example.com", PASSWORD, "192.0.2.3"))
    assert disabled.message == WRONG_LOGIN


async def test_an_unknown_email_takes_as_long_as_a_wrong_password(place: Place) -> None:
    people = place.replica(
        rules=Rules(account=Throttle(50, MINUTE_MS), address=Throttle(50, 1)),
        hasher=PasswordHasher(),  # the default cost: the hash must outweigh the lookups
    )
    people.create_user("alice@example.com", ["owner"], PASSWORD)
    await refused(401, people.login("nobody@example.com", "warm-up", "192.0.2.1"))

    async def timed(email: str) -> float:
        started = time.perf_counter()
        await refused(401, people.login(email, "not the password", "192.0.2.1"))
        return time.perf_counter() - started

    wrong = [await timed("alice@example.com") for _ in range(3)]
    unknown = [await timed("nobody@example.com") for _ in range(3)]
    # Both verify one argon2id hash (tens of milliseconds); a lookup alone takes a few.
    assert statistics.median(unknown) > 0.6 * statistics.median(wrong), (wrong, unknown)
    assert statistics.median(wrong) > 0.6 * statistics.median(unknown), (wrong, unknown)


async def test_failed_logins_are_throttled_per_account_on_every_replica(place: Place) -> None:
    first, second = place.people, place.replica()
    first.create_user("alice@example.com", ["owner"], PASSWORD)
    for n, people in enumerate([first, second, first]):  # from three addresses, two replicas
        await refused(401, people.login("alice@example.com", "guess", f"192.0.2.{n}"))
    place.clock.advance(60_000)
    for people in (first, second):
        locked = await refused(429, people.login("alice@example.com", PASSWORD, "198.51.100.9"))
        assert locked.headers == {"Retry-After": str(14 * 60)}
        assert locked.message == f"too many failed logins: try again in {14 * 60} s"
    # An email nobody has is throttled alike: the answer tells nothing of who exists.
    for n in range(3):
        await refused(401, first.login("nobody@example.com", "guess", f"203.0.113.{n}"))
    await refused(429, second.login("nobody@example.com", "guess", "203.0.113.9"))
    place.clock.advance(14 * MINUTE_MS)  # the window is over
    _, session = await second.login("alice@example.com", PASSWORD, "198.51.100.9")
    assert session.user.email == "alice@example.com"


async def test_failed_logins_are_throttled_per_address(place: Place) -> None:
    people = place.people
    for name in ("alice", "bob"):
        people.create_user(f"{name}@example.com", ["owner"], PASSWORD)
    for n in range(5):  # five accounts, one address: no account reaches its limit
        await refused(401, people.login(f"user{n}@example.com", "guess", "192.0.2.7"))
    locked = await refused(429, people.login("alice@example.com", PASSWORD, "192.0.2.7"))
    assert locked.headers == {"Retry-After": str(15 * 60)}
    await people.login("alice@example.com", PASSWORD, "192.0.2.8")  # another address is fine


async def test_a_success_forgets_its_account_failures_but_no_address_count(place: Place) -> None:
    people = place.replica(
        rules=Rules(account=Throttle(3, 15 * MINUTE_MS), address=Throttle(4, 15 * MINUTE_MS))
    )
    for name in ("alice", "bob"):
        people.create_user(f"{name}@example.com", ["owner"], PASSWORD)
    a, b, c = "192.0.2.1", "198.51.100.1", "203.0.113.1"
    for _ in range(2):
        await refused(401, people.login("alice@example.com", "guess", a))
    await people.login("alice@example.com", PASSWORD, b)  # alice's count starts again
    await people.login("alice@example.com", PASSWORD, a)  # a's count of 2 stays
    for _ in range(2):  # alice's account: 2 since the success, under its limit of 3
        await refused(401, people.login("alice@example.com", "guess", c))
    await people.login("alice@example.com", PASSWORD, c)
    for _ in range(2):  # a: 2 + 2 = 4, its limit, though its logins succeeded in between
        await refused(401, people.login("bob@example.com", "guess", a))
    await refused(429, people.login("alice@example.com", PASSWORD, a))
    await people.login("alice@example.com", PASSWORD, b)


async def test_a_changed_hashing_cost_rehashes_at_the_next_login(place: Place) -> None:
    cheap = place.replica(hasher=CHEAP)
    cheap.create_user("alice@example.com", ["owner"], PASSWORD)
    assert "$m=8192,t=1,p=1$" in stored(cheap, users.c.password_hash, "alice@example.com")
    await place.people.login("alice@example.com", PASSWORD, "192.0.2.1")
    rehashed = stored(cheap, users.c.password_hash, "alice@example.com")
    assert cheap.passwords.needs_rehash(rehashed), rehashed
    assert not place.people.passwords.needs_rehash(rehashed), rehashed
    await place.people.login("alice@example.com", PASSWORD, "192.0.2.1")


# --- sessions ----------------------------------------------------------------------------------


async def test_a_session_ends_after_30_idle_minutes_and_12_hours_in_all(place: Place) -> None:
    people, clock = place.people, place.clock
    people.create_user("alice@example.com", ["owner"], PASSWORD)
    token, _ = await people.login("alice@example.com", PASSWORD, "192.0.2.1")
    for _ in range(12 * 3 - 1):  # used every 20 minutes: alive until its 12th hour
        clock.advance(20 * MINUTE_MS)
        assert await people.session(token) is not None, clock.now - START_MS
    clock.advance(20 * MINUTE_MS)
    assert clock.now - START_MS == 12 * 60 * MINUTE_MS
    assert await people.session(token) is None

    token, _ = await people.login("alice@example.com", PASSWORD, "192.0.2.1")
    clock.advance(30 * MINUTE_MS - 1)
    found = await people.session(token)
    assert found is not None and found.seen_ms == clock.now
    clock.advance(30 * MINUTE_MS)
    assert await people.session(token) is None
    assert seen_ms(people, token) is None  # its row is gone
    clock.advance(-10 * MINUTE_MS)
    assert await people.session(token) is None


async def test_a_session_records_its_use_at_most_once_a_minute(place: Place) -> None:
    people, clock = place.people, place.clock
    people.create_user("alice@example.com", ["owner"], PASSWORD)
    token, _ = await people.login("alice@example.com", PASSWORD, "192.0.2.1")
    clock.advance(59_999)
    found = await people.session(token)
    assert found is not None and found.seen_ms == START_MS
    assert seen_ms(people, token) == START_MS  # read, not written
    clock.advance(1)
    found = await people.session(token)
    assert found is not None and found.seen_ms == START_MS + 60_000
    assert seen_ms(people, token) == START_MS + 60_000


async def test_logout_disable_and_reset_end_sessions_at_once_on_another_replica(
    place: Place,
) -> None:
    gateway, other = place.people, place.replica()
    gateway.create_user("alice@example.com", ["owner"], PASSWORD)
    token, _ = await gateway.login("alice@example.com", PASSWORD, "192.0.2.1")
    assert await other.session(token) is not None
    await gateway.logout(token)
    assert await other.session(token) is None
    await gateway.logout(token)  # twice is fine

    token, _ = await other.login("alice@example.com", PASSWORD, "192.0.2.1")
    assert await gateway.session(token) is not None
    password = place.people.reset_password("alice@example.com")  # as the CLI does
    assert await gateway.session(token) is None and await other.session(token) is None
    await refused(401, other.login("alice@example.com", PASSWORD, "192.0.2.1"))
    token, session = await other.login("alice@example.com", password, "192.0.2.1")
    assert session.user.must_change_password

    place.people.disable_user("alice@example.com")
    assert await gateway.session(token) is None and await other.session(token) is None
    with pytest.raises(ConfigError, match="^user 'alice@example.com' was already disabled$"):
        place.people.disable_user("alice@example.com")


async def test_a_token_chosen_before_login_is_never_a_session(place: Place) -> None:
    people = place.people
    people.create_user("alice@example.com", ["owner"], PASSWORD)
    planted = "attacker-chosen-" + "x" * 30
    assert await people.session(planted) is None
    first, _ = await people.login("alice@example.com", PASSWORD, "192.0.2.1")
    second, _ = await people.login("alice@example.com", PASSWORD, "192.0.2.1")
    assert len({planted, first, second}) == 3
    assert await people.session(planted) is None
    for nothing in ("", "x" * 10_000):
        assert await people.session(nothing) is None


async def test_change_password_follows_the_rules_and_rotates_every_session(place: Place) -> None:
    people, other = place.people, place.replica()
    _, one_time = people.create_user("alice@example.com", ["owner"])
    token, session = await people.login("alice@example.com", one_time, "192.0.2.1")
    assert session.user.must_change_password
    elsewhere, _ = await other.login("alice@example.com", one_time, "198.51.100.1")
    for new, rule in [
        ("x" * 11, "new password must be at least 12 characters"),
        ("x" * 129, "new password must be at most 128 characters"),
        ("Alice@Example.COM", "new password must not be the email address"),
        (one_time, "new password must differ from the current password"),
    ]:
        bad = await refused(400, people.change_password(token, one_time, new))
        assert bad.message == rule
    wrong = await refused(400, people.change_password(token, "not it at all", "y" * 12))
    assert wrong.message == "current password is wrong"
    await refused(401, people.change_password("made-up", one_time, "y" * 12))

    new = "鳥が空を飛んでいる今日"  # 11 characters of Japanese are too few, 12 are enough
    assert len(new) == 11
    await refused(400, people.change_password(token, one_time, new))
    fresh = await people.change_password(token, one_time, new + "!")
    assert fresh != token
    for ended in (token, elsewhere):
        assert await people.session(ended) is None and await other.session(ended) is None
    now = await other.session(fresh)
    assert now is not None and not now.user.must_change_password
    await refused(401, people.login("alice@example.com", one_time, "192.0.2.1"))
    await people.login("alice@example.com", new + "!", "192.0.2.1")
    longest = "z" * 128
    assert await people.change_password(fresh, new + "!", longest)


async def test_a_wrong_current_password_counts_against_the_account(place: Place) -> None:
    people = place.people
    people.create_user("alice@example.com", ["owner"], PASSWORD)
    token, _ = await people.login("alice@example.com", PASSWORD, "192.0.2.1")
    for _ in range(3):
        await refused(400, people.change_password(token, "guess guess guess", "y" * 12))
    await refused(429, people.change_password(token, PASSWORD, "y" * 12))
    await refused(429, people.login("alice@example.com", PASSWORD, "192.0.2.1"))


# --- groups and access -------------------------------------------------------------------------


def test_owner_admin_and_custom_groups_give_their_access(place: Place) -> None:
    people = place.replica(hasher=CHEAP)
    owner, _ = people.create_user("owner@example.com", ["owner"])
    admin, _ = people.create_user("admin@example.com", ["admin"])
    people.create_group(
        "support",
        {"responses": "view", "dashboard": "view"},
        [Scope("shop", frozenset({"app"}), frozenset({"checkout"})), Scope("cafe")],
    )
    people.create_group("analysts", {"exports": "edit"}, [Scope("shop", frozenset({"web"}))])
    agent, _ = people.create_user("agent@example.com", ["support"])

    full = people.access_of(owner)
    assert full.who == "user:owner@example.com"
    assert {s: full.level(s, "shop") for s in BUILTIN_LEVELS["owner"]} == BUILTIN_LEVELS["owner"]
    assert full.visible("responses", "shop", SHOP_CHANNELS) == dict.fromkeys(SHOP_CHANNELS)
    assert full.can("users", "edit", "any-project")
    managing = people.access_of(admin)
    assert managing.level("users") == "view" and managing.level("settings", "cafe") == "edit"

    scoped = people.access_of(agent)
    assert scoped.visible("responses", "shop", SHOP_CHANNELS) == {"app": {"checkout"}}
    assert scoped.visible("dashboard", "cafe", {"app", "web"}) == {"app": None, "web": None}
    assert scoped.level("responses", "shop") == "view"
    assert scoped.level("responses", "elsewhere") == "none"
    for section, project in [("exports", "shop"), ("responses", "elsewhere")]:
        with pytest.raises(Denied):
            scoped.visible(section, project, SHOP_CHANNELS)  # type: ignore[arg-type]

    people.add_user("analysts", "agent@example.com")
    both = people.access_of(people.user("agent@example.com"))
    assert [g.group for g in both.grants] == ["analysts", "support"]
    assert both.visible("exports", "shop", SHOP_CHANNELS) == {"web": None}

    people.grant("support", "exports", "view")
    people.set_scope("support", Scope("shop", frozenset({"app", "kiosk"})))
    widened = people.access_of(people.user("agent@example.com"))
    assert widened.visible("exports", "shop", SHOP_CHANNELS) == dict.fromkeys(
        {"app", "kiosk", "web"}
    )
    people.remove_scope("support", "shop")
    people.remove_user("analysts", "agent@example.com")
    narrowed = people.access_of(people.user("agent@example.com"))
    with pytest.raises(Denied):
        narrowed.visible("responses", "shop", SHOP_CHANNELS)

    listed = {g.name: g for g in people.groups()}
    assert list(listed) == ["admin", "analysts", "owner", "support"]
    assert listed["owner"].builtin and listed["owner"].scopes is None
    assert listed["owner"].members == ("owner@example.com",)
    assert listed["support"].scopes == (Scope("cafe"),)
    assert listed["support"].levels == {"dashboard": "view", "responses": "view", "exports": "view"}


async def test_a_session_sees_group_changes_at_its_next_request(place: Place) -> None:
    people = place.people
    people.create_group("support", {"responses": "view"}, [Scope("shop", frozenset({"app"}))])
    people.create_user("agent@example.com", ["support"], PASSWORD)
    token, session = await people.login("agent@example.com", PASSWORD, "192.0.2.1")
    assert session.access == people.access_of(people.user("agent@example.com"))
    assert session.access.level("dashboard", "shop") == "none"
    place.replica().grant("support", "dashboard", "view")
    later = await people.session(token)
    assert later is not None and later.access.level("dashboard", "shop") == "view"


CONFIG_ERRORS: list[tuple[str, Any, str]] = [
    ("bad email", lambda p: p.create_user("not-an-email", ["owner"]), "email 'not-an-email'"),
    ("no group", lambda p: p.create_user("x@example.com", []), "user 'x@example.com' needs"),
    (
        "unknown group",
        lambda p: p.create_user("x@example.com", ["nope"]),
        "no group 'nope'; groups: admin, owner",
    ),
    (
        "duplicate user",
        lambda p: p.create_user("ALICE@example.com", ["owner"]),
        "user 'alice@example.com' already exists",
    ),
    ("no user", lambda p: p.reset_password("x@example.com"), "no user 'x@example.com'; "),
    (
        "unknown project",
        lambda p: p.create_group("g", {}, [Scope("nope")]),
        "no project 'nope'; projects: cafe, shop",
    ),
    (
        "unknown channel",
        lambda p: p.create_group("g", {}, [Scope("shop", frozenset({"sms"}))]),
        "project 'shop' has no channel sms; its channels: app, email, kiosk, web",
    ),
    (
        "bad form",
        lambda p: p.create_group("g", {}, [Scope("shop", None, frozenset({"a b"}))]),
        "form 'a b' must be 1-64 characters of A-Z a-z 0-9 . _ -",
    ),
    ("bad name", lambda p: p.create_group("G G", {}, [Scope("shop")]), "group 'G G' must be"),
    ("no scope", lambda p: p.create_group("g", {}, []), "group 'g' needs a project"),
    (
        "bad section",
        lambda p: p.create_group("g", {"stats": "view"}, [Scope("shop")]),
        "section 'stats' must be one of dashboard, responses, exports, inbox, alerts,",
    ),
    (
        "bad level",
        lambda p: p.create_group("g", {"dashboard": "admin"}, [Scope("shop")]),
        "level 'admin' must be one of none, view, edit",
    ),
    (
        "duplicate group",
        lambda p: p.create_group("support", {}, [Scope("shop")]),
        "group 'support' already exists",
    ),
    (
        "built-in grant",
        lambda p: p.grant("admin", "users", "edit"),
        "the built-in group 'admin' can't be changed",
    ),
    (
        "built-in scope",
        lambda p: p.set_scope("owner", Scope("shop")),
        "the built-in group 'owner' can't be changed",
    ),
    ("unknown group grant", lambda p: p.grant("nope", "users", "edit"), "no group 'nope'"),
    (
        "scope not covered",
        lambda p: p.remove_scope("support", "cafe"),
        "group 'support' does not cover project 'cafe'",
    ),
    (
        "already a member",
        lambda p: p.add_user("owner", "alice@example.com"),
        "user 'alice@example.com' is already in group 'owner'",
    ),
    (
        "not a member",
        lambda p: p.remove_user("admin", "alice@example.com"),
        "user 'alice@example.com' is not in group 'admin'",
    ),
]


@pytest.mark.parametrize(
    ("case", "call", "message"), CONFIG_ERRORS, ids=[c[0] for c in CONFIG_ERRORS]
)
def test_what_the_cli_side_refuses_it_names(
    place: Place, case: str, call: Any, message: str
) -> None:
    people = place.replica(hasher=CHEAP)
    people.create_user("alice@example.com", ["owner"], PASSWORD)
    people.create_group("support", {}, [Scope("shop")])
    before = (people.users(), people.groups())
    with pytest.raises(ConfigError) as caught:
        call(people)
    assert str(caught.value).startswith(message), caught.value
    assert (people.users(), people.groups()) == before


# --- read keys ---------------------------------------------------------------------------------


def test_read_keys_read_within_their_scope_and_are_known_to_every_replica(place: Place) -> None:
    registry = place.registry
    raw, key = registry.create_key("shop", "read", ["app"], forms=["checkout", "signup"])
    assert raw.startswith("rk_") and key.id == raw[:11] and Registry.kind_of(raw) == "read"
    assert key.scope() == Scope("shop", frozenset({"app"}), frozenset({"checkout", "signup"}))
    whole, _ = registry.create_key("shop", "read")
    registry.load()
    found = registry.authenticate(raw)
    assert found is not None and found[0] == key and found[1].id == "shop"

    other = Registry(place.data_dir, place.where)
    place.opened.append(other.db)
    listed = {k.id: k for k in other.keys("shop")}
    assert listed[key.id].forms == frozenset({"checkout", "signup"})
    assert listed[whole[:11]].channels == SHOP_CHANNELS and listed[whole[:11]].forms is None
    reading = read_key_access(key.id, key.scope())
    assert reading.who == f"key:{key.id}"
    assert reading.visible("responses", "shop", SHOP_CHANNELS) == {"app": {"checkout", "signup"}}
    assert not reading.can("responses", "edit", "shop") and not reading.can("settings")
    with pytest.raises(Denied):
        reading.visible("dashboard", "cafe", {"app", "web"})

    registry.revoke_key(key.id)
    other.load()
    assert other.authenticate(raw) is None


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("read", {"origins": ["https://shop.example"]}, "a read key is for servers and BI tools"),
        ("site", {"forms": ["checkout"]}, "only a read key is narrowed to forms"),
        ("server", {"forms": ["checkout"]}, "only a read key is narrowed to forms"),
        ("read", {"forms": ["bad form"]}, "form 'bad form' must be 1-64 characters"),
        ("read", {"channels": ["sms"]}, "project 'shop' has no channel sms"),
    ],
    ids=["origin", "site-form", "server-form", "bad-form", "unknown-channel"],
)
def test_what_a_read_key_refuses_it_names(
    place: Place, kind: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        place.registry.create_key("shop", kind, **options)
    assert str(caught.value).startswith(message), caught.value
    assert place.registry.keys() == []


def test_people_work_from_a_thread_while_the_loop_serves(place: Place) -> None:
    """The CLI's synchronous calls and the gateway's awaited ones share one Database."""
    people = place.people
    people.create_user("alice@example.com", ["owner"], PASSWORD)

    async def both() -> None:
        login = asyncio.create_task(people.login("alice@example.com", PASSWORD, "192.0.2.1"))
        listed = await asyncio.to_thread(people.users)
        token, _ = await login
        assert [u.email for u in listed] == ["alice@example.com"]
        assert await people.session(token) is not None

    asyncio.run(both())
