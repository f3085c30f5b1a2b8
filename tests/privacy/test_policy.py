"""A project's privacy policy: its rules, its row on both control planes, ``/v1/privacy/policy``
over real HTTP (a server key, people with and without the section, the CSRF token), the CLI,
and what it does to ingest: comments scrubbed before they are stored, on the events route and
on email rating links, counted in ``/metrics`` by type and never by value."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.gateway.conftest import Command, Gateway, command, make_project, start_gateway
from tests.gateway.pg import pg_schema_url
from voxloop.email import rating_links
from voxloop_gateway.control import schema, tables
from voxloop_gateway.control.access import Scope
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.errors import ApiError
from voxloop_gateway.http.auth import CSRF_HEADER, SESSION_COOKIE
from voxloop_gateway.privacy import policy as policies
from voxloop_gateway.privacy.policy import DEFAULT, Policy
from voxloop_gateway.privacy.scrub import DEFAULT_SCRUBBER

__all__ = ["command", "pg_schema_url"]  # fixtures

PASSWORD = "a long and quite unguessable passphrase 7"
PATH = "/v1/privacy/policy"
PII = "Call +1 415 555 2671 or write to jane@example.com, card 4111 1111 1111 1111"
SCRUBBED = "Call [phone] or write to [email], card [card]"


# --- the rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "said"),
    [
        (Policy(patterns=(("Order", "A-\\d+"),)), "patterns[0]: name 'Order' must be 1-31"),
        (Policy(patterns=(("x" * 32, "A-\\d+"),)), "patterns[0]: name"),
        (Policy(patterns=(("email", "mail"),)), "'email' is a built-in type"),
        (Policy(patterns=(("ref", "R" * 201),)), "patterns[0]: pattern must be 1-200 characters"),
        (Policy(patterns=(("ref", "(unclosed"),)), "patterns[0]: pattern is not a regular"),
        (Policy(patterns=(("ref", "(a+)+$"),)), "quantified group holding a quantifier"),
        (Policy(patterns=(("ref", "(?:\\d*x)*"),)), "quantified group holding a quantifier"),
        (Policy(patterns=(("ref", "\\d*"),)), "patterns[0]: pattern matches the empty text"),
        (Policy(patterns=(("a", "x"), ("a", "y"))), "patterns[1]: name 'a' is given twice"),
        (Policy(patterns=tuple((f"p{i}", "x") for i in range(21))), "patterns: at most 20"),
        (Policy(retention_days=0), "retention_days must be 1-3650"),
        (Policy(retention_days=3651), "retention_days must be 1-3650"),
    ],
)
def test_a_policy_breaking_a_rule_is_refused_naming_the_field(policy: Policy, said: str) -> None:
    with pytest.raises(ApiError) as refused:
        policies.check_policy(policy)
    assert refused.value.status == 422 and said in refused.value.message


def test_a_policy_keeping_the_rules_is_taken_and_builds_its_scrubber_once() -> None:
    policy = Policy(patterns=(("member", r"\bM-\d{6}\b"),), retention_days=3650)
    assert policies.check_policy(policy) is policy
    scrubber = policies.scrubber_of(policy)
    assert scrubber is not None and scrubber is policies.scrubber_of(Policy(**_fields(policy)))
    assert scrubber.scrub("M-123456 at a@example.com")[0] == "[member] at [email]"
    assert policies.scrubber_of(DEFAULT) is DEFAULT_SCRUBBER
    assert policies.scrubber_of(Policy(scrub=False, patterns=policy.patterns)) is None


def _fields(policy: Policy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in Policy.__struct_fields__}


# --- the stored row, on both control planes ------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    store = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    found = Registry(tmp_path, store)
    if store != "sqlite":
        schema.migrate(found.db)
    found.create_project("shop")
    yield found
    found.close()


def _audit(registry: Registry) -> list[Any]:
    async def read(conn: AsyncConnection) -> list[Any]:
        found = await conn.execute(select(tables.audit_log).order_by(tables.audit_log.c.id))
        return list(found.all())

    return registry.db.run(read)


def test_a_new_project_scrubs_and_a_change_is_stored_read_and_audited(registry: Registry) -> None:
    db = registry.db
    assert asyncio.run(policies.read_policy(db, "shop")) == DEFAULT
    assert registry.project("shop", reload=True).scrubber is DEFAULT_SCRUBBER

    changed = Policy(
        scrub=True,
        patterns=(("member", r"\bM-\d{6}\b"),),
        retention_days=30,
        retention_mode="redact",
    )
    asyncio.run(policies.write_policy(db, "shop", changed, "cli:operator"))
    assert asyncio.run(policies.read_policy(db, "shop")) == changed
    scrubber = registry.project("shop", reload=True).scrubber
    assert scrubber is not None and scrubber.scrub("M-123456")[0] == "[member]"

    asyncio.run(
        policies.write_policy(db, "shop", msgspec.structs.replace(DEFAULT, scrub=False), "key:sk_x")
    )
    assert registry.project("shop", reload=True).scrubber is None

    records = [row for row in _audit(registry) if row.action == "privacy.policy"]
    assert [(r.actor, r.project) for r in records] == [
        ("cli:operator", "shop"),
        ("key:sk_x", "shop"),
    ]
    first = json.loads(records[0].detail)
    assert first["before"]["patterns"] == [] and first["after"]["retention_mode"] == "redact"
    assert first["after"]["patterns"] == [{"name": "member", "pattern": r"\bM-\d{6}\b"}]


def test_a_refused_policy_writes_nothing(registry: Registry) -> None:
    with pytest.raises(ApiError):
        asyncio.run(
            policies.write_policy(registry.db, "shop", Policy(retention_days=0), "cli:operator")
        )
    assert asyncio.run(policies.read_policy(registry.db, "shop")) == DEFAULT
    assert not [row for row in _audit(registry) if row.action == "privacy.policy"]


# --- over HTTP -------------------------------------------------------------------------------


@dataclass
class World:
    gateway: Gateway
    sessions: dict[str, tuple[str, str]]  # person -> (session token, CSRF token)
    read_key: str

    def person(self, name: str, *, csrf: bool = True) -> httpx.Client:
        token, csrf_token = self.sessions[name]
        return httpx.Client(
            base_url=self.gateway.url,
            cookies={SESSION_COOKIE: token},
            headers={CSRF_HEADER: csrf_token} if csrf else {},
            params={"project": "shop"},
            timeout=30,
        )

    def server(self) -> httpx.Client:
        return self.gateway.client(self.gateway.server_key)

    def comments(self) -> list[str]:
        """The stored comments of ``web``, newest first."""
        with self.server() as client:
            found = client.get("/v1/responses", params={"channel": "web", "limit": 100})
        assert found.status_code == 200, found.text
        return [r["comment"] for r in found.json()["responses"] if r["comment"] is not None]

    def post(self, comment: str) -> None:
        event = {"channel": "web", "form": "checkout", "metric": "csat", "score": 2}
        answer = self.gateway.post([{**event, "comment": comment}])
        assert answer.status_code == 202, answer.text

    def put(self, client: httpx.Client, **fields: Any) -> httpx.Response:
        return client.put(PATH, json=fields)

    def metrics(self) -> str:
        with self.gateway.client() as client:
            return client.get("/metrics").text


def _people(registry: Registry) -> dict[str, tuple[str, str]]:
    people = People(registry.db)
    people.create_group("privacy-viewers", {"privacy": "view"}, [Scope("shop")])
    people.create_group("dashboard-only", {"dashboard": "view"}, [Scope("shop")])
    people.create_group("web-privacy", {"privacy": "edit"}, [Scope("shop", frozenset({"web"}))])
    members = {
        "olga": "owner",
        "adam": "admin",
        "vic": "privacy-viewers",
        "dan": "dashboard-only",
        "wes": "web-privacy",
    }
    for name, group in members.items():
        people.create_user(f"{name}@example.com", [group], PASSWORD)

    async def login() -> dict[str, tuple[str, str]]:
        sessions = {}
        for name in members:
            token, session = await people.login(f"{name}@example.com", PASSWORD, "127.0.0.1")
            sessions[name] = (token, session.csrf)
        return sessions

    return asyncio.run(login())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("privacy-policy")
    site, server = make_project(data_dir)
    registry = Registry(data_dir)
    try:
        read_key, _ = registry.create_key("shop", "read")
        sessions = _people(registry)
    finally:
        registry.close()
    gateway = start_gateway(data_dir, site, server)
    yield World(gateway, sessions, read_key)
    gateway.stop()


@pytest.fixture(autouse=True)
def default_policy(world: World) -> Iterator[None]:
    """Each test starts from a new project's policy."""
    yield
    with world.server() as client:
        reset = world.put(
            client, scrub=True, patterns=[], retention_days=None, retention_mode="delete"
        )
        assert reset.status_code == 200, reset.text


