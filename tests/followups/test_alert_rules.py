"""``/v1/alert-rules`` over real HTTP on a real gateway: people logged in list, make, change and
delete alert rules within their access and scope; a change carries the session's CSRF token;
bad rules and bodies get a 4xx naming the field."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import Gateway, make_project, start_gateway
from voxloop_gateway.control.access import Level, Scope, Section
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.http.auth import CSRF_HEADER, SESSION_COOKIE

PASSWORD = "correct horse battery staple"
SPIKE = {
    "name": "App spike",
    "kind": "volume_spike",
    "metric": "csat",
    "channel": "app",
    "period": "hour",
    "factor": 3,
    "min_count": 6,
    "recipients": ["Ops@Example.com"],
}
DROP = {"name": "Web NPS", "kind": "score_drop", "metric": "nps", "recipients": ["a@example.com"]}


@dataclass
class World:
    gateway: Gateway
    sessions: dict[str, tuple[str, str]]  # person -> (session token, CSRF token)

    def client(
        self, person: str, *, csrf: bool = True, project: str | None = "shop"
    ) -> httpx.Client:
        """A client with ``person``'s session, asking of ``project`` unless told otherwise."""
        token, csrf_token = self.sessions[person]
        headers = {CSRF_HEADER: csrf_token} if csrf else {}
        return httpx.Client(
            base_url=self.gateway.url,
            cookies={SESSION_COOKIE: token},
            headers=headers,
            params={} if project is None else {"project": project},
            timeout=30,
        )


