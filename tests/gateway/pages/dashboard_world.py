"""What the dashboard's tests share: a gateway with a project of feedback, its people, logins.

One real gateway a test module (over real SQLite files, on a loopback port) serves project
``shop`` with ten days of responses on web, app and email, commented in English, Arabic and
Persian (real sentences: the search must find them by a word of their own script), a changed
email vote and a link scanner's burst (held apart). People are made in its control plane as the
CLI makes them; a test logs in through the login form, as a browser does.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from voxloop_core import DAY_MS, HOUR_MS
from voxloop_gateway.control.access import Scope
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry

from ..conftest import Gateway, make_project, start_gateway
from ..test_rating import Mailing

#: A password good enough for the rules (12+ characters, not the email).
PASSWORD = "correct horse battery staple"
#: The comments, by language: (channel, form, metric, score, comment). Each search word below
#: is in its own sentences only.
SENTENCES: dict[str, list[tuple[str, str, str, int, str]]] = {
    "en": [
        ("web", "checkout", "nps", 10, "The delivery was fast and the courier was friendly."),
        ("web", "checkout", "nps", 3, "Checkout failed twice on my phone."),
        ("app", "onboarding", "csat", 5, "Great support team, they fixed my delivery address."),
        ("email", "newsletter", "nps", 8, "Nice offers this week."),
    ],
    "ar": [
        ("web", "checkout", "nps", 9, "خدمة العملاء كانت ممتازة وسريعة."),
        ("app", "onboarding", "csat", 2, "التطبيق بطيء جدا عند الدفع."),
        ("app", "support", "ces", 6, "حل فريق الدعم مشكلتي بسرعة."),
    ],
    "fa": [
        ("web", "checkout", "nps", 7, "پشتیبانی بسیار عالی و سریع بود."),
        ("app", "onboarding", "csat", 1, "پرداخت در برنامه خیلی کند است."),
        ("email", "newsletter", "nps", 10, "خبرنامه این هفته بسیار مفید بود."),
    ],
}
#: A word of each language and the comments it must find (and only those).
SEARCHES: dict[str, tuple[str, list[str]]] = {
    "en": ("delivery", [s[4] for s in SENTENCES["en"] if "delivery" in s[4]]),
    "ar": ("بطيء", [SENTENCES["ar"][1][4]]),
    "fa": ("بسیار", [SENTENCES["fa"][0][4], SENTENCES["fa"][2][4]]),
}


@dataclass
class World:
    """The gateway, its project's people, and when the feedback was given."""

    gateway: Gateway
    people: People
    now_ms: int
    made: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.gateway.url

    def user(self, groups: tuple[str, ...] = ("owner",), *, one_time: bool = False) -> str:
        """A new user in ``groups``; their password is :data:`PASSWORD` (or one-time)."""
        email = f"person-{secrets.token_hex(4)}@shop.example"
        _, password = self.people.create_user(email, groups, None if one_time else PASSWORD)
        self.made.append(password)
        return email

    def scoped_user(self, channels: frozenset[str]) -> str:
        """A user who may view the dashboard, inbox and exports of ``shop``'s ``channels``."""
        name = f"team-{secrets.token_hex(3)}"
        levels = {"dashboard": "view", "responses": "view", "exports": "view"}
        self.people.create_group(name, levels, [Scope("shop", channels)])  # type: ignore[arg-type]
        return self.user((name,))

    def stats(self, **params: Any) -> dict[str, Any]:
        """``/v1/stats`` for the server key."""
        return self.gateway.stats(**params)

    def responses(self, **params: Any) -> list[dict[str, Any]]:
        """Every response ``/v1/responses`` gives for ``params`` (the server key), page by page."""
        found: list[dict[str, Any]] = []
        with self.gateway.client(self.gateway.server_key) as client:
            cursor = None
            while True:
                asked = {**params, **({"cursor": cursor} if cursor else {})}
                answer = client.get("/v1/responses", params=asked)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                found += body["responses"]
                cursor = body["next"]
                if cursor is None:
                    return found


def seed(gateway: Gateway, now_ms: int) -> None:
    """Ten days of answers on every channel, the sentences among them, and the email votes."""
    events: list[dict[str, Any]] = []
    number = 0
    for day in range(10):
        for hour in (3, 9, 15):
            number += 1
            ts = now_ms - now_ms % HOUR_MS - day * DAY_MS - hour * HOUR_MS
            channel = ("web", "app", "email")[number % 3]
            events.append(
                {
                    "id": f"plain-{number}",
                    "channel": channel,
                    "form": "checkout" if channel == "web" else "newsletter",
                    "metric": "nps",
                    "score": (number * 7) % 11,
                    "ts": ts,
                    "respondent": f"r-{number % 4}",
                }
            )
    for language, sentences in SENTENCES.items():
        for i, (channel, form, metric, score, comment) in enumerate(sentences):
            number += 1
            events.append(
                {
                    "id": f"said-{language}-{i}",
                    "channel": channel,
                    "form": form,
                    "metric": metric,
                    "score": score,
                    "comment": comment,
                    "locale": language,
                    "ts": now_ms - (number % 9) * DAY_MS - HOUR_MS,
                    "respondent": f"r-{number % 4}",
                    "tags": ["mobile"] if i % 2 else ["desktop"],
                }
            )
    answer = gateway.post(events)
    assert answer.status_code == 202 and answer.json()["rejected"] == [], answer.text
    mailing = Mailing(gateway)
    changed = mailing.links("changer")
    assert mailing.confirm(changed[4]).status_code == 200
    time.sleep(0.01)
    second = mailing.confirm(changed[9], comment="On second thought, it was great.")
    assert second.status_code == 200
    for score in (0, 5, 10):  # a scanner clicks every link of one email at once
        assert mailing.confirm(mailing.links("scanned")[score]).status_code == 200


def running_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A gateway with ``shop``'s feedback seeded, until the generator is closed: each test
    module's ``world`` fixture yields from it."""
    data = tmp_path_factory.mktemp("dashboard")
    site, server = make_project(data)
    gateway = start_gateway(data, site, server)
    registry = Registry(data)
    now_ms = int(time.time() * 1000)
    try:
        seed(gateway, now_ms)
        yield World(gateway, People(registry.db), now_ms)
    finally:
        gateway.stop()
        registry.close()


def form_token(html: str, name: str = "csrf") -> str:
    """The value of the hidden field ``name`` of a page's form."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found[1]


@contextlib.contextmanager
def login(url: str, email: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """A client logged in through the login form, as a browser is (its cookies kept)."""
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        page = client.get("/app/login")
        assert page.status_code == 200, page.text
        done = client.post(
            "/app/login",
            data={"email": email, "password": password, "csrf": form_token(page.text)},
        )
        assert done.status_code == 303, done.text
        yield client


def browser_login(page: Page, url: str, email: str, password: str = PASSWORD) -> None:
    """Log in through the login page in the browser."""
    page.goto(f"{url}/app/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