def test_a_new_projects_comments_are_scrubbed_before_they_are_stored(world: World) -> None:
    with world.server() as client:
        shown = client.get(PATH).json()
    assert shown == {
        "project": "shop",
        "scrub": True,
        "detects": ["email", "phone", "card", "iban"],
        "patterns": [],
        "retention_days": None,
        "retention_mode": "delete",
    }
    world.post(PII)
    world.post("Fast checkout, thanks! Order #A-10023 for Rp 150.000 on 2024-03-15")
    assert world.comments()[:2] == [
        "Fast checkout, thanks! Order #A-10023 for Rp 150.000 on 2024-03-15",
        SCRUBBED,
    ]


def test_the_hits_are_counted_by_type_in_metrics_and_never_their_values(world: World) -> None:
    def counts() -> dict[str, float]:
        found = re.findall(
            r'^voxloop_pii_scrubbed_total\{type="(\w+)"\} (\S+)$', world.metrics(), re.M
        )
        return {kind: float(value) for kind, value in found}

    before = counts()
    with world.server() as client:
        world.put(client, patterns=[{"name": "member", "pattern": r"\bM-\d{6}\b"}])
    world.post(f"{PII}, IBAN DE89 3704 0044 0532 0130 00, member M-123456, b@example.org")
    after = counts()
    grew = {kind: after[kind] - before.get(kind, 0) for kind in after}
    assert grew == {"email": 2, "phone": 1, "card": 1, "iban": 1, "custom": 1}
    text = world.metrics()
    # Whole values: a digit run as short as "415" may turn up in any float of /metrics.
    found = ("jane@example.com", "415 555 2671", "4111 1111", "DE89", "M-123456", "member")
    for value in found:
        assert value not in text