def _people(registry: Registry) -> dict[str, tuple[str, str]]:
    people = People(registry.db)
    edit: dict[Section, Level] = {"alerts": "edit"}
    people.create_group("web-alerts", edit, [Scope("shop", frozenset({"web"}))])
    people.create_group(
        "web-checkout", edit, [Scope("shop", frozenset({"web"}), frozenset({"checkout"}))]
    )
    people.create_group("alert-viewers", {"alerts": "view"}, [Scope("shop")])
    people.create_group("no-alerts", {"dashboard": "view"}, [Scope("shop")])
    members = {
        "olga": "owner",
        "wendy": "web-alerts",
        "fred": "web-checkout",
        "vic": "alert-viewers",
        "dan": "no-alerts",
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
    data_dir = tmp_path_factory.mktemp("alert-rules")
    site, server = make_project(data_dir)
    registry = Registry(data_dir)
    try:
        registry.create_project("cafe")
        sessions = _people(registry)
    finally:
        registry.close()
    gateway = start_gateway(data_dir, site, server)
    yield World(gateway, sessions)
    gateway.stop()


@pytest.fixture(autouse=True)
def no_rules_left(world: World) -> Iterator[None]:
    """Each test starts without alert rules: the owner deletes what it left."""
    yield
    with world.client("olga") as client:
        for found in client.get("/v1/alert-rules").json()["alert_rules"]:
            assert client.delete(f"/v1/alert-rules/{found['id']}").status_code == 204


def test_an_owner_makes_lists_changes_and_deletes_a_rule(world: World) -> None:
    with world.client("olga") as client:
        made = client.post("/v1/alert-rules", json=SPIKE)
        assert made.status_code == 201, made.text
        rule = made.json()
        assert rule["id"].startswith("alr_")
        assert rule["created"].endswith("Z")
        assert {k: v for k, v in rule.items() if k not in ("id", "created")} == {
            **SPIKE,
            "form": None,
            "factor": 3.0,
            "recipients": ["ops@example.com"],
            "enabled": True,
        }
        assert client.get("/v1/alert-rules").json() == {"alert_rules": [rule]}

        changed = client.patch(
            f"/v1/alert-rules/{rule['id']}", json={"factor": 5, "channel": None, "enabled": False}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json() == {**rule, "factor": 5.0, "channel": None, "enabled": False}

        refused = client.patch(f"/v1/alert-rules/{rule['id']}", json={"factor": 1})
        assert refused.status_code == 422
        assert refused.json() == {
            "error": "factor must be a number above 1 for a volume_spike; got 1.0"
        }
        refused = client.patch(f"/v1/alert-rules/{rule['id']}", json={"kind": "score_drop"})
        assert refused.status_code == 422
        assert refused.json()["error"].startswith("factor is for volume_spike rules only")
        dropped = client.patch(
            f"/v1/alert-rules/{rule['id']}", json={"kind": "score_drop", "factor": None}
        )
        assert dropped.status_code == 200, dropped.text
        assert (dropped.json()["kind"], dropped.json()["factor"]) == ("score_drop", None)

        assert client.delete(f"/v1/alert-rules/{rule['id']}").status_code == 204
        assert client.get("/v1/alert-rules").json() == {"alert_rules": []}
        assert client.delete(f"/v1/alert-rules/{rule['id']}").status_code == 404
        gone = client.patch(f"/v1/alert-rules/{rule['id']}", json={"factor": 4})
        assert (gone.status_code, gone.json()) == (404, {"error": "no such alert rule"})


def test_rules_are_per_project(world: World) -> None:
    with world.client("olga") as client:
        shop = client.post("/v1/alert-rules", params={"project": "shop"}, json=DROP).json()
        cafe = client.post("/v1/alert-rules", params={"project": "cafe"}, json=DROP).json()
        listed = client.get("/v1/alert-rules", params={"project": "cafe"}).json()
        assert [r["id"] for r in listed["alert_rules"]] == [cafe["id"]]
        other = client.delete(f"/v1/alert-rules/{shop['id']}", params={"project": "cafe"})
        assert other.status_code == 404
        mine = client.delete(f"/v1/alert-rules/{cafe['id']}", params={"project": "cafe"})
        assert mine.status_code == 204
    with world.client("olga", project=None) as client:
        asked = client.get("/v1/alert-rules")
        assert asked.status_code == 400
        assert asked.json()["error"] == "project is required: you can see cafe, shop"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"metric": "stars"}, "metric must be one of nps, csat, ces, likert, thumbs; got 'stars'"),
        ({"factor": 1}, "factor must be a number above 1 for a volume_spike; got 1.0"),
        ({"period": "month"}, "period must be one of hour, day, week; got 'month'"),
        ({"min_count": 0}, "min_count must be at least 1; got 0"),
        ({"recipients": []}, "recipients must list at least one email address"),
        (
            {"recipients": ["ops@example.com", "ops"]},
            "recipients: 'ops' is not an email address (name@example.com)",
        ),
        ({"channel": "pos"}, "channel 'pos' is not one of the project's: app, email, kiosk, web"),
        ({"min_count": 2.5}, "alert rule: Expected `int`, got `float` - at `$.min_count`"),
        ({"typo": 1}, "alert rule: Object contains unknown field `typo`"),
    ],
    ids=["metric", "factor", "period", "min_count", "no-recipients", "recipient", "channel",
         "type", "unknown-field"],
)  # fmt: skip
def test_a_rule_that_cant_work_is_a_422_naming_the_field(
    world: World, change: dict[str, Any], error: str
) -> None:
    with world.client("olga") as client:
        refused = client.post("/v1/alert-rules", json={**SPIKE, **change})
        assert (refused.status_code, refused.json()) == (422, {"error": error})
        assert client.get("/v1/alert-rules").json() == {"alert_rules": []}


