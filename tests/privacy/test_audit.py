"""The audit log: one record per audited action, no secret in any, read by owners only.

A real gateway on loopback with project ``shop``, its people and its keys. Every audited action
is done the way people and operators do it (the login form, the API with a key or a session,
the dashboard's forms, the command line) and the rows of ``audit_log`` written meanwhile are
read straight from the control plane: exactly one, naming the action, the actor and what it
was done to. The keys, passwords and webhook secrets that passed through are then looked for
in every stored row. Reading the log (the API, its exports, the page) is an owner's alone:
an admin, a group scoped to the project, a key and a stranger are refused. The page is checked
by axe in English on a desktop and in English and Arabic at 375 px.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.browser import assert_accessible, screenshot
from tests.gateway.conftest import command
from tests.gateway.pages.dashboard_world import PASSWORD, browser_login, form_token, login
from tests.gateway.pages.test_followups_journey import DESKTOP, PHONE, fits
from tests.gateway.pages.test_followups_pages import EMAILS, Loop, event, post, start_loop
from tests.gateway.pg import pg_schema_url
from tests.integrations.receivers import LOOPBACK
from voxloop_core import DAY_MS
from voxloop_gateway.control import schema
from voxloop_gateway.control.access import Scope
from voxloop_gateway.control.db import Database
from voxloop_gateway.control.people import People
from voxloop_gateway.control.tables import audit_log
from voxloop_gateway.privacy import audit

__all__ = ["command", "pg_schema_url"]  # fixtures

OWNER = EMAILS["owner"]
PAGE = "/app/shop/webhooks"
ADMIN = "adam@shop.example"
SCOPED = "sara@shop.example"
Row = dict[str, Any]


@dataclass
class World:
    """The gateway, and what passed through it that must never be in the log."""

    loop: Loop
    secrets: list[str]

    @property
    def url(self) -> str:
        return self.loop.url

    @property
    def db(self) -> Database:
        return self.loop.registry.db

    def rows(self) -> list[Row]:
        async def read(conn: AsyncConnection) -> list[Row]:
            found = await conn.execute(select(audit_log).order_by(audit_log.c.id))
            return [dict(row._mapping) for row in found]

        return self.db.run(read)

    def last_id(self) -> int:
        rows = self.rows()
        return rows[-1]["id"] if rows else 0

    def did(self, act: Callable[[], Any]) -> list[Row]:
        """The rows written while ``act()`` ran, oldest first."""
        mark = self.last_id()
        act()
        return [row for row in self.rows() if row["id"] > mark]

    def one(self, action: str, act: Callable[[], Any]) -> Row:
        """``act()``'s one record, which must be ``action``'s."""
        written = self.did(act)
        assert [row["action"] for row in written] == [action], written
        row = written[0]
        row["detail"] = json.loads(row["detail"])
        return row


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    loop = start_loop(tmp_path_factory.mktemp("audit"), webhook_allow=LOOPBACK)
    people = People(loop.registry.db)
    people.create_user(ADMIN, ["admin"], PASSWORD)
    people.create_group("shop-auditors", {"audit": "edit", "dashboard": "view"}, [Scope("shop")])
    people.create_user(SCOPED, ["shop-auditors"], PASSWORD)
    try:
        post(loop, event("web", "checkout", "nps", 3, "Checkout failed.", "r-1"))
        yield World(loop, [loop.gateway.server_key, loop.gateway.site_key, PASSWORD])
    finally:
        loop.gateway.stop()
        loop.registry.close()


def csrf_of(client: httpx.Client) -> str:
    """The session's CSRF token, as every dashboard page carries it."""
    return form_token(client.get("/app/shop/webhooks").text)


# --- the one door: record(), on SQLite and PostgreSQL ---------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def control(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A control plane at the current schema, alone."""
    where = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    db = Database(tmp_path, where)
    schema.migrate(db)
    yield db
    db.close()


