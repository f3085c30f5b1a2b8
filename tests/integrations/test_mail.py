"""The email outbox sent to a real SMTP server on loopback, on SQLite and PostgreSQL: the messages
parsed and checked (headers, both parts, direction, escaping), retries with one Message-ID
while the server is down or refuses, the backoff and the giving up after a day, leases across
replicas, AUTH, and ``voxloop-gateway mail test``."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.gateway.conftest import Command, command
from tests.gateway.pg import pg_schema_url
from voxloop_core import DAY_MS, HOUR_MS
from voxloop_gateway.control import schema, tables
from voxloop_gateway.control.db import Database
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.integrations import mail, messages, outbox
from voxloop_gateway.integrations.messages import Email
from voxloop_gateway.settings import Settings

from .mailbox import Mailbox, free_port, mailbox

__all__ = ["command", "mailbox", "pg_schema_url"]  # fixtures

#: 2026-11-23T12:00:00Z.
NOW_MS = 1_795_435_200_000
SENDER = "cx@voxloop.example"
BASE_URL = "https://cx.example.com"
HOSTILE = 'Awful <script>alert("x")</script> & slow'


class Outbox:
    """A control plane with project ``shop``, and the emails of its outbox."""

    def __init__(self, data_dir: Path, where: str) -> None:
        self.data_dir, self.where = data_dir, where
        self.registry = Registry(data_dir, where)
        if where != "sqlite":
            schema.migrate(self.registry.db)
        self.registry.create_project("shop")
        self.db = self.registry.db
        self.others: list[Database] = []

    def replica(self) -> Database:
        """Another connection to the same database, as another gateway process has."""
        db = Database(self.data_dir, self.where)
        self.others.append(db)
        return db

    def close(self) -> None:
        for db in self.others:
            db.close()
        self.registry.close()

    async def enqueue(self, email: Email, recipient: str, now_ms: int = NOW_MS) -> str:
        async def write(conn: AsyncConnection) -> str:
            return await outbox.enqueue_email(conn, "shop", recipient, *email, now_ms)

        return await self.db.arun(write, write=True)

    async def rows(self) -> dict[str, dict[str, Any]]:
        async def read(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
            found = await conn.execute(select(tables.email_outbox))
            return {row.id: dict(row._mapping) for row in found}

        return await self.db.arun(read)

    async def row(self, email_id: str) -> dict[str, Any]:
        return (await self.rows())[email_id]


@pytest.fixture(params=["sqlite", "postgresql"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outbox]:
    where = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    made = Outbox(tmp_path, where)
    yield made
    made.close()


def settings_for(port: int, **changes: Any) -> Settings:
    fields: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_tls": "none",
        "mail_from": SENDER,
        "public_url": BASE_URL,
    }
    return Settings(**{**fields, **changes})


def an_alert(lang: str = "en", comment: str | None = HOSTILE) -> Email:
    return messages.alert_email(
        lang,
        project="shop",
        rule="Detractors",
        channel="web",
        form="checkout",
        metric="nps",
        score=3,
        comment=comment,
        at_ms=NOW_MS - HOUR_MS,
        respondent="r_7f3a",
        ref="web.0123abcd",
        base_url=BASE_URL,
    )


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain text and the HTML of a ``multipart/alternative`` message, checked as such."""
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert text_part.get_content_charset() == html_part.get_content_charset() == "utf-8"
    text, html = text_part.get_content(), html_part.get_content()
    assert isinstance(text, str) and isinstance(html, str)
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")  # lines end in CRLF on the wire


# --- what arrives ---------------------------------------------------------------------------