def test_a_body_must_be_a_json_object(world: World) -> None:
    with world.client("olga") as client:
        plain = client.post(
            "/v1/alert-rules", content=b"{}", headers={"content-type": "text/plain"}
        )
        assert plain.status_code == 415
        broken = client.post(
            "/v1/alert-rules", content=b"{", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400
        assert broken.json()["error"].startswith("the body is not JSON")
        listed = client.post("/v1/alert-rules", json=[SPIKE])
        assert (listed.status_code, listed.json()) == (
            422,
            {"error": "an alert rule must be a JSON object"},
        )
        huge = client.post("/v1/alert-rules", json={**SPIKE, "name": "x" * 70_000})
        assert huge.status_code == 413


def test_a_change_needs_the_sessions_csrf_token(world: World) -> None:
    with world.client("olga", csrf=False) as client:
        missing = client.post("/v1/alert-rules", json=SPIKE)
        assert missing.status_code == 403
        assert "CSRF token is missing or wrong" in missing.json()["error"]
        wrong = client.post("/v1/alert-rules", json=SPIKE, headers={CSRF_HEADER: "x" * 43})
        assert wrong.status_code == 403
        others = client.post(
            "/v1/alert-rules", json=SPIKE, headers={CSRF_HEADER: world.sessions["wendy"][1]}
        )
        assert others.status_code == 403
        assert client.get("/v1/alert-rules").json() == {"alert_rules": []}  # a read needs none


def test_keys_and_strangers_neither_read_nor_change(world: World) -> None:
    with httpx.Client(base_url=world.gateway.url, timeout=30) as stranger:
        assert stranger.get("/v1/alert-rules").status_code == 401
        assert stranger.post("/v1/alert-rules", json=SPIKE).status_code == 401
    with world.gateway.client(world.gateway.server_key) as key:
        refused = key.get("/v1/alert-rules")
        assert refused.status_code == 403
        assert refused.json()["error"] == "Alerts & webhooks of project 'shop' needs view access"
        assert key.post("/v1/alert-rules", json=SPIKE).status_code == 403
    with world.client("dan") as no_alerts:
        assert no_alerts.get("/v1/alert-rules").status_code == 403


def test_a_viewer_lists_but_does_not_change(world: World) -> None:
    with world.client("olga") as owner:
        rule = owner.post("/v1/alert-rules", json=SPIKE).json()
    with world.client("vic") as viewer:
        assert viewer.get("/v1/alert-rules").json() == {"alert_rules": [rule]}
        for answer in (
            viewer.post("/v1/alert-rules", json=SPIKE),
            viewer.patch(f"/v1/alert-rules/{rule['id']}", json={"factor": 9}),
            viewer.delete(f"/v1/alert-rules/{rule['id']}"),
        ):
            assert answer.status_code == 403
            assert answer.json()["error"] == (
                "Alerts & webhooks of project 'shop' needs edit access"
            )


def test_a_scoped_editor_sees_and_changes_only_rules_within_the_scope(world: World) -> None:
    with world.client("olga") as owner:
        everywhere = owner.post("/v1/alert-rules", json=DROP).json()
        on_app = owner.post("/v1/alert-rules", json=SPIKE).json()
    with world.client("wendy") as web:
        refused = web.post("/v1/alert-rules", json=DROP)
        assert (refused.status_code, refused.json()) == (
            403,
            {"error": "channel is required: you may not see every channel of the project"},
        )
        refused = web.post("/v1/alert-rules", json=SPIKE)
        assert refused.json() == {"error": "channel 'app' is outside your access"}
        mine = web.post("/v1/alert-rules", json={**DROP, "channel": "web"})
        assert mine.status_code == 201, mine.text
        assert web.get("/v1/alert-rules").json() == {"alert_rules": [mine.json()]}
        for other in (everywhere, on_app):
            assert web.patch(f"/v1/alert-rules/{other['id']}", json={}).status_code == 404
            assert web.delete(f"/v1/alert-rules/{other['id']}").status_code == 404
        moved = web.patch(f"/v1/alert-rules/{mine.json()['id']}", json={"channel": "app"})
        assert moved.status_code == 403
        widened = web.patch(f"/v1/alert-rules/{mine.json()['id']}", json={"channel": None})
        assert widened.status_code == 403
    with world.client("fred") as checkout:
        refused = checkout.post("/v1/alert-rules", json={**DROP, "channel": "web"})
        assert refused.json() == {
            "error": "form is required: you may not see every form of the project"
        }
        refused = checkout.post("/v1/alert-rules", json={**DROP, "channel": "web", "form": "faq"})
        assert refused.json() == {"error": "form 'faq' is outside your access"}
        made = checkout.post("/v1/alert-rules", json={**DROP, "channel": "web", "form": "checkout"})
        assert made.status_code == 201, made.text
        assert checkout.get("/v1/alert-rules").json() == {"alert_rules": [made.json()]}
    with world.client("olga") as owner:
        assert len(owner.get("/v1/alert-rules").json()["alert_rules"]) == 4


def test_an_unknown_query_parameter_is_a_400(world: World) -> None:
    with world.client("olga") as client:
        asked = client.get("/v1/alert-rules", params={"project": "shop", "channel": "web"})
        assert asked.status_code == 400
        assert asked.json()["error"] == "unknown query parameter 'channel'; known: project"