def test_a_policy_without_scrubbing_keeps_comments_as_sent(world: World) -> None:
    with world.server() as client:
        changed = world.put(client, scrub=False)
    assert changed.status_code == 200 and changed.json()["scrub"] is False
    world.post(PII)
    assert world.comments()[0] == PII


def test_a_pattern_of_the_operators_own_becomes_its_placeholder(world: World) -> None:
    with world.server() as client:
        changed = world.put(client, patterns=[{"name": "member", "pattern": r"\bM-\d{6}\b"}])
    assert changed.status_code == 200, changed.text
    assert changed.json()["patterns"] == [{"name": "member", "pattern": r"\bM-\d{6}\b"}]
    world.post("Member M-123456 here, mail me: m@example.com")
    assert world.comments()[0] == "Member [member] here, mail me: [email]"


def test_fields_left_out_keep_their_value(world: World) -> None:
    with world.server() as client:
        world.put(client, retention_days=90, retention_mode="redact")
        changed = world.put(client, scrub=False)
    assert changed.json() | {"scrub": True} == {
        "project": "shop",
        "scrub": True,
        "detects": ["email", "phone", "card", "iban"],
        "patterns": [],
        "retention_days": 90,
        "retention_mode": "redact",
    }


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        ({"retention_days": 0}, 422, "retention_days must be 1-3650"),
        ({"retention_days": "30"}, 422, "$.retention_days"),
        ({"retention_mode": "shred"}, 422, "$.retention_mode"),
        ({"patterns": [{"name": "ref", "pattern": "(a+)+"}]}, 422, "patterns[0]"),
        ({"patterns": [{"name": "ref"}]}, 422, "pattern"),
        ({"scrub": True, "keep": "all"}, 422, "keep"),
        ([], 422, "object"),
    ],
)
def test_a_bad_body_gets_a_4xx_naming_the_field_and_changes_nothing(
    world: World, body: Any, status: int, said: str
) -> None:
    with world.server() as client:
        refused = client.put(PATH, json=body)
        assert refused.status_code == status and said in refused.json()["error"], refused.text
        assert client.get(PATH).json()["retention_days"] is None


def test_owners_and_admins_change_it_with_the_csrf_token_and_it_is_audited(
    world: World,
) -> None:
    for name, days in (("olga", 30), ("adam", 60)):
        with world.person(name) as client:
            changed = world.put(client, retention_days=days)
        assert changed.status_code == 200 and changed.json()["retention_days"] == days
    registry = Registry(world.gateway.data_dir)
    try:
        records = [r for r in _audit(registry) if r.action == "privacy.policy"]
    finally:
        registry.close()
    actors = [r.actor for r in records if json.loads(r.detail)["after"]["retention_days"]]
    assert actors[-2:] == ["user:olga@example.com", "user:adam@example.com"]