def test_a_record_keeps_no_secret_whatever_the_caller_gives(control: Database) -> None:
    db = control
    key = "sk_" + "A1b2C3d4" * 5
    hook = "whsec_" + "Zm9vYmFy" * 5
    asyncio.run(
        audit.record(
            db,
            actor=f"key:{key}",
            action="test.secret",
            target=f"pasted {key} here",
            detail={"password": "hunter2", "note": f"{hook} and {key}", "list": [key]},
            address="192.0.2.1",
            now_ms=1_000,
        )
    )

    async def read(conn: AsyncConnection) -> list[Row]:
        return [dict(r._mapping) for r in await conn.execute(select(audit_log))]

    (row,) = db.run(read)
    stored = json.dumps(row)
    for secret in (key, hook, "hunter2", "Zm9vYmFy"):
        assert secret not in stored, stored
    assert row["actor"] == f"key:{key[:11]}…"
    assert json.loads(row["detail"]) == {
        "list": [f"{key[:11]}…"],
        "note": f"whsec_… and {key[:11]}…",
        "password": "[hidden]",
    }
    with pytest.raises(ValueError, match="audit actor"):
        asyncio.run(audit.record(db, actor="somebody", action="test"))


def test_a_record_in_a_transaction_commits_with_it_or_not_at_all(control: Database) -> None:
    db = control

    async def change(conn: AsyncConnection, fail: bool) -> None:
        await audit.record_in(conn, actor="cli:operator", action="test.change", target="t")
        if fail:
            raise RuntimeError("the change failed after its record was written")

    with pytest.raises(RuntimeError):
        db.run(lambda conn: change(conn, True), write=True)
    db.run(lambda conn: change(conn, False), write=True)

    async def read(conn: AsyncConnection) -> list[str]:
        return list((await conn.execute(select(audit_log.c.action))).scalars())

    assert db.run(read) == ["test.change"]