async def test_an_alert_arrives_as_plain_text_and_html_with_a_message_id_of_its_own(
    box: Outbox, mailbox: Mailbox
) -> None:
    email_id = await box.enqueue(an_alert(), "ana@example.com")
    sent = await mail.send_due(box.db, settings_for(mailbox.port), "replica-a", NOW_MS)
    assert sent == 1
    (message,) = mailbox.messages
    assert mailbox.envelopes == [(SENDER, ["ana@example.com"])]
    assert message["Subject"] == "[shop] Alert “Detractors”: NPS 3 in Web"
    assert message["From"] == SENDER
    assert message["To"] == "ana@example.com"
    assert message["Message-ID"] == f"<{email_id}@voxloop.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert parsedate_to_datetime(message["Date"]).timestamp() * 1000 == NOW_MS
    text, html = parts(message)
    assert text.splitlines() == [
        "voxloop · shop",
        "",
        "Alert: Detractors",
        "",
        "A response matched the alert rule “Detractors”.",
        "",
        "Project: shop",
        "Rule: Detractors",
        "Channel: Web",
        "Form: checkout",
        "Metric: NPS",
        "Score: 3",
        "Received: 23 Nov 2026, 11:00",
        "Respondent: r_7f3a",
        "",
        "Comment:",
        f"> {HOSTILE}",
        "",
        f"See the response: {BASE_URL}/app/shop/responses/web.0123abcd?lang=en",
        "",
        "-- ",
        f"Sent by voxloop from {BASE_URL}. Times are in UTC.",
    ]
    assert '<html lang="en" dir="ltr">' in html
    assert "<script>" not in html
    assert "Awful &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; slow" in html
    assert f'href="{BASE_URL}/app/shop/responses/web.0123abcd?lang=en"' in html
    row = await box.row(email_id)
    assert (row["state"], row["attempts"], row["done_ms"]) == ("sent", 1, NOW_MS)
    assert row["error"] is None and row["lease_ms"] is None


@pytest.mark.parametrize(
    ("lang", "direction", "subject"),
    [
        ("en", "ltr", "[shop] Alert “Detractors”: NPS 3 in Web"),
        ("ar", "rtl", "[shop] تنبيه «Detractors»: صافي نقاط الترويج (NPS) ٣ في الويب"),
        ("fa", "rtl", "[shop] هشدار «Detractors»: خالص امتیاز ترویج (NPS) ۳ در وب"),
        ("id", "ltr", "[shop] Peringatan “Detractors”: NPS 3 di Web"),
    ],
    ids=["en", "ar", "fa", "id"],
)
async def test_each_language_has_its_words_digits_and_direction(
    tmp_path: Path, mailbox: Mailbox, lang: str, direction: str, subject: str
) -> None:
    box = Outbox(tmp_path, "sqlite")
    try:
        await box.enqueue(an_alert(lang), "ana@example.com")
        assert await mail.send_due(box.db, settings_for(mailbox.port), "a", NOW_MS) == 1
    finally:
        box.close()
    (message,) = mailbox.messages
    assert message["Subject"] == subject
    text, html = parts(message)
    assert f'<html lang="{lang}" dir="{direction}">' in html
    assert f'<div lang="{lang}" dir="{direction}"' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert f"> {HOSTILE}" in text
    assert f"?lang={lang}" in text


async def test_a_multi_line_comment_stays_quoted_line_by_line(
    tmp_path: Path, mailbox: Mailbox
) -> None:
    box = Outbox(tmp_path, "sqlite")
    try:
        await box.enqueue(an_alert(comment="first line\n\nthird <b>line</b>"), "a@example.com")
        assert await mail.send_due(box.db, settings_for(mailbox.port), "a", NOW_MS) == 1
    finally:
        box.close()
    text, html = parts(mailbox.messages[0])
    assert "> first line\n> \n> third <b>line</b>\n" in text
    assert "first line\n\nthird &lt;b&gt;line&lt;/b&gt;</blockquote>" in html