def test_who_may_read_and_change_it(world: World) -> None:
    with world.person("olga", csrf=False) as client:
        refused = world.put(client, scrub=False)
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    with world.person("vic") as client:
        assert client.get(PATH).status_code == 200
        refused = world.put(client, scrub=False)
    assert refused.status_code == 403 and "edit" in refused.json()["error"]
    with world.person("wes") as client:
        assert client.get(PATH).status_code == 200
        refused = world.put(client, scrub=False)
    assert refused.status_code == 403 and "the whole project" in refused.json()["error"]
    with world.person("dan") as client:
        assert client.get(PATH).status_code == 403
    with world.gateway.client(world.read_key) as client:
        assert client.get(PATH).status_code == 403
    with world.gateway.client(world.gateway.site_key) as client:
        assert client.get(PATH).status_code == 403
    with world.server() as client:
        assert client.get(PATH, params={"project": "other"}).status_code == 403
        assert client.get(PATH, headers={"Origin": "https://shop.example.com"}).status_code == 403
    with world.gateway.client() as client:
        assert client.get(PATH).status_code == 401
    with world.server() as client:
        assert client.get(PATH).json()["scrub"] is True


def test_a_rating_links_comment_is_scrubbed_too(world: World) -> None:
    registry = Registry(world.gateway.data_dir)
    try:
        secret = registry.create_email_secret("shop").secret
    finally:
        registry.close()
    link = rating_links(
        world.gateway.url,
        secret,
        project="shop",
        campaign="c-1",
        form="checkout",
        metric="csat",
        recipient="r-1",
    )[0]
    path = link.url.removeprefix(world.gateway.url)
    with httpx.Client(base_url=world.gateway.url, timeout=30) as client:
        page = client.get(path)
        view = page.text.split('data-view="', 1)[1].split('"', 1)[0]
        assert client.post(path, json={"view": view}).status_code == 200
        commented = client.post(path, json={"view": view, "comment": PII})
    assert commented.json() == {"recorded": True, "commented": True}
    with world.server() as client:
        found = client.get("/v1/responses", params={"channel": "email"}).json()["responses"]
    assert [r["comment"] for r in found] == [SCRUBBED]


# --- the command line ------------------------------------------------------------------------


def test_the_cli_shows_and_sets_the_policy(tmp_path: Path, command: Command) -> None:
    make_project(tmp_path)
    env = {"VOXLOOP_DATA_DIR": str(tmp_path)}
    shown = command("privacy", "show", "shop", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split("\n")[:4] == [
        "project    shop",
        "scrub      on: email, phone, card, iban",
        "pattern    none",
        "retention  kept for ever",
    ]
    changed = command(
        "privacy",
        "set",
        "shop",
        "--pattern",
        r"member=\bM-\d{6}\b",
        "--pattern",
        "plate=B \\d{4} [A-Z]{2}",
        "--retention-days",
        "365",
        "--retention-mode",
        "redact",
        env=env,
    )
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.split("\n")[2:5] == [
        r"pattern    member=\bM-\d{6}\b",
        "pattern    plate=B \\d{4} [A-Z]{2}",
        "retention  365 days, then comments and meta cleared",
    ]
    off = command("privacy", "set", "shop", "--no-scrub", "--keep-forever", env=env)
    assert "scrub      off: comments kept as sent" in off.stdout
    assert "retention  kept for ever" in off.stdout and "member=" in off.stdout
    registry = Registry(tmp_path)
    try:
        assert registry.project("shop", reload=True).scrubber is None
        actors = [r.actor for r in _audit(registry) if r.action == "privacy.policy"]
    finally:
        registry.close()
    assert actors == ["cli:operator", "cli:operator"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--pattern", "member"), "--pattern 'member' must be NAME=REGEX"),
        (("--pattern", "m=(a*)*"), "patterns[0]: pattern has a quantified group"),
        (("--retention-days", "0"), "0 is not in the range 1<=x<=3650"),
        (("--retention-days", "9", "--keep-forever"), "--retention-days or --keep-forever"),
        (("--retention-mode", "shred"), "invalid choice: 'shred'"),
    ],
)
def test_the_cli_refuses_a_bad_policy_in_one_line(
    tmp_path: Path, command: Command, args: tuple[str, ...], said: str
) -> None:
    make_project(tmp_path)
    env = {"VOXLOOP_DATA_DIR": str(tmp_path)}
    refused = command("privacy", "set", "shop", *args, env=env)
    assert refused.returncode == 2 and said in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    unknown = command("privacy", "show", "nope", env=env)
    assert unknown.returncode == 2 and "no project 'nope'" in unknown.stderr
