"""Access (GDPR Art. 15): ``GET /v1/respondents/{respondent}`` exports everything held about one
person, their responses on every channel and their follow-up items with notes, within the
asker's scope on the ``privacy`` section; erasing needs ``edit`` and a session's CSRF token."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from voxloop import new_id
from voxloop_gateway.control.access import Scope
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.http.access_log import redacted_path

from ..gateway.conftest import (
    Command,
    command,  # noqa: F401  (the gateway tests' fixture, used here)
    free_port,
)
from .test_erasure import NOW_MS, shop

PASSWORD = "a long and quite unguessable passphrase 9"


def sent() -> list[dict[str, Any]]:
    """ana's answers on web and app (detractors, with comments), bo's on web."""
    made = []
    for n, (channel, person) in enumerate([("web", "ana"), ("app", "ana"), ("web", "bo")] * 3):
        made.append(
            {
                "id": new_id(),
                "channel": channel,
                "form": "checkout",
                "metric": "nps",
                "score": n % 3,
                "respondent": person,
                "comment": f"{person} on {channel}: slow delivery {n}",
                "ts": NOW_MS - (n + 1) * 60_000,
            }
        )
    return made


def sessions(data_dir: Path) -> dict[str, tuple[str, str]]:
    """An owner, a person who may view privacy of channel ``app`` only, one who reads
    responses but has no privacy access, and one who may edit privacy of channel ``app`` only:
    each one's session token and CSRF token."""
    registry = Registry(data_dir)
    try:
        people = People(registry.db)
        app = Scope("shop", frozenset({"app"}))
        people.create_group("app-privacy", {"privacy": "view", "responses": "view"}, [app])
        people.create_group("app-erasers", {"privacy": "edit"}, [app])
        people.create_group("readers", {"responses": "view", "dashboard": "view"}, [Scope("shop")])
        people.create_user("olga@example.com", ["owner"], PASSWORD)
        people.create_user("pia@example.com", ["app-privacy"], PASSWORD)
        people.create_user("rui@example.com", ["readers"], PASSWORD)
        people.create_user("uma@example.com", ["app-erasers"], PASSWORD)

        async def login() -> dict[str, tuple[str, str]]:
            found = {}
            for name in ("olga", "pia", "rui", "uma"):
                token, session = await people.login(f"{name}@example.com", PASSWORD, "127.0.0.1")
                found[name] = (token, session.csrf)
            return found

        return asyncio.run(login())
    finally:
        registry.close()


def as_person(url: str, session: tuple[str, str], csrf: bool = True) -> httpx.Client:
    headers = {"X-CSRF-Token": session[1]} if csrf else {}
    cookies = {"voxloop_session": session[0]}
    return httpx.Client(base_url=url, cookies=cookies, headers=headers, timeout=30)