async def test_a_breach_escalation_and_an_aggregate_alert_arrive_whole(
    tmp_path: Path, mailbox: Mailbox
) -> None:
    breach = messages.breach_email(
        "en",
        project="shop",
        item="fu_1",
        rule="Detractors",
        sla_hours=48,
        channel="web",
        form="checkout",
        metric="nps",
        score=2,
        excerpt=HOSTILE,
        status="assigned",
        assignee="sam@example.com",
        created_ms=NOW_MS - 48 * HOUR_MS,
        due_ms=NOW_MS,
        base_url=BASE_URL,
    )
    drop = messages.aggregate_email(
        "ar",
        project="shop",
        rule="CSAT <falling>",
        kind="score_drop",
        metric="csat",
        channel="app",
        form=None,
        period="day",
        start_ms=NOW_MS - 12 * HOUR_MS,
        score=61.5,
        count=52,
        previous_score=80.0,
        previous_count=40,
        base_url=BASE_URL,
    )
    box = Outbox(tmp_path, "sqlite")
    try:
        await box.enqueue(breach, "lead@example.com")
        await box.enqueue(drop, "ops@example.com")
        assert await mail.send_due(box.db, settings_for(mailbox.port), "a", NOW_MS) == 2
    finally:
        box.close()
    found = {str(m["To"]): m for m in mailbox.messages}
    escalation = found["lead@example.com"]
    assert escalation["Subject"] == "[shop] Follow-up overdue: NPS 2 in Web"
    text, html = parts(escalation)
    assert text.splitlines() == [
        "voxloop · shop",
        "",
        "A follow-up is overdue",
        "",
        "Nobody acted on this follow-up within 48 hours (rule “Detractors”). You receive this"
        " as the rule's escalation contact.",
        "",
        "Project: shop",
        "Channel: Web",
        "Form: checkout",
        "Metric: NPS",
        "Score: 2",
        "Opened: 21 Nov 2026, 12:00",
        "Due: 23 Nov 2026, 12:00",
        "Status: Assigned",
        "Assignee: sam@example.com",
        "",
        "Comment:",
        f"> {HOSTILE}",
        "",
        f"Open the follow-up: {BASE_URL}/app/shop/followups/fu_1?lang=en",
        "",
        "-- ",
        f"Sent by voxloop from {BASE_URL}. Times are in UTC.",
    ]
    assert "<script>" not in html and "&lt;script&gt;" in html
    alert = found["ops@example.com"]
    assert alert["Subject"] == "[shop] تنبيه «CSAT <falling>»: انخفض رضا العملاء (CSAT) ٪ إلى ٦١٫٥"
    text, html = parts(alert)
    assert '<html lang="ar" dir="rtl">' in html
    assert "CSAT &lt;falling&gt;" in html and "<falling>" not in html
    assert "انخفض رضا العملاء (CSAT) ٪ إلى ما دون مجال الثقة ٩٥٪ مقارنةً مع اليوم السابق." in text
    assert "القناة: التطبيق\nالنموذج: الكل\n" in text
    assert "هذه الفترة\nبداية الفترة: ٢٣ نوفمبر ٢٠٢٦، ٠٠:٠٠\nالدرجة: ٦١٫٥\nالإجابات: ٥٢\n" in text
    assert (
        "الفترة السابقة\nبداية الفترة: ٢٢ نوفمبر ٢٠٢٦، ٠٠:٠٠\nالدرجة: ٨٠٫٠\nالإجابات: ٤٠\n" in text
    )
    assert f"{BASE_URL}/app/shop/?metric=csat&lang=ar" in text


# --- retries --------------------------------------------------------------------------------


async def test_a_server_down_then_back_gets_the_email_with_its_one_message_id(
    box: Outbox, tmp_path: Path
) -> None:
    port = free_port()
    settings = settings_for(port)
    email_id = await box.enqueue(an_alert(), "ana@example.com")
    assert await mail.send_due(box.db, settings, "a", NOW_MS) == 0
    row = await box.row(email_id)
    assert (row["state"], row["attempts"], row["lease_ms"]) == ("pending", 1, None)
    assert row["error"].startswith(f"127.0.0.1:{port}: SMTPConnectError")
    assert NOW_MS + 15_000 <= row["next_ms"] <= NOW_MS + 30_000
    back = Mailbox(port)
    back.start()
    try:
        assert await mail.send_due(box.db, settings, "a", row["next_ms"] - 1) == 0  # not due
        assert back.messages == []
        assert await mail.send_due(box.db, settings, "a", row["next_ms"]) == 1
    finally:
        back.stop()
    assert back.message_ids == [f"<{email_id}@voxloop.example>"]
    row = await box.row(email_id)
    assert (row["state"], row["attempts"], row["done_ms"]) == ("sent", 2, row["next_ms"])


async def test_an_attempt_refused_at_data_and_its_retry_carry_the_same_message_id(
    box: Outbox, mailbox: Mailbox
) -> None:
    settings = settings_for(mailbox.port)
    email_id = await box.enqueue(an_alert(), "ana@example.com")
    mailbox.refuse_data = 1
    assert await mail.send_due(box.db, settings, "a", NOW_MS) == 0
    row = await box.row(email_id)
    assert row["state"] == "pending" and row["attempts"] == 1
    assert "451" in row["error"] and "try again later" in row["error"]
    assert await mail.send_due(box.db, settings, "a", row["next_ms"]) == 1
    expected = f"<{email_id}@voxloop.example>"
    assert mailbox.seen == [expected, expected]
    assert mailbox.message_ids == [expected]


