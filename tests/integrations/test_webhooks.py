"""Webhook endpoints and their delivery, on a SQLite file and on PostgreSQL, to real receivers
on loopback: signatures checked with the official ``standardwebhooks`` package, retries on a
clock the tests move, outages, 410s, a day of failures, timeouts, capped answers, and two
replicas racing for the same messages."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.gateway.pg import pg_schema_url
from voxloop_gateway.control import tables
from voxloop_gateway.errors import ApiError
from voxloop_gateway.integrations import signing, webhooks
from voxloop_gateway.integrations.outbox import EVENT_TYPES, new_id
from voxloop_gateway.integrations.ssrf import TargetRefused, guarded_client
from voxloop_gateway.integrations.webhook_delivery import (
    BATCH,
    FAILING_LIMIT_MS,
    MAX_RESPONSE_BYTES,
    RETRY_CAP_MS,
    RETRY_WINDOW_MS,
    deliver_due,
    read_capped,
    retry_delay_ms,
)

from .receivers import (
    Answer,
    Control,
    Received,
    Receiver,
    always,
    control,
    now_ms,
    receiver,
    signed_with,
)

__all__ = ["control", "pg_schema_url", "receiver"]  # fixtures

HOUR_MS = 3_600_000
HOLDER = "test-worker"
D = tables.webhook_deliveries
A = tables.webhook_attempts


async def add(
    control: Control, url: str, types: tuple[str, ...] = ("response.created",), **kw: Any
) -> tuple[webhooks.Endpoint, str]:
    return await webhooks.add(
        control.db,
        control.settings().webhook_allow,
        kw.get("project", "shop"),
        url,
        list(types),
        kw.get("description", "CRM"),
        kw.get("now", now_ms()),
    )


async def pending(control: Control) -> list[Any]:
    return await control.rows(D, D.c.state == "pending")


async def run_until_settled(
    control: Control, start: int, *, limit: int = 400, before: Any = None
) -> int:
    """Deliver at the time each pending delivery is next due, until none is pending; the
    time it ended at."""
    now = start
    settings = control.settings()
    for _ in range(limit):
        due = await pending(control)
        if not due:
            return now
        now = max(now, min(row.next_ms for row in due))
        if before is not None:
            await before(now)
        await deliver_due(control.db, settings, HOLDER, now)
    raise AssertionError("deliveries still pending")


# --- endpoints -----------------------------------------------------------------------------


def test_message_ids_are_26_random_base32_digits() -> None:
    """Each of the 26 places takes every one of the 32 digits (130 bits, all of them drawn):
    in 3,000 ids a digit is missed at some place with a chance of about 10^-38."""
    made = [new_id("msg_") for _ in range(3000)]
    assert len(set(made)) == len(made)
    digits = "0123456789abcdefghjkmnpqrstvwxyz"
    assert all(len(m) == 30 and m.startswith("msg_") for m in made)
    for place in range(4, 30):
        assert {m[place] for m in made} == set(digits), place


async def test_endpoints_are_added_listed_rotated_and_removed(control: Control) -> None:
    made, secret = await add(control, "http://127.0.0.1:9/a", ("alert.fired", "response.created"))
    assert made.id.startswith("ep_") and secret.startswith("whsec_")
    assert made.event_types == ("response.created", "alert.fired")  # in EVENT_TYPES's order
    other, _ = await add(control, "http://localhost:9/b", EVENT_TYPES, project="cafe")
    assert [e.id for e in await webhooks.list_endpoints(control.db, "shop")] == [made.id]
    assert {e.id for e in await webhooks.list_endpoints(control.db)} == {made.id, other.id}
    assert made.state == "active" and made.previous_until_ms is None
    rotated, new = await webhooks.rotate_secret(control.db, "shop", made.id, 1_000)
    assert new != secret and rotated.previous_until_ms == 1_000 + 24 * HOUR_MS
    with pytest.raises(ApiError) as caught:
        await webhooks.rotate_secret(control.db, "shop", other.id, 1_000)  # another project's
    assert caught.value.status == 404
    assert (await webhooks.remove(control.db, "shop", made.id)).id == made.id
    assert await webhooks.list_endpoints(control.db, "shop") == []
    with pytest.raises(ApiError):
        await webhooks.get(control.db, None, made.id)


BAD_INPUT = [
    ("http://127.0.0.1:9/", ["no.such.type"], "", 422, "event_types"),
    ("http://127.0.0.1:9/", [], "", 422, "event_types"),
    ("http://127.0.0.1:9/", "response.created", "", 422, "event_types"),
    ("http://127.0.0.1:9/", ["response.created"], "x" * 501, 422, "description"),
    ("ftp://127.0.0.1/", ["response.created"], "", 422, "url"),
    ("http://10.0.0.1/", ["response.created"], "", 422, "url"),
    ("http://169.254.169.254/", ["response.created"], "", 422, "url"),
]


@pytest.mark.parametrize(
    ("url", "types", "description", "status", "field"),
    BAD_INPUT,
    ids=["unknown-type", "no-type", "not-a-list", "long-description", "ftp", "private", "metadata"],
)
async def test_bad_input_is_a_4xx_naming_the_field(
    control: Control, url: str, types: Any, description: str, status: int, field: str
) -> None:
    with pytest.raises(ApiError) as caught:
        await webhooks.add(
            control.db, control.settings().webhook_allow, "shop", url, types, description, 0
        )
    assert caught.value.status == status
    assert caught.value.message.startswith(field)
    assert await webhooks.list_endpoints(control.db) == []


async def test_loopback_is_refused_without_the_allow_setting(control: Control) -> None:
    for url in ("http://127.0.0.1:9/", "http://localhost:9/", "http://[::1]:9/"):
        with pytest.raises(TargetRefused, match="loopback"):
            await webhooks.add(control.db, (), "shop", url, ["alert.fired"], "", 0)


async def test_an_unknown_project_is_a_404(control: Control) -> None:
    with pytest.raises(ApiError) as caught:
        await add(control, "http://127.0.0.1:9/", project="nope")
    assert caught.value.status == 404


# --- delivery ------------------------------------------------------------------------------


async def test_messages_are_delivered_signed_per_standard_webhooks(
    control: Control, receiver: Receiver
) -> None:
    endpoint, secret = await add(control, receiver.url, ("response.created", "alert.fired"))
    start = now_ms()
    first = await control.enqueue({"ref": "r1", "score": 3, "comment": "trop lent 🐢"}, start)
    second = await control.enqueue({"rule": "drop"}, start, "alert.fired")
    await control.enqueue({"item": "f1"}, start, "followup.created")  # not a type it takes
    assert await deliver_due(control.db, control.settings(), HOLDER, start) == 2
    got = {r.id: r for r in receiver.received()}
    assert set(got) == {first, second}
    for message, (kind, data) in {
        first: ("response.created", {"ref": "r1", "score": 3, "comment": "trop lent 🐢"}),
        second: ("alert.fired", {"rule": "drop"}),
    }.items():
        request = got[message]
        payload = Webhook(secret).verify(request.body, request.headers)
        assert payload["type"] == kind and payload["data"] == data
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-timestamp"] == str(start // 1000)
        assert request.path == "/hook"
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(got[first].body, got[first].headers)
    for message in (first, second):
        row = await control.delivery(message, endpoint.id)
        assert (row.state, row.attempts, row.done_ms, row.lease_ms) == ("delivered", 1, start, None)
    log, following = await webhooks.attempts(control.db, endpoint.id)
    assert following is None
    assert {(a.message, a.status, a.error, a.state) for a in log} == {
        (first, 200, None, "delivered"),
        (second, 200, None, "delivered"),
    }
    # Nothing is due any more.
    assert await deliver_due(control.db, control.settings(), HOLDER, start + HOUR_MS) == 0
    assert len(receiver.received()) == 2


async def test_both_secrets_sign_while_a_rotated_secret_overlaps(
    control: Control, receiver: Receiver
) -> None:
    endpoint, first = await add(control, receiver.url)
    now = now_ms()
    _, second = await webhooks.rotate_secret(control.db, "shop", endpoint.id, now - HOUR_MS)
    message = await control.enqueue({"n": 1}, now)
    await deliver_due(control.db, control.settings(), HOLDER, now)
    [got] = receiver.received()
    assert len(got.signatures) == 2
    for secret in (first, second):
        assert Webhook(secret).verify(got.body, got.headers)["data"] == {"n": 1}
    # Rotated again a day ago: the overlap of the one before has ended, only the newest signs.
    _, third = await webhooks.rotate_secret(control.db, "shop", endpoint.id, now - 25 * HOUR_MS)
    await webhooks.redeliver(control.db, message, endpoint.id, now)
    await deliver_due(control.db, control.settings(), HOLDER, now)
    again = receiver.received()[1]
    assert again.id == message and len(again.signatures) == 1
    assert Webhook(third).verify(again.body, again.headers)["data"] == {"n": 1}
    for stale in (first, second):
        with pytest.raises(WebhookVerificationError):
            Webhook(stale).verify(again.body, again.headers)


def test_the_backoff_doubles_from_5_s_up_to_an_hour_with_full_jitter() -> None:
    # The draw scales the whole interval: 3/4 of each ceiling (5 s, 10 s, 20 s... 1 h).
    assert [retry_delay_ms(n, 0.75) for n in range(1, 14)] == [
        3_750,
        7_500,
        15_000,
        30_000,
        60_000,
        120_000,
        240_000,
        480_000,
        960_000,
        1_920_000,
        2_700_000,
        2_700_000,
        2_700_000,
    ]
    assert [retry_delay_ms(n, 0.5) for n in (1, 2, 3, 12, 500)] == [
        2_500,
        5_000,
        10_000,
        1_800_000,
        1_800_000,
    ]
    assert retry_delay_ms(1, 0.0) == retry_delay_ms(30, 0.0) == 1_000  # the floor
    assert max(retry_delay_ms(n, 0.999_999_999) for n in range(1, 100)) < RETRY_CAP_MS


async def test_retries_follow_the_backoff_with_the_same_id(
    control: Control, receiver: Receiver
) -> None:
    receiver.answer = always(500, body=b"  database\n  is down  ")
    endpoint, secret = await add(control, receiver.url)
    start = now_ms()
    message = await control.enqueue({"n": 1}, start)
    now = start
    for failures in range(1, 9):
        assert await deliver_due(control.db, control.settings(), HOLDER, now) == 1
        row = await control.delivery(message, endpoint.id)
        assert row.state == "pending" and row.attempts == failures and row.lease_ms is None
        ceiling = min(RETRY_CAP_MS, 5_000 * 2 ** (failures - 1))
        assert 1_000 <= row.next_ms - now <= ceiling
        # Not due before its time.
        assert await deliver_due(control.db, control.settings(), HOLDER, row.next_ms - 1) == 0
        now = row.next_ms
    got = receiver.received()
    assert [r.id for r in got] == [message] * 8
    assert all(signed_with(secret, r) for r in got)
    log, _ = await webhooks.attempts(control.db, endpoint.id)
    assert [(a.status, a.error) for a in log] == [(500, "database is down")] * 8
    assert [a.at_ms for a in log] == sorted((a.at_ms for a in log), reverse=True)
    [shown] = await webhooks.list_endpoints(control.db, "shop")
    assert shown.state == "failing" and shown.failing_since_ms == start


async def test_a_budget_delivers_batch_after_batch(control: Control, receiver: Receiver) -> None:
    """One call sends one batch by default; with a budget it claims the next while the last
    came full. The attempts of a batch, recorded together, each land on their own delivery."""
    endpoint, secret = await add(control, receiver.url)
    start = now_ms()
    sent = [await control.enqueue({"n": n}, start) for n in range(2 * BATCH + 30)]
    settings = control.settings()
    assert await deliver_due(control.db, settings, HOLDER, start) == BATCH
    assert await deliver_due(control.db, settings, HOLDER, start, budget_s=60) == BATCH + 30
    assert await deliver_due(control.db, settings, HOLDER, start, budget_s=60) == 0
    got = receiver.received()
    assert sorted(r.id for r in got) == sorted(sent)
    assert all(signed_with(secret, r) for r in got)
    rows = await control.rows(D)
    assert {(r.state, r.attempts, r.lease_ms) for r in rows} == {("delivered", 1, None)}
    attempts = await control.rows(A)
    assert sorted(a.message for a in attempts) == sorted(sent)
    assert {(a.endpoint, a.status) for a in attempts} == {(endpoint.id, 200)}


async def test_a_receiver_down_for_a_while_gets_every_message_with_its_id(
    control: Control, receiver: Receiver
) -> None:
    endpoint, secret = await add(control, receiver.url)
    receiver.stop()  # down: connections are refused
    start = now_ms()
    sent = {await control.enqueue({"n": n}, start + n): n for n in range(6)}
    now = start
    while now < start + 3 * HOUR_MS:
        await deliver_due(control.db, control.settings(), HOLDER, now)
        now = min(row.next_ms for row in await pending(control))
    log, _ = await webhooks.attempts(control.db, endpoint.id, limit=500)
    assert len(log) > 6 * 3
    assert all(a.status is None and "ConnectError" in (a.error or "") for a in log)
    assert len(await pending(control)) == 6
    receiver.start()  # back, on the same port
    await run_until_settled(control, now)
    got = receiver.received()
    assert sorted(r.id for r in got) == sorted(sent)  # each once, with its original id
    for request in got:
        assert request.payload()["data"] == {"n": sent[request.id]}
        assert signed_with(secret, request)
    for message in sent:
        row = await control.delivery(message, endpoint.id)
        assert row.state == "delivered" and row.attempts >= 3
    [shown] = await webhooks.list_endpoints(control.db, "shop")
    assert shown.state == "active"  # the success ended the streak


async def test_a_410_disables_the_endpoint_and_fails_its_deliveries(
    control: Control, receiver: Receiver
) -> None:
    endpoint, _ = await add(control, receiver.url)
    other_receiver = Receiver().start()
    try:
        other, _ = await add(control, other_receiver.url)
        start = now_ms()
        receiver.answer = always(410)
        messages = [await control.enqueue({"n": n}, start) for n in range(3)]
        await deliver_due(control.db, control.settings(), HOLDER, start)
        [gone] = [e for e in await webhooks.list_endpoints(control.db) if e.id == endpoint.id]
        assert gone.state == "disabled" and gone.disabled_ms == start
        assert "410" in (gone.disabled_reason or "")
        for message in messages:
            assert (await control.delivery(message, endpoint.id)).state == "failed"
            assert (await control.delivery(message, other.id)).state == "delivered"
        # Nothing more is queued for it, and a redelivery is refused until it is enabled.
        later = await control.enqueue({"n": 9}, start + 1)
        assert await control.rows(D, D.c.endpoint == endpoint.id, D.c.message == later) == []
        with pytest.raises(ApiError) as caught:
            await webhooks.redeliver(control.db, later, endpoint.id, start + 2)
        assert caught.value.status == 409
        receiver.answer = always(204)
        enabled = await webhooks.enable(control.db, "shop", endpoint.id)
        assert enabled.state == "active" and enabled.disabled_reason is None
        await webhooks.redeliver(control.db, messages[0], endpoint.id, start + 3)
        fresh = await control.enqueue({"n": 10}, start + 3)
        await deliver_due(control.db, control.settings(), HOLDER, start + 3)
        assert receiver.ids()[-2:] in ([messages[0], fresh], [fresh, messages[0]])
    finally:
        other_receiver.stop()


async def test_an_endpoint_failing_for_24_h_is_disabled_with_a_reason(
    control: Control, receiver: Receiver
) -> None:
    receiver.answer = always(503)
    endpoint, _ = await add(control, receiver.url)
    start = now_ms()
    message = await control.enqueue({"n": 1}, start)
    ended = await run_until_settled(control, start)
    [shown] = await webhooks.list_endpoints(control.db, "shop")
    assert shown.state == "disabled" and shown.disabled_ms == ended
    assert FAILING_LIMIT_MS <= ended - start < FAILING_LIMIT_MS + RETRY_CAP_MS
    assert shown.disabled_reason is not None
    assert "every delivery failed" in shown.disabled_reason and "HTTP 503" in shown.disabled_reason
    assert (await control.delivery(message, endpoint.id)).state == "failed"
    assert await pending(control) == []


async def test_a_delivery_is_given_up_after_24_h_while_its_endpoint_works(
    control: Control, receiver: Receiver
) -> None:
    def answer(got: Received) -> Answer:
        return Answer(500) if got.payload()["data"].get("poison") else Answer(200)

    receiver.answer = answer
    endpoint, _ = await add(control, receiver.url)
    start = now_ms()
    poison = await control.enqueue({"poison": True}, start)

    async def healthy(now: int) -> None:  # the others get through meanwhile
        await control.enqueue({"at": now}, now)

    ended = await run_until_settled(control, start, before=healthy)
    row = await control.delivery(poison, endpoint.id)
    assert row.state == "failed" and row.done_ms == ended
    assert RETRY_WINDOW_MS <= ended - start < RETRY_WINDOW_MS + RETRY_CAP_MS
    assert row.attempts == receiver.ids().count(poison) >= 24
    [shown] = await webhooks.list_endpoints(control.db, "shop")
    assert shown.state != "disabled"


async def test_an_answer_is_read_up_to_64_KiB(control: Control, receiver: Receiver) -> None:
    receiver.answer = lambda got: Answer(
        200 if got.payload()["data"]["ok"] else 500, body=b"<html>busy</html>\n", endless=True
    )
    endpoint, _ = await add(control, receiver.url)
    start = now_ms()
    good = await control.enqueue({"ok": True}, start)
    bad = await control.enqueue({"ok": False}, start)
    began = time.monotonic()
    assert (
        await deliver_due(control.db, control.settings(webhook_timeout_s=5.0), HOLDER, start) == 2
    )
    assert time.monotonic() - began < 4  # the endless answers did not hold it to its timeout
    assert (await control.delivery(good, endpoint.id)).state == "delivered"
    log, _ = await webhooks.attempts(control.db, endpoint.id)
    [failed] = [a for a in log if a.message == bad]
    assert failed.status == 500 and (failed.error or "").startswith("<html>busy</html> <html>")
    assert len(failed.error or "") == 300
    async with guarded_client(control.settings().webhook_allow, 5.0) as client:
        async with client.stream("POST", receiver.url, content=b'{"data":{"ok":true}}') as got:
            assert len(await read_capped(got, MAX_RESPONSE_BYTES)) == 64 * 1024


async def test_an_attempt_is_bounded_by_the_timeout(control: Control, receiver: Receiver) -> None:
    receiver.answer = always(200, delay_s=5.0)
    endpoint, _ = await add(control, receiver.url)
    start = now_ms()
    message = await control.enqueue({"n": 1}, start)
    began = time.monotonic()
    await deliver_due(control.db, control.settings(webhook_timeout_s=1.0), HOLDER, start)
    assert time.monotonic() - began < 3
    [attempt], _ = await webhooks.attempts(control.db, endpoint.id)
    assert attempt.status is None and attempt.error == "no answer within 1 s"
    assert 900 <= attempt.duration_ms < 2_500
    row = await control.delivery(message, endpoint.id)
    assert row.state == "pending" and row.next_ms > start


async def test_the_guard_runs_again_at_delivery(control: Control, receiver: Receiver) -> None:
    endpoint, _ = await add(control, receiver.url)  # allowed when added
    start = now_ms()
    message = await control.enqueue({"n": 1}, start)
    await deliver_due(control.db, control.settings(webhook_allow=()), HOLDER, start)
    assert receiver.received() == []
    [attempt], _ = await webhooks.attempts(control.db, endpoint.id)
    assert attempt.status is None and "loopback" in (attempt.error or "")
    assert (await control.delivery(message, endpoint.id)).state == "pending"


async def test_a_lease_that_runs_out_makes_the_delivery_due_again(
    control: Control, receiver: Receiver
) -> None:
    receiver.answer = always(200, delay_s=1.0)
    endpoint, _ = await add(control, receiver.url)
    settings = control.settings(webhook_timeout_s=3.0)
    start = now_ms()
    message = await control.enqueue({"n": 1}, start)
    # A worker that dies mid-delivery: the request is out, the result never written.
    dying = asyncio.ensure_future(deliver_due(control.db, settings, HOLDER, start))
    while not receiver.received():
        await asyncio.sleep(0.01)
    dying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dying
    row = await control.delivery(message, endpoint.id)
    assert row.state == "pending" and row.lease_ms is not None and row.attempts == 0
    # Held until its lease runs out, then delivered again, with the same id.
    assert await deliver_due(control.db, settings, "other", row.lease_ms - 1) == 0
    receiver.answer = always(200)
    assert await deliver_due(control.db, settings, "other", row.lease_ms) == 1
    assert receiver.ids() == [message, message]
    assert (await control.delivery(message, endpoint.id)).state == "delivered"


async def test_a_result_written_after_its_lease_was_taken_over_changes_nothing(
    control: Control, receiver: Receiver
) -> None:
    answers = iter([Answer(500, delay_s=1.0), Answer(200)])
    receiver.answer = lambda _got: next(answers)
    endpoint, _ = await add(control, receiver.url)
    settings = control.settings(webhook_timeout_s=2.0)
    start = now_ms()
    message = await control.enqueue({"n": 1}, start)
    slow = asyncio.ensure_future(deliver_due(control.db, settings, "slow", start))
    while not receiver.received():
        await asyncio.sleep(0.01)
    # A redelivery waits for the attempt in flight.
    with pytest.raises(ApiError) as caught:
        await webhooks.redeliver(control.db, message, endpoint.id, start + 1)
    assert caught.value.status == 409
    # The slow worker's lease runs out (on the clock of the one that takes it over).
    lease = (await control.delivery(message, endpoint.id)).lease_ms
    assert await deliver_due(control.db, settings, "fast", lease) == 1
    await slow  # its 500 comes after the other's 200, and changes nothing
    row = await control.delivery(message, endpoint.id)
    assert (row.state, row.attempts, row.lease_ms) == ("delivered", 1, None)
    log, _ = await webhooks.attempts(control.db, endpoint.id)
    assert sorted(a.status or 0 for a in log) == [200, 500]  # both are in the log
    [shown] = await webhooks.list_endpoints(control.db, "shop")
    assert shown.state == "active"


async def test_redelivery_sends_the_same_id_and_the_log_pages_newest_first(
    control: Control, receiver: Receiver
) -> None:
    endpoint, secret = await add(control, receiver.url)
    start = now_ms()
    message = await control.enqueue({"n": 1}, start)
    await deliver_due(control.db, control.settings(), HOLDER, start)
    for n in (1, 2):
        await webhooks.redeliver(control.db, message, endpoint.id, start + n)
        assert (await control.delivery(message, endpoint.id)).state == "pending"
        await deliver_due(control.db, control.settings(), HOLDER, start + n)
    got = receiver.received()
    assert [r.id for r in got] == [message] * 3 and all(signed_with(secret, r) for r in got)
    page, following = await webhooks.attempts(control.db, endpoint.id, limit=2)
    assert [a.at_ms for a in page] == [start + 2, start + 1] and following is not None
    rest, last = await webhooks.attempts(control.db, endpoint.id, before=following, limit=2)
    assert [a.at_ms for a in rest] == [start] and last is None
    # A message of another project, or none, is not found.
    elsewhere = await control.enqueue({"n": 2}, start, project="cafe")
    for unknown in (elsewhere, "msg_nope"):
        with pytest.raises(ApiError) as caught:
            await webhooks.redeliver(control.db, unknown, endpoint.id, start)
        assert caught.value.status == 404 and caught.value.message.startswith("no message")
    # One it never had is delivered to it if it takes its type, and refused otherwise.
    other_type = await control.enqueue({"n": 3}, start, "followup.created")
    with pytest.raises(ApiError) as caught:
        await webhooks.redeliver(control.db, other_type, endpoint.id, start)
    assert caught.value.status == 422 and caught.value.message.startswith("message")


@pytest.mark.parametrize("workers", [2, 3])
async def test_replicas_racing_deliver_each_message_once(
    control: Control, receiver: Receiver, workers: int
) -> None:
    receiver.answer = always(200, delay_s=0.05)
    endpoints = [await add(control, receiver.url) for _ in range(2)]
    start = now_ms()
    messages = [await control.enqueue({"n": n}, start) for n in range(80)]
    replicas = [control.replica() for _ in range(workers)]
    settings = control.settings()
    now = start
    rounds = 0
    while await pending(control):
        done = await asyncio.gather(
            *(deliver_due(db, settings, f"replica-{i}", now) for i, db in enumerate(replicas))
        )
        assert sum(done) > 0
        rounds += 1
        assert rounds < 20
    got = receiver.ids()
    assert len(got) == 2 * len(messages)
    assert sorted(got) == sorted(messages * 2)  # each message once to each endpoint
    assert len(await control.rows(A)) == 2 * len(messages)
    for endpoint, _ in endpoints:
        for message in messages[:5]:
            row = await control.delivery(message, endpoint.id)
            assert (row.state, row.attempts) == ("delivered", 1)
