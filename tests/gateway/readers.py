"""A gateway full of responses to read, and who reads them: keys, read keys and people.

One real gateway on loopback per backend (SQLite files, or a fresh PostgreSQL database), seeded
over HTTP with responses on four channels in five scripts, with vote histories, one respondent
on web, app and email, and email clicks held apart as a scanner's or as late. The read tests
share it (module scope) and only read, so their answers can be compared with what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.postgres import require_postgres
from voxloop import new_id
from voxloop.email import rating_links
from voxloop_gateway import Settings, migrate
from voxloop_gateway.control.access import Level, Scope, Section
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry

from .conftest import ORIGIN, Gateway, start_gateway
from .pg import BASE_URL, _admin, with_database

NOW_MS = int(time.time() * 1000) - 60_000
PASSWORD = "a long and quite unguessable passphrase 7"
#: Comments in the scripts a search must find, and cells a spreadsheet would run.
COMMENTS = [
    "Fast checkout, thanks!",
    "التوصيل كان سريعاً جداً",  # Arabic: the delivery was very fast
    "پرداخت خیلی راحت بود",  # Persian: paying was very easy
    "Pengiriman sangat cepat, terima kasih",  # Indonesian
    "配送がとても速かったです",  # Japanese
    "物流很快，客服很好",  # Chinese
    '=HYPERLINK("http://evil.example","click")',
    "+1 would buy again",
    "-2 stars, sorry",
    "@SUM(A1:A9)",
    "\tindented by a tab",
    'Quoted "word", a comma\nand a second line',
    None,
    None,
]
LOCALES = ["en", "ar", "fa-IR", "id", "ja", "zh-Hans", None]
FORMS = ["checkout", "search", "support-ticket"]
METRICS = ["nps", "csat", "thumbs", "ces"]
CHANNELS = ["web", "app", "email", "kiosk"]
RESPONDENTS = ["user-1", "user-2", "user-3", None, None]


@dataclass
class Reading:
    """The seeded gateway and its readers."""

    gateway: Gateway
    backend: str
    sent: list[dict[str, Any]]
    #: A read key of channel ``app`` only, and one of form ``checkout`` only.
    app_key: str
    checkout_key: str
    #: Session tokens: a person of channel ``app`` only (dashboard, responses, exports), one
    #: who may see the app responses but not export them, and an owner of every project.
    app_person: str
    no_export_person: str
    owner: str
    #: A person in two groups that scope ``shop`` differently: ``app`` for form ``checkout``
    #: only, and ``web`` for every form (dashboard, responses, exports in both).
    overlap_person: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def server(self) -> str:
        return self.gateway.server_key

    def client(self, key: str | None = None, session: str | None = None) -> httpx.Client:
        """A client reading with ``key`` (the server key when neither is given) or ``session``."""
        cookies = {"voxloop_session": session} if session else None
        headers = {"Authorization": f"Bearer {key or self.server}"} if not session else {}
        return httpx.Client(base_url=self.gateway.url, headers=headers, cookies=cookies, timeout=60)

    def get(
        self, path: str, key: str | None = None, session: str | None = None, **params: Any
    ) -> httpx.Response:
        with self.client(key, session) as client:
            return client.get(path, params=params)

    def walk(
        self,
        path: str = "/v1/responses",
        key: str | None = None,
        session: str | None = None,
        **params: Any,
    ) -> list[dict[str, Any]]:
        """Every response of ``path`` for ``params``, page after page."""
        found: list[dict[str, Any]] = []
        cursor = None
        with self.client(key, session) as client:
            while True:
                asked = dict(params, **({"cursor": cursor} if cursor else {}))
                answer = client.get(path, params=asked)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                found += body["responses"]
                cursor = body["next"]
                if cursor is None:
                    return found


def events(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """``count`` responses of every kind, newest first in ``ts``; some share a ``ts`` (and an
    id) across channels, and two vote keys hold a changed answer each."""
    made: list[dict[str, Any]] = []
    for i in range(count):
        metric = METRICS[(i + i // 4) % len(METRICS)]  # every metric on every channel
        low, high = {"nps": (0, 10), "csat": (1, 5), "thumbs": (0, 1), "ces": (1, 7)}[metric]
        event: dict[str, Any] = {
            "id": new_id(),
            "channel": CHANNELS[i % len(CHANNELS)],
            "form": FORMS[(i // 2) % len(FORMS)],
            "metric": metric,
            "score": rng.randint(low, high),
            "ts": NOW_MS - (i // 3) * 61_000,  # three answers a minute: ties in ts
        }
        comment = COMMENTS[i % len(COMMENTS)]
        if comment is not None:
            event["comment"] = comment
        locale = LOCALES[i % len(LOCALES)]
        if locale is not None:
            event["locale"] = locale
        respondent = RESPONDENTS[i % len(RESPONDENTS)]
        if respondent is not None:
            event["respondent"] = respondent
        tags = [t for t in ("mobile", "vip", "beta") if rng.random() < 0.4]
        if tags:
            event["tags"] = tags
        if i % 3:
            event["meta"] = {"plan": rng.choice(["pro", "free"]), "seats": rng.choice([3, 5])}
            if i % 2:
                event["meta"]["trial"] = rng.random() < 0.5
        made.append(event)
    # The same id on two channels at the same ts: the same key in two stores.
    twin = {**made[1], "channel": "kiosk" if made[1]["channel"] != "kiosk" else "web"}
    made.append(twin)
    # Changed answers: two votes of one vote key each, the later counts.
    for n, channel in enumerate(("web", "app")):
        for step, score in enumerate((2, 9)):
            made.append(
                {
                    "id": new_id(),
                    "channel": channel,
                    "form": "checkout",
                    "metric": "nps",
                    "score": score,
                    "vote_key": f"order-{n}",
                    "respondent": "user-1",
                    "comment": f"vote {step} of order {n}",
                    "ts": NOW_MS - 3_600_000 + step * 60_000,
                }
            )
    return made


#: The edit window of email votes: long enough for a scanner's burst, short enough to wait out.
EDIT_SECONDS = 3.0


def click_email(gateway: Gateway, store: str) -> int:
    """Email votes: a scanner's burst (11 held as quarantined), and user-1 changing their
    answer after the edit window (the second click held as late). Returns how many."""
    registry = Registry(gateway.data_dir, store)
    try:
        secret = registry.create_email_secret("shop").secret
    finally:
        registry.close()

    def links(recipient: str) -> list[str]:
        made = rating_links(
            gateway.url,
            secret,
            project="shop",
            campaign="2026-11-nps",
            form="checkout",
            metric="nps",
            recipient=recipient,
        )
        return [link.url.removeprefix(gateway.url) for link in made]

    with httpx.Client(base_url=gateway.url, timeout=30) as client:

        def click(path: str) -> None:
            page = client.get(path)
            deadline = time.monotonic() + 10  # a new secret reaches a gateway on PostgreSQL
            while page.status_code == 403 and time.monotonic() < deadline:  # within a second
                time.sleep(0.1)
                page = client.get(path)
            assert page.status_code == 200, page.text
            view = page.text.split('data-view="', 1)[1].split('"', 1)[0]
            assert client.post(path, json={"view": view}).status_code == 200

        person = links("user-1")
        click(person[4])
        first = time.monotonic()  # the click was recorded before this
        burst = links("scanner@example.com")
        click(burst[0])
        started = time.monotonic()
        for path in burst[1:]:
            click(path)
        assert time.monotonic() - started < EDIT_SECONDS, "the burst outlasted the edit window"
        time.sleep(max(0.0, EDIT_SECONDS + 0.2 - (time.monotonic() - first)))
        click(person[8])
    return 13


def _people(registry: Registry) -> tuple[str, str, str, str]:
    """Two people of channel ``app``, an owner, and a person in two groups that scope ``shop``
    differently (``app`` for form ``checkout``, ``web`` for every form); their session tokens."""
    people = People(registry.db)
    reads: dict[Section, Level] = {"dashboard": "view", "responses": "view", "exports": "view"}
    app = Scope("shop", frozenset({"app"}))
    people.create_group("app-team", reads, [app])
    people.create_group("app-readers", {"dashboard": "view", "responses": "view"}, [app])
    people.create_group(
        "app-checkout", reads, [Scope("shop", frozenset({"app"}), frozenset({"checkout"}))]
    )
    people.create_group("web-team", reads, [Scope("shop", frozenset({"web"}))])
    people.create_user("ana@example.com", ["app-team"], PASSWORD)
    people.create_user("rui@example.com", ["app-readers"], PASSWORD)
    people.create_user("olga@example.com", ["owner"], PASSWORD)
    people.create_user("ines@example.com", ["app-checkout", "web-team"], PASSWORD)

    async def login() -> tuple[str, str, str, str]:
        emails = ("ana@example.com", "rui@example.com", "olga@example.com", "ines@example.com")
        first, second, third, fourth = [
            (await people.login(email, PASSWORD, "127.0.0.1"))[0] for email in emails
        ]
        return first, second, third, fourth

    return asyncio.run(login())


def seed(data_dir: Path, store: str, **settings: Any) -> Reading:
    """Project ``shop``, its keys and people, a gateway, and the responses, on ``store``."""
    if store != "sqlite":
        migrate.migrate(Settings(store=store, data_dir=data_dir))
    registry = Registry(data_dir, store)
    try:
        registry.create_project("shop", ["kiosk"])
        registry.create_project("other")
        site, _ = registry.create_key("shop", "site", ["web", "app"], [ORIGIN])
        server, _ = registry.create_key("shop", "server")
        app_key, _ = registry.create_key("shop", "read", ["app"])
        checkout_key, _ = registry.create_key("shop", "read", forms=["checkout"])
        app_person, no_export_person, owner, overlap_person = _people(registry)
    finally:
        registry.close()
    gateway = start_gateway(
        data_dir,
        site,
        server,
        store=store,
        key_rate=1e6,
        key_burst=1e6,
        address_rate=1e6,
        address_burst=1e6,
        email_edit_days=EDIT_SECONDS / 86_400,
        **settings,
    )
    try:
        sent = events(random.Random(13), 150)
        for start in range(0, len(sent), 40):
            answer = gateway.post(sent[start : start + 40])
            assert answer.status_code == 202 and not answer.json()["rejected"], answer.text
        reading = Reading(
            gateway,
            store,
            sent,
            app_key,
            checkout_key,
            app_person,
            no_export_person,
            owner,
            overlap_person,
        )
        reading.extra["email_clicks"] = click_email(gateway, store)
    except BaseException:
        gateway.stop()
        raise
    return reading


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def reading(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reading]:
    """The seeded gateway, once on SQLite files and once on PostgreSQL."""
    data_dir = tmp_path_factory.mktemp(f"reading-{request.param}")
    with database(request.param) as store:
        running = seed(data_dir, store)
        yield running
        running.gateway.stop()


@pytest.fixture(scope="module")
def sqlite_reading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reading]:
    """The seeded gateway on SQLite only, for what doesn't depend on the database."""
    running = seed(tmp_path_factory.mktemp("reading"), "sqlite")
    yield running
    running.gateway.stop()


@contextlib.contextmanager
def database(backend: str) -> Iterator[str]:
    """``sqlite``, or the URL of a fresh PostgreSQL database, dropped at the end."""
    if backend == "sqlite":
        yield "sqlite"
        return
    require_postgres()
    name = f"voxloop_r_{secrets.token_hex(6)}"
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    try:
        yield with_database(BASE_URL, name)
    finally:
        asyncio.run(_admin(f"DROP DATABASE {name} WITH (FORCE)"))


# --- what a response should say, from what was sent --------------------------------------


def meta_text(value: Any) -> str:
    """A meta value as a filter compares it: a string as written, anything else in JSON."""
    return value if isinstance(value, str) else json.dumps(value)