def test_the_backoff_doubles_up_to_an_hour_with_jitter_of_up_to_half() -> None:
    for attempts in range(1, 40):
        base = min(30_000 * 2 ** (attempts - 1), HOUR_MS)
        delays = {mail.retry_delay_ms(attempts) for _ in range(200)}
        assert all(base // 2 <= d <= base for d in delays), (attempts, sorted(delays)[:3])
        assert len(delays) > 1  # jitter


async def test_an_email_is_retried_for_a_day_then_failed(box: Outbox) -> None:
    settings = settings_for(free_port())  # nothing ever listens there
    email_id = await box.enqueue(an_alert(), "ana@example.com")
    now, attempts, tried_at = NOW_MS, 0, []
    while True:
        assert await mail.send_due(box.db, settings, "a", now) == 0
        attempts += 1
        tried_at.append(now)
        row = await box.row(email_id)
        assert row["attempts"] == attempts
        if row["state"] != "pending":
            break
        base = min(30_000 * 2 ** (attempts - 1), HOUR_MS)
        assert now + base // 2 <= row["next_ms"] <= now + base
        now = row["next_ms"]
    assert row["state"] == "failed" and row["done_ms"] == now
    assert tried_at[-2] < NOW_MS + DAY_MS <= tried_at[-1]
    assert "SMTPConnectError" in row["error"]
    assert 30 <= attempts <= 45  # a day of retries, an hour apart at most
    assert await mail.send_due(box.db, settings, "a", now + DAY_MS) == 0  # never again


async def test_a_recipient_the_server_refuses_for_good_fails_at_once(
    box: Outbox, mailbox: Mailbox
) -> None:
    mailbox.refuse_rcpt = {"gone@example.com"}
    gone = await box.enqueue(an_alert(), "gone@example.com")
    kept = await box.enqueue(an_alert(), "ana@example.com")
    assert await mail.send_due(box.db, settings_for(mailbox.port), "a", NOW_MS) == 1
    rows = await box.rows()
    assert (rows[gone]["state"], rows[gone]["attempts"], rows[gone]["done_ms"]) == (
        "failed",
        1,
        NOW_MS,
    )
    assert "550" in rows[gone]["error"] and "no such mailbox" in rows[gone]["error"]
    assert rows[kept]["state"] == "sent"
    assert mailbox.message_ids == [f"<{kept}@voxloop.example>"]


async def test_a_recipient_no_header_can_carry_fails_at_once(box: Outbox, mailbox: Mailbox) -> None:
    bad = await box.enqueue(an_alert(), "ana@example.com\r\nBcc: eve@example.com")
    assert await mail.send_due(box.db, settings_for(mailbox.port), "a", NOW_MS) == 0
    row = await box.row(bad)
    assert row["state"] == "failed" and row["error"].startswith("the email can't be written")
    assert mailbox.seen == []


async def test_without_an_smtp_host_emails_wait_and_one_warning_says_why(
    box: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    email_id = await box.enqueue(an_alert(), "ana@example.com")
    with caplog.at_level(logging.WARNING, logger=mail.__name__):
        for later in (0, HOUR_MS, DAY_MS):
            assert await mail.send_due(box.db, Settings(), "a", NOW_MS + later) == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == mail.__name__]
    assert warnings == [
        "no SMTP server is set (smtp_host): alert, breach and digest emails wait in the outbox"
        " until one is"
    ]
    row = await box.row(email_id)
    assert (row["state"], row["attempts"], row["lease_ms"], row["error"]) == (
        "pending",
        0,
        None,
        None,
    )


# --- once across replicas -------------------------------------------------------------------


async def test_two_replicas_send_each_email_once(box: Outbox, mailbox: Mailbox) -> None:
    settings = settings_for(mailbox.port)
    ids = [await box.enqueue(an_alert(), f"user{n}@example.com") for n in range(25)]
    first, second = box.db, box.replica()
    rounds = 0
    while any(row["state"] == "pending" for row in (await box.rows()).values()):
        rounds += 1
        assert rounds <= 3
        await asyncio.gather(
            mail.send_due(first, settings, "replica-a", NOW_MS),
            mail.send_due(second, settings, "replica-b", NOW_MS),
        )
    assert sorted(mailbox.message_ids) == sorted(f"<{i}@voxloop.example>" for i in ids)
    assert sorted(mailbox.seen) == sorted(mailbox.message_ids)  # none twice
    assert {row["attempts"] for row in (await box.rows()).values()} == {1}


async def test_a_batch_held_by_a_replica_that_died_is_sent_once_its_lease_runs_out(
    box: Outbox, mailbox: Mailbox
) -> None:
    email_id = await box.enqueue(an_alert(), "ana@example.com")

    async def hold(conn: AsyncConnection) -> None:  # claimed, then the replica died
        await conn.execute(update(tables.email_outbox).values(lease_ms=NOW_MS + mail.LEASE_MS))

    await box.db.arun(hold, write=True)
    settings = settings_for(mailbox.port)
    assert await mail.send_due(box.db, settings, "b", NOW_MS + mail.LEASE_MS - 1) == 0
    assert await mail.send_due(box.db, settings, "b", NOW_MS + mail.LEASE_MS) == 1
    assert mailbox.message_ids == [f"<{email_id}@voxloop.example>"]


# --- AUTH -----------------------------------------------------------------------------------


async def test_smtp_auth_logs_in_and_a_wrong_password_is_never_kept(tmp_path: Path) -> None:
    box = Outbox(tmp_path, "sqlite")
    server = Mailbox(login=("cx-sender", "s3cret-Pa55"))
    server.start()
    wrong = "wr0ng-Passw0rd"
    try:
        good = settings_for(server.port, smtp_user="cx-sender", smtp_password="s3cret-Pa55")
        sent = await box.enqueue(an_alert(), "ana@example.com")
        assert await mail.send_due(box.db, good, "a", NOW_MS) == 1
        assert server.logins == ["cx-sender"]
        assert server.message_ids == [f"<{sent}@voxloop.example>"]
        bad = settings_for(server.port, smtp_user="cx-sender", smtp_password=wrong)
        refused = await box.enqueue(an_alert(), "ana@example.com", NOW_MS + 1)
        assert await mail.send_due(box.db, bad, "a", NOW_MS + 1) == 0
        row = await box.row(refused)
    finally:
        server.stop()
        box.close()
    assert row["state"] == "pending" and "535" in row["error"]
    plain = base64.b64encode(f"\0cx-sender\0{wrong}".encode()).decode()
    for secret in (wrong, base64.b64encode(wrong.encode()).decode(), plain):
        assert secret not in row["error"]
    assert server.logins == ["cx-sender"]


# --- voxloop-gateway mail test ----------------------------------------------------------------


def test_mail_test_sends_one_email_now_and_says_where(
    command: Command, mailbox: Mailbox, tmp_path: Path
) -> None:
    env = {
        "VOXLOOP_SMTP_HOST": "127.0.0.1",
        "VOXLOOP_SMTP_PORT": str(mailbox.port),
        "VOXLOOP_SMTP_TLS": "none",
        "VOXLOOP_MAIL_FROM": SENDER,
    }
    done = command("mail", "test", "--to", "Ops@Example.com", "--lang", "fa", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"sent a test email to ops@example.com through 127.0.0.1:{mailbox.port} (none)\n"
    )
    (message,) = mailbox.messages
    assert message["Subject"] == "voxloop: ایمیل آزمایشی"
    assert message["To"] == "ops@example.com" and message["From"] == SENDER
    text, html = parts(message)
    assert f"127.0.0.1:{mailbox.port}" in text
    assert '<html lang="fa" dir="rtl">' in html


def test_mail_test_says_in_one_line_what_went_wrong(command: Command) -> None:
    port = free_port()
    env = {"VOXLOOP_SMTP_HOST": "127.0.0.1", "VOXLOOP_SMTP_PORT": str(port)}
    down = command("mail", "test", "--to", "ops@example.com", "--smtp-tls", "none", env=env)
    assert down.returncode == 1 and down.stdout == ""
    assert down.stderr.startswith(
        f"voxloop-gateway: mail failed: MailError: 127.0.0.1:{port}: SMTPConnectError"
    )
    assert down.stderr.count("\n") == 1
    unset = command("mail", "test", "--to", "ops@example.com")
    assert unset.returncode == 2
    assert unset.stderr == (
        "voxloop-gateway: no SMTP server is set: --smtp-host or VOXLOOP_SMTP_HOST\n"
    )
    bad = command("mail", "test", "--to", "not an address", env=env)
    assert bad.returncode == 2 and "must look like name@example.com" in bad.stderr