def test_old_records_expire_in_bounded_batches_on_a_controlled_clock(control: Database) -> None:
    db = control
    day = DAY_MS
    now = 1_000 * day

    async def fill() -> None:
        for age in (1, 29, 30, 31, 400):
            await audit.record(db, actor="system:test", action="tick", now_ms=now - age * day)

    asyncio.run(fill())
    assert asyncio.run(audit.expire_audit(db, now, days=30)) == 2  # 31 and 400 days old

    async def ages(conn: AsyncConnection) -> list[int]:
        found = await conn.execute(select(audit_log.c.at_ms).order_by(audit_log.c.at_ms))
        return [(now - at) // day for (at,) in found]

    assert db.run(ages) == [30, 29, 1]
    assert asyncio.run(audit.expire_audit(db, now, days=30)) == 0
    # two days later, a batch a record: three transactions, the last one finds none
    assert asyncio.run(audit.expire_audit(db, now + 2 * day, days=30, batch=1)) == 2
    assert db.run(ages) == [1]


def test_filters_and_pages_read_the_same_rows_on_both_databases(control: Database) -> None:
    async def fill() -> None:
        rows = [
            ("user:ana@x.example", "key.create", "shop", 1_000),
            ("user:ana@x.example", "key.revoke", "shop", 2_000),
            ("cli:operator", "keyring.open", None, 3_000),  # not under "key"
            ("cli:operator", "key_x", "cafe", 4_000),  # "_" is no wildcard
            ("system:retention", "erasure", "cafe", 5_000),
        ]
        for actor, action, project, at in rows:
            await audit.record(control, actor=actor, action=action, project=project, now_ms=at)

    asyncio.run(fill())

    def kept(**given: Any) -> list[str]:
        rows, _ = asyncio.run(audit.read_page(control, audit.AuditFilter(**given)))
        return [e.action for e in rows]

    assert kept() == ["erasure", "key_x", "keyring.open", "key.revoke", "key.create"]
    assert kept(action="key") == ["key.revoke", "key.create"]
    assert kept(action="key.create") == ["key.create"]
    assert kept(actor="cli:operator") == ["key_x", "keyring.open"]
    assert kept(project="cafe") == ["erasure", "key_x"]
    assert kept(start_ms=2_000, end_ms=4_000) == ["keyring.open", "key.revoke"]
    first, following = asyncio.run(audit.read_page(control, audit.AuditFilter(), limit=2))
    assert [e.action for e in first] == ["erasure", "key_x"] and following is not None
    rest, last = asyncio.run(
        audit.read_page(control, audit.AuditFilter(), before=following, limit=3)
    )
    assert [e.action for e in rest] == ["keyring.open", "key.revoke", "key.create"]
    assert last is None


# --- one record per audited action --------------------------------------------------------------


def test_logins_are_recorded_refused_or_not_naming_only_real_accounts(world: World) -> None:
    def log_in(email: str, password: str) -> httpx.Response:
        with httpx.Client(base_url=world.url, timeout=30) as client:
            page = client.get("/app/login")
            data = {"email": email, "password": password, "csrf": form_token(page.text)}
            return client.post("/app/login", data=data)

    row = world.one("login", lambda: log_in(OWNER, PASSWORD))
    assert row["actor"] == f"user:{OWNER}" and row["address"] == "127.0.0.1"
    row = world.one("login.failed", lambda: log_in(OWNER.upper(), "not the password"))
    assert row["actor"] == f"user:{OWNER}"
    assert row["detail"] == {"reason": "wrong email or password"}
    # A password typed in the email field is not an account: it is never kept.
    typed = "my-secret-passphrase"
    row = world.one("login.failed", lambda: log_in(typed, "x"))
    assert row["actor"] == "user:unknown"
    assert typed not in json.dumps(world.rows())


def test_a_response_read_by_its_ref_is_recorded_by_key_and_by_person(world: World) -> None:
    server = world.loop.gateway.server_key
    with world.loop.gateway.client(server) as client:
        ref = client.get("/v1/responses").json()["responses"][0]["ref"]
        row = world.one("response.read", lambda: client.get(f"/v1/responses/{ref}"))
    assert row["actor"] == f"key:{server[:11]}" and row["target"] == ref
    assert row["project"] == "shop"
    with login(world.url, OWNER) as person:
        page = f"/app/shop/responses/{ref}"
        row = world.one("response.read", lambda: person.get(page))
        assert row["actor"] == f"user:{OWNER}" and row["target"] == ref
        # a ref that doesn't exist reads nothing, so records nothing
        assert world.did(lambda: person.get("/app/shop/responses/web.00")) == []


def test_an_export_is_recorded_with_its_filters(world: World) -> None:
    with world.loop.gateway.client(world.loop.gateway.server_key) as client:
        params = {"channel": "web", "metric": "nps", "score_max": "6", "bom": "true"}
        row = world.one("export", lambda: client.get("/v1/exports/responses.csv", params=params))
    assert row["project"] == "shop"
    assert row["detail"] == {
        "format": "csv",
        "channels": ["web"],
        "filters": {"channel": "web", "metric": "nps", "score_max": "6"},
    }


def test_webhook_and_rule_changes_are_recorded_without_their_secrets(world: World) -> None:
    with login(world.url, OWNER) as client:
        client.headers["x-csrf-token"] = csrf_of(client)
        client.params = httpx.QueryParams({"project": "shop"})
        url = "http://127.0.0.1:9/services/T0/B0/tokeninthepath?token=abc"
        body = {"url": url, "event_types": ["response.created"]}
        made: dict[str, Any] = {}

        def add() -> None:
            answer = client.post("/v1/webhooks", json=body)
            assert answer.status_code == 201, answer.text
            made.update(answer.json())

        row = world.one("webhook.create", add)
        endpoint = made["webhook"]["id"]
        world.secrets += [made["secret"], "tokeninthepath", "token=abc"]
        assert row["target"] == endpoint and row["actor"] == f"user:{OWNER}"
        assert row["detail"] == {"host": "127.0.0.1", "event_types": ["response.created"]}

        def rotate() -> None:
            answer = client.post(f"/v1/webhooks/{endpoint}/rotate-secret")
            assert answer.status_code == 200, answer.text
            world.secrets.append(answer.json()["secret"])

        assert world.one("webhook.rotate", rotate)["target"] == endpoint
        enabled = world.one(
            "webhook.enable", lambda: client.post(f"/v1/webhooks/{endpoint}/enable")
        )
        assert enabled["target"] == endpoint
        gone = world.one("webhook.remove", lambda: client.delete(f"/v1/webhooks/{endpoint}"))
        assert gone["target"] == endpoint

        rule: dict[str, Any] = {}

        def create_rule() -> None:
            answer = client.post("/v1/rules", json={"name": "Detractors", "score_max": 6})
            assert answer.status_code == 201, answer.text
            rule.update(answer.json())

        row = world.one("rule.create", create_rule)
        assert row["target"] == rule["id"] and row["detail"]["name"] == "Detractors"
        row = world.one(
            "rule.change", lambda: client.patch(f"/v1/rules/{rule['id']}", json={"score_max": 5})
        )
        assert row["detail"] == {"name": "Detractors", "changed": ["score_max"]}
        world.one("rule.delete", lambda: client.delete(f"/v1/rules/{rule['id']}"))

        drop = {"name": "NPS", "kind": "score_drop", "metric": "nps", "recipients": ["o@x.example"]}
        alert: dict[str, Any] = {}

        def create_alert() -> None:
            answer = client.post("/v1/alert-rules", json=drop)
            assert answer.status_code == 201, answer.text
            alert.update(answer.json())

        assert world.one("alert_rule.create", create_alert)["target"] == alert["id"]
        one = f"/v1/alert-rules/{alert['id']}"
        world.one("alert_rule.change", lambda: client.patch(one, json={"name": "NPS drop"}))
        world.one("alert_rule.delete", lambda: client.delete(one))
        # a refused change records nothing
        assert world.did(lambda: client.post("/v1/rules", json={"name": ""})) == []


def test_the_webhooks_page_records_its_changes_too(world: World) -> None:
    with login(world.url, OWNER) as client:
        page = client.get("/app/shop/webhooks").text
        data = {
            "csrf": form_token(page),
            "action": "add",
            "url": "http://127.0.0.1:9/crm/hook",
            "type.response.created": "on",
        }
        answers: list[httpx.Response] = []
        row = world.one("webhook.create", lambda: answers.append(client.post(PAGE, data=data)))
        found = re.search(r'value="(whsec_[^"]+)"', answers[0].text)
        assert found
        world.secrets.append(found[1])
        assert row["detail"]["host"] == "127.0.0.1"
        endpoint = row["target"]
        remove = {"csrf": data["csrf"], "action": "remove", "endpoint": endpoint}
        assert (
            world.one("webhook.remove", lambda: client.post(PAGE, data=remove))["target"]
            == endpoint
        )


def test_the_command_line_records_keys_users_groups_webhooks_and_exports(
    world: World, command: Any
) -> None:
    data = str(world.loop.gateway.data_dir)

    def run(*args: str) -> str:
        done = command("--data-dir", data, *args, env={"VOXLOOP_WEBHOOK_ALLOW": "127.0.0.1"})
        assert done.returncode == 0, done.stderr
        return str(done.stdout)

    made: list[str] = []
    row = world.one(
        "key.create",
        lambda: made.append(run("keys", "create", "shop", "--kind", "read", "--channel", "web")),
    )
    key = made[0].strip()
    world.secrets.append(key)
    assert row["actor"] == "cli:operator" and row["target"] == key[:11]
    assert row["detail"] == {"kind": "read", "channels": ["web"], "origins": [], "forms": None}
    assert world.one("key.revoke", lambda: run("keys", "revoke", key))["target"] == key[:11]

    email = "new@shop.example"
    passwords: list[str] = []
    row = world.one(
        "user.create", lambda: passwords.append(run("users", "create", email, "--group", "admin"))
    )
    assert row["target"] == email and row["detail"] == {"groups": ["admin"]}
    row = world.one(
        "user.reset_password", lambda: passwords.append(run("users", "reset-password", email))
    )
    world.secrets += [p.strip() for p in passwords]
    world.one("user.disable", lambda: run("users", "disable", email))

    row = world.one(
        "group.create",
        lambda: run(
            "groups",
            "create",
            "web-team",
            "--project",
            "shop",
            "--channel",
            "web",
            "--level",
            "responses=view",
        ),
    )
    assert row["detail"] == {
        "levels": {"responses": "view"},
        "scope": {"channels": ["web"], "forms": None},
    }
    row = world.one("group.grant", lambda: run("groups", "grant", "web-team", "exports", "view"))
    assert row["detail"] == {"section": "exports", "level": "view"}
    world.one(
        "group.scope", lambda: run("groups", "scope", "web-team", "shop", "--form", "checkout")
    )
    world.one("group.add_user", lambda: run("groups", "add-user", "web-team", SCOPED))
    world.one("group.remove_user", lambda: run("groups", "remove-user", "web-team", SCOPED))

    secret: list[str] = []
    row = world.one(
        "webhook.create",
        lambda: secret.append(
            run(
                "webhooks",
                "add",
                "shop",
                "http://127.0.0.1:9/in?key=abc",
                "--event",
                "response.created",
            )
        ),
    )
    world.secrets += [secret[0].strip(), "key=abc"]
    endpoint = row["target"]
    world.one("webhook.rotate", lambda: secret.append(run("webhooks", "rotate-secret", endpoint)))
    world.secrets.append(secret[1].strip())
    world.one("webhook.remove", lambda: run("webhooks", "remove", endpoint))

    row = world.one(
        "export", lambda: run("export", "shop", "--format", "ndjson", "--metric", "nps")
    )
    assert row["detail"] == {
        "format": "ndjson",
        "channels": ["app", "email", "kiosk", "web"],
        "filters": {"metric": "nps"},
    }


def test_no_secret_ever_reaches_the_log(world: World) -> None:
    # after every test above: the keys, passwords and signing secrets they saw
    stored = json.dumps(world.rows(), ensure_ascii=False)
    for secret in world.secrets:
        assert secret not in stored, secret


# --- reading the log: owners only ---------------------------------------------------------------


def test_only_owners_read_the_log(world: World) -> None:
    for path in ("/v1/audit", "/v1/audit.csv", "/v1/audit.ndjson", "/app/audit"):
        for email in (ADMIN, SCOPED, EMAILS["nils"]):
            with login(world.url, email) as client:
                refused = client.get(path)
                assert refused.status_code == 403, (path, email, refused.text)
                assert "audit log is read by owners only" in refused.text
        if path.startswith("/v1/"):
            with world.loop.gateway.client(world.loop.gateway.server_key) as keyed:
                assert keyed.get(path).status_code == 403
        with httpx.Client(base_url=world.url, timeout=30) as stranger:
            assert stranger.get(path).status_code in (401, 303)
        with login(world.url, OWNER) as client:
            assert client.get(path).status_code == 200
    with login(world.url, ADMIN) as admin:
        assert "/app/audit" not in admin.get("/app/shop/webhooks").text
    with login(world.url, OWNER) as owner:
        assert 'href="/app/audit">Audit log<' in owner.get("/app/shop/webhooks").text


def test_the_api_filters_and_pages_the_log_newest_first(world: World) -> None:
    with login(world.url, OWNER) as client:
        every = client.get("/v1/audit", params={"limit": 500}).json()
        ids = [e["id"] for e in every["entries"]]
        assert ids == sorted(ids, reverse=True) and every["next"] is None
        pages: list[int] = []
        before: int | None = None
        while True:
            params: dict[str, Any] = {"limit": 7} | ({"before": before} if before else {})
            page = client.get("/v1/audit", params=params).json()
            pages += [e["id"] for e in page["entries"]]
            before = page["next"]
            if before is None:
                break
        assert pages == ids

        def kept(**params: Any) -> list[dict[str, Any]]:
            answer = client.get("/v1/audit", params={"limit": 500, **params})
            assert answer.status_code == 200, answer.text
            found: list[dict[str, Any]] = answer.json()["entries"]
            return found

        webhooks = kept(action="webhook")
        assert webhooks and {e["action"].split(".")[0] for e in webhooks} == {"webhook"}
        assert {e["action"] for e in kept(action="webhook.remove")} == {"webhook.remove"}
        assert {e["actor"] for e in kept(actor="cli:operator")} == {"cli:operator"}
        assert {e["project"] for e in kept(project="shop")} == {"shop"}
        first = every["entries"][-1]["at"]
        assert kept(to=first) == []
        assert len(kept(**{"from": first})) == len(ids)
        for params, said in [
            ({"action": "Key Create"}, "action must be"),
            ({"from": "yesterday"}, "from must be an RFC 3339 time"),
            ({"limit": "0"}, "limit must be an integer 1..500"),
            ({"before": "x"}, "before must be an integer"),
            ({"who": "me"}, "unknown query parameter 'who'"),
            ({"project": "Shop!"}, "project must be a project's name"),
        ]:
            refused = client.get("/v1/audit", params=params)
            assert refused.status_code == 400 and said in refused.json()["error"], refused.text


def test_the_exports_stream_what_the_api_lists_and_are_recorded(world: World) -> None:
    asyncio.run(audit.record(world.db, actor="system:test", action="test.formula", target="=1+1"))
    with login(world.url, OWNER) as client:
        listed = client.get("/v1/audit", params={"limit": 500, "action": "test"}).json()
        answer = client.get("/v1/audit.csv", params={"action": "test", "bom": "true"})
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.headers["cache-control"] == "no-store"
        text = answer.content.decode("utf-8")
        assert text.startswith("\ufeffid,at,actor,action,project,target,detail,address\r\n")
        rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
        assert [int(r["id"]) for r in rows] == [e["id"] for e in listed["entries"]]
        assert rows[0]["target"] == "'=1+1"  # neutralised: a spreadsheet shows it as text
        lines = client.get("/v1/audit.ndjson", params={"action": "test"}).text.splitlines()
        assert [json.loads(line) for line in lines] == listed["entries"]
        exports = client.get("/v1/audit", params={"action": "audit.export"}).json()["entries"]
        assert [e["detail"]["format"] for e in exports[:2]] == ["ndjson", "csv"]
        assert exports[1]["detail"]["action"] == "test" and exports[0]["actor"] == f"user:{OWNER}"


# --- the page ---------------------------------------------------------------------------------


def test_the_page_lists_filters_and_speaks_arabic_accessibly(
    world: World, browser: Browser
) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    try:
        browser_login(page, world.url, OWNER)
        page.set_viewport_size(DESKTOP)
        page.goto(f"{world.url}/app/audit")
        expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
        expect(page.locator("#entries > li").first).to_be_visible()
        assert_accessible(page, "audit log, en, desktop")
        screenshot(page, "audit-log-en-desktop")
        page.get_by_label("Action").fill("webhook")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_load_state()
        actions = page.locator("#entries > li").evaluate_all(
            "items => items.map(i => i.dataset.action)"
        )
        assert actions and all(a.startswith("webhook.") for a in actions)
        with page.expect_download() as download:
            page.locator("#export-ndjson").click()
        saved = Path(download.value.path()).read_text(encoding="utf-8")
        assert {json.loads(line)["action"].split(".")[0] for line in saved.splitlines()} == {
            "webhook"
        }
        page.set_viewport_size(PHONE)
        for language in ("en", "ar"):
            page.goto(f"{world.url}/app/audit?lang={language}")
            expect(page.locator("html")).to_have_attribute("lang", language)
            if language == "ar":
                expect(page.locator("html")).to_have_attribute("dir", "rtl")
                expect(page.get_by_role("heading", name="سجل التدقيق", level=1)).to_be_visible()
            fits(page)
            assert_accessible(page, f"audit log, {language}, 375 px")
            screenshot(page, f"audit-log-{language}-375px")
    finally:
        context.close()
