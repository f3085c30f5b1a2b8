"""``/v1/webhooks`` on a real gateway: who may see and change a project's endpoints, the 4xx
that names the field, the delivery log a page at a time, and a redelivery with the same id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection
from standardwebhooks.webhooks import Webhook

from tests.gateway.conftest import Gateway, make_project, start_gateway
from voxloop_gateway.control.access import Scope
from voxloop_gateway.control.db import Database
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.integrations import outbox
from voxloop_gateway.integrations.webhook_delivery import deliver_due
from voxloop_gateway.settings import Settings

from .receivers import LOOPBACK, Receiver, receiver

__all__ = ["receiver"]  # a fixture

PASSWORD = "correct horse battery"


@dataclass
class Site:
    """A gateway serving project ``shop``, people with different access, and its database."""

    gateway: Gateway
    people: People
    db: Database
    settings: Settings

    async def as_(self, email: str, *, csrf: bool = True) -> httpx.AsyncClient:
        token, session = await self.people.login(email, PASSWORD, "192.0.2.7")
        headers = {"x-csrf-token": session.csrf} if csrf else {}
        return httpx.AsyncClient(
            base_url=self.gateway.url,
            cookies={"voxloop_session": token},
            headers=headers,
            params={"project": "shop"},
            timeout=30,
        )

    async def enqueue(self, data: dict[str, Any]) -> str:
        async def write(conn: AsyncConnection) -> str:
            now = time.time_ns() // 1_000_000
            return await outbox.enqueue(conn, "shop", "response.created", data, now)

        return await self.db.arun(write, write=True)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site_key, server_key = make_project(tmp_path)
    running = start_gateway(tmp_path, site_key, server_key, webhook_allow=LOOPBACK)
    registry = Registry(tmp_path)
    people = People(registry.db)
    people.create_user("owner@example.com", ["owner"], PASSWORD)
    people.create_group("watchers", {"alerts": "view"}, [Scope("shop")])
    people.create_user("viewer@example.com", ["watchers"], PASSWORD)
    people.create_group("app-alerts", {"alerts": "edit"}, [Scope("shop", frozenset({"app"}))])
    people.create_user("scoped@example.com", ["app-alerts"], PASSWORD)
    people.create_group("readers", {"dashboard": "view"}, [Scope("shop")])
    people.create_user("reader@example.com", ["readers"], PASSWORD)
    settings = Settings(data_dir=tmp_path, webhook_allow=LOOPBACK, webhook_timeout_s=2.0)
    yield Site(running, people, registry.db, settings)
    running.stop()
    registry.close()


async def delivered(site: Site, receiver: Receiver, count: int) -> None:
    """Deliver until ``receiver`` has ``count`` requests (whoever delivers them)."""
    deadline = time.monotonic() + 15
    while len(receiver.received()) < count:
        assert time.monotonic() < deadline, receiver.received()
        now = time.time_ns() // 1_000_000
        await deliver_due(site.db, site.settings, "test", now)
        await asyncio.sleep(0.05)


async def test_people_who_edit_alerts_manage_webhooks(site: Site, receiver: Receiver) -> None:
    async with await site.as_("owner@example.com") as owner:
        body = {"url": receiver.url, "event_types": ["response.created"], "description": "CRM"}
        made = await owner.post("/v1/webhooks", json=body)
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        hook = made.json()["webhook"]
        assert secret.startswith("whsec_")
        assert hook["url"] == receiver.url and hook["state"] == "active"
        assert hook["event_types"] == ["response.created"] and hook["description"] == "CRM"
        listed = await owner.get("/v1/webhooks")
        assert listed.status_code == 200
        assert [w["id"] for w in listed.json()["webhooks"]] == [hook["id"]]
        assert secret not in listed.text and "secret" not in listed.json()["webhooks"][0]
        one = await owner.get(f"/v1/webhooks/{hook['id']}")
        assert one.json() == listed.json()["webhooks"][0]
        rotated = await owner.post(f"/v1/webhooks/{hook['id']}/rotate-secret")
        assert rotated.status_code == 200
        new_secret = rotated.json()["secret"]
        assert new_secret != secret and rotated.json()["webhook"]["previous_secret_until"]
        # Deliveries are signed with both while they overlap.
        message = await site.enqueue({"n": 1})
        await delivered(site, receiver, 1)
        [got] = receiver.received()
        for key in (secret, new_secret):
            assert Webhook(key).verify(got.body, got.headers)["data"] == {"n": 1}
        assert got.id == message
        enabled = await owner.post(f"/v1/webhooks/{hook['id']}/enable")
        assert enabled.status_code == 200 and enabled.json()["state"] == "active"
        gone = await owner.delete(f"/v1/webhooks/{hook['id']}")
        assert gone.status_code == 204
        assert (await owner.get(f"/v1/webhooks/{hook['id']}")).status_code == 404
        assert (await owner.get("/v1/webhooks")).json() == {"webhooks": []}


GOOD = {"url": "http://127.0.0.1:9/hook", "event_types": ["alert.fired"]}
BAD_BODIES = [
    ({**GOOD, "url": "ftp://127.0.0.1/hook"}, 422, "url must be http or https"),
    ({**GOOD, "url": "http://10.0.0.1/hook"}, 422, "url is refused: 10.0.0.1 is a private"),
    ({**GOOD, "url": "http://169.254.169.254/"}, 422, "url is refused"),
    ({**GOOD, "url": "http://[::1]/"}, 422, "url is refused: ::1 is a loopback"),
    ({**GOOD, "event_types": ["alert.fired", "nope"]}, 422, "event_types has an unknown type"),
    ({**GOOD, "event_types": []}, 422, "event_types must name at least one"),
    ({**GOOD, "event_types": "alert.fired"}, 422, "$.event_types"),
    ({**GOOD, "url": 5}, 422, "$.url"),
    ({"event_types": ["alert.fired"]}, 422, "`url`"),
    ({**GOOD, "secret": "whsec_mine"}, 422, "unknown field `secret`"),
    ({**GOOD, "description": "x" * 501}, 422, "description must be"),
]


@pytest.mark.parametrize(
    ("body", "status", "said"),
    BAD_BODIES,
    ids=[
        "ftp",
        "private",
        "metadata",
        "ipv6-loopback",
        "unknown-type",
        "no-type",
        "types-not-a-list",
        "url-not-text",
        "no-url",
        "unknown-field",
        "long-description",
    ],
)
async def test_bad_input_is_a_4xx_naming_the_field(
    site: Site, body: dict[str, Any], status: int, said: str
) -> None:
    async with await site.as_("owner@example.com") as owner:
        answer = await owner.post("/v1/webhooks", json=body)
        assert answer.status_code == status, answer.text
        assert said in answer.json()["error"]
        assert (await owner.get("/v1/webhooks")).json() == {"webhooks": []}


async def test_a_body_that_is_not_json_is_refused(site: Site) -> None:
    async with await site.as_("owner@example.com") as owner:
        not_json = await owner.post(
            "/v1/webhooks", content=b"{url", headers={"content-type": "application/json"}
        )
        assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
        form = await owner.post("/v1/webhooks", data={"url": "http://127.0.0.1:9/"})
        assert form.status_code == 415
        unknown = await owner.get("/v1/webhooks", params={"project": "shop", "colour": "red"})
        assert unknown.status_code == 400 and "colour" in unknown.json()["error"]


async def test_only_people_with_the_alerts_section_see_and_change_webhooks(site: Site) -> None:
    async with await site.as_("owner@example.com") as owner:
        made = await owner.post("/v1/webhooks", json=GOOD)
        assert made.status_code == 201
        hook = made.json()["webhook"]["id"]
    async with await site.as_("owner@example.com", csrf=False) as no_csrf:
        refused = await no_csrf.post("/v1/webhooks", json=GOOD)
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
        assert (await no_csrf.delete(f"/v1/webhooks/{hook}")).status_code == 403
    async with await site.as_("viewer@example.com") as viewer:
        assert (await viewer.get("/v1/webhooks")).status_code == 200
        assert (await viewer.get(f"/v1/webhooks/{hook}/attempts")).status_code == 200
        for attempt in (
            viewer.post("/v1/webhooks", json=GOOD),
            viewer.post(f"/v1/webhooks/{hook}/rotate-secret"),
            viewer.delete(f"/v1/webhooks/{hook}"),
        ):
            answer = await attempt
            assert answer.status_code == 403 and "needs edit access" in answer.json()["error"]
    async with await site.as_("scoped@example.com") as scoped:
        assert (await scoped.get("/v1/webhooks")).status_code == 200
        answer = await scoped.post("/v1/webhooks", json=GOOD)
        assert answer.status_code == 403 and "every channel" in answer.json()["error"]
    async with await site.as_("reader@example.com") as reader:
        assert (await reader.get("/v1/webhooks")).status_code == 403
    async with httpx.AsyncClient(base_url=site.gateway.url) as anyone:
        assert (await anyone.get("/v1/webhooks?project=shop")).status_code == 401
        with_key = await anyone.get(
            "/v1/webhooks?project=shop",
            headers={"Authorization": f"Bearer {site.gateway.server_key}"},
        )
        assert with_key.status_code == 403
    async with await site.as_("owner@example.com") as owner:
        assert [w["id"] for w in (await owner.get("/v1/webhooks")).json()["webhooks"]] == [hook]


async def test_the_delivery_log_pages_and_a_redelivery_sends_the_same_id(
    site: Site, receiver: Receiver
) -> None:
    async with await site.as_("owner@example.com") as owner:
        made = await owner.post(
            "/v1/webhooks", json={"url": receiver.url, "event_types": ["response.created"]}
        )
        hook = made.json()["webhook"]["id"]
        message = await site.enqueue({"n": 1})
        await delivered(site, receiver, 1)
        log = await owner.get(f"/v1/webhooks/{hook}/attempts")
        assert log.status_code == 200
        [attempt] = log.json()["attempts"]
        assert attempt["message"] == message and attempt["status"] == 200
        assert attempt["state"] == "delivered" and attempt["event_type"] == "response.created"
        assert log.json()["next"] is None
        again = await owner.post(f"/v1/webhooks/{hook}/redeliver", json={"message": message})
        assert again.status_code == 202, again.text
        assert again.json() == {"message": message, "webhook": hook, "state": "pending"}
        await delivered(site, receiver, 2)
        assert receiver.ids() == [message, message]
        first = await owner.get(
            f"/v1/webhooks/{hook}/attempts", params={"project": "shop", "limit": 1}
        )
        [newest] = first.json()["attempts"]
        following = first.json()["next"]
        assert following == newest["id"] and newest["id"] > attempt["id"]
        rest = await owner.get(
            f"/v1/webhooks/{hook}/attempts",
            params={"project": "shop", "limit": 1, "before": following},
        )
        assert [a["id"] for a in rest.json()["attempts"]] == [attempt["id"]]
        unknown = await owner.post(f"/v1/webhooks/{hook}/redeliver", json={"message": "msg_x"})
        assert unknown.status_code == 404 and "msg_x" in unknown.json()["error"]
        no_message = await owner.post(f"/v1/webhooks/{hook}/redeliver", json={})
        assert no_message.status_code == 422 and "`message`" in no_message.json()["error"]
        bad_limit = await owner.get(
            f"/v1/webhooks/{hook}/attempts", params={"project": "shop", "limit": 0}
        )
        assert bad_limit.status_code == 400 and "limit" in bad_limit.json()["error"]
        elsewhere = await owner.get("/v1/webhooks/ep_none/attempts")
        assert elsewhere.status_code == 404