def test_access_exports_within_the_askers_scope_and_erasure_needs_edit(tmp_path: Path) -> None:
    with shop(tmp_path, "sqlite") as (gateway, _):
        events = sent()
        answer = gateway.post(events)
        assert answer.status_code == 202 and answer.json()["accepted"] == len(events), answer.text
        people = sessions(tmp_path)
        with gateway.client(gateway.server_key) as client:
            deadline = time.monotonic() + 30  # the rules read the stores in the background
            while True:
                held = client.get("/v1/respondents/ana").json()
                if len({item["item"]["channel"] for item in held["followups"]}) == 2:
                    break
                assert time.monotonic() < deadline, "no follow-up items of ana's on both channels"
                time.sleep(0.2)
        web_item = next(i["item"] for i in held["followups"] if i["item"]["channel"] == "web")
        with as_person(gateway.url, people["olga"]) as owner:
            noted = owner.post(
                f"/v1/followups/{web_item['id']}/notes", json={"text": "called her back"}
            )
            assert noted.status_code == 201, noted.text
            whole = owner.get("/v1/respondents/ana")
        assert whole.status_code == 200, whole.text
        body = whole.json()
        mine = [e for e in events if e["respondent"] == "ana"]
        assert sorted(r["id"] for r in body["responses"]) == sorted(e["id"] for e in mine)
        assert {r["comment"] for r in body["responses"]} == {e["comment"] for e in mine}
        assert body["channels"] == ["app", "email", "kiosk", "web"]
        notes = [
            change["detail"]
            for item in body["followups"]
            for change in item["changes"]
            if change["kind"] == "note"
        ]
        assert notes and "called her back" in str(notes)
        assert "ana" not in body["respondent"]  # the pseudonym, never the id

        with as_person(gateway.url, people["pia"]) as scoped:
            part = scoped.get("/v1/respondents/ana")
            assert part.status_code == 200, part.text
            assert part.json()["channels"] == ["app"]
            assert {r["channel"] for r in part.json()["responses"]} == {"app"}
            assert {i["item"]["channel"] for i in part.json()["followups"]} == {"app"}
            refused = scoped.delete("/v1/respondents/ana")  # view only
            assert refused.status_code == 403, refused.text
        with as_person(gateway.url, people["rui"]) as reader:
            assert reader.get("/v1/respondents/ana").status_code == 403
        with as_person(gateway.url, people["uma"]) as partly:
            refused = partly.delete("/v1/respondents/ana")  # an erasure reaches every channel
            assert refused.status_code == 403 and "whole project" in refused.text, refused.text
            refused = partly.post("/v1/erasures", json={"form": "checkout"})
            assert refused.status_code == 403 and "whole project" in refused.text, refused.text
        with as_person(gateway.url, people["olga"], csrf=False) as forgetful:
            refused = forgetful.delete("/v1/respondents/ana")
            assert refused.status_code == 403 and "CSRF" in refused.text

        with as_person(gateway.url, people["olga"]) as owner:
            erased = owner.delete("/v1/respondents/ana")
            assert erased.status_code == 200, erased.text
            assert erased.json()["counts"]["web"] == 3 and erased.json()["counts"]["app"] == 3
            after = owner.get("/v1/respondents/ana").json()
        assert after["responses"] == [] and after["followups"] == []

    with contextlib.closing(sqlite3.connect(tmp_path / "registry.sqlite3")) as db:
        audited = db.execute(
            "SELECT actor, action FROM audit_log WHERE action IN ('respondent.export', 'erasure')"
            " ORDER BY id"
        ).fetchall()
        notes_left = db.execute(
            "SELECT count(*) FROM followup_changes WHERE detail LIKE '%called her back%'"
        ).fetchone()[0]
    assert ("user:olga@example.com", "erasure") in audited
    assert audited.count(("user:pia@example.com", "respondent.export")) == 1
    assert notes_left == 0


def test_an_erasure_blanks_the_webhook_messages_not_yet_delivered(
    tmp_path: Path,
    command: Command,  # noqa: F811  (the gateway tests' fixture)
) -> None:
    loopback = (ipaddress.ip_network("127.0.0.0/8"),)
    with shop(tmp_path, "sqlite", webhook_allow=loopback) as (gateway, _):
        added = command(
            "--data-dir",
            str(tmp_path),
            "webhooks",
            "add",
            "shop",
            f"http://127.0.0.1:{free_port()}/hook",  # nothing listens: deliveries stay pending
            "--event",
            "response.created",
            "--event",
            "followup.created",
            env={"VOXLOOP_WEBHOOK_ALLOW": "127.0.0.0/8"},
        )
        assert added.returncode == 0, added.stderr
        events = sent()
        assert gateway.post(events).json()["accepted"] == len(events)
        deadline = time.monotonic() + 30
        while len(messages(tmp_path, "ana on")) < 6 or not messages(tmp_path, "bo on"):
            assert time.monotonic() < deadline, "the rules wrote no messages of the answers"
            time.sleep(0.2)
        with gateway.client(gateway.server_key) as client:
            assert client.delete("/v1/respondents/ana").status_code == 200
        assert messages(tmp_path, "ana on") == []
        kept = messages(tmp_path, "bo on")
        assert kept and all(state == "pending" for _, state in kept)
        blanked = messages(tmp_path, '"erased":true')
        assert len(blanked) >= 6 and all(state == "failed" for _, state in blanked)


def messages(data_dir: Path, text: str) -> list[tuple[str, str]]:
    """The outbox messages whose payload holds ``text``, with their deliveries' states."""
    with contextlib.closing(sqlite3.connect(data_dir / "registry.sqlite3")) as db:
        found = db.execute(
            "SELECT o.event_type, d.state FROM outbox o JOIN webhook_deliveries d"
            " ON d.message = o.id WHERE instr(o.payload, ?) > 0",
            (text,),
        ).fetchall()
    return [(kind, state) for kind, state in found]


def test_the_access_log_never_shows_whom_an_export_or_erasure_names() -> None:
    for path in ("/v1/respondents/ana@example.com", "/v1/respondents/a/b%0Ac"):
        assert redacted_path(path) == "/v1/respondents/..."
    assert redacted_path("/v1/respondents/ana/responses") == "/v1/respondents/.../responses"
