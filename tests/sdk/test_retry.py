"""The retry policy against a real, scripted HTTP server, for both clients.

The server answers as a test scripts it: 429 with ``Retry-After``, 503, 500, a slow answer past
the client's read timeout, a dropped connection, then 202; it records every request's time and
ids. What is checked is behaviour: which answers are retried, how long the client waits, that
every retry carries the same ids, what is final, and that ``capture()`` never waits on any of it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

import voxloop

from .conftest import (
    FAST,
    Gateway,
    MakeTwin,
    Script,
    answer,
    counted,
    drop,
    proxy,
    slow,
    unique_form,
)

MakeScript = Callable[..., Script]

#: Exact waits (no jitter): retry n waits min(0.05 * 2**n, 0.2) s, or Retry-After if longer.
POLICY = FAST.replace(
    retry=voxloop.Retry(attempts=10, backoff=0.05, cap=0.2, jitter=0.0),
    timeout=voxloop.Timeout(connect=2.0, read=0.4),
)


async def test_the_retry_policy_is_followed_with_the_same_ids_every_time(
    script: MakeScript, twin: MakeTwin
) -> None:
    server = script(
        answer(429, {"Retry-After": "1"}),
        answer(503),
        answer(500),
        slow(1.0),  # past the 0.4 s read timeout: no answer
        drop(),
        answer(202),
    )
    client = twin(server.url, "sk_test", config=POLICY)
    ids = [await client.capture(score=i) for i in range(5)]
    assert await client.flush(timeout=15)

    hits = server.hits
    assert len(hits) == 6
    assert all(hit.ids == ids for hit in hits)
    gaps = [later.at - earlier.at for earlier, later in zip(hits, hits[1:], strict=False)]
    assert gaps[0] >= 1.0  # Retry-After: 1 is a floor over the 0.05 s backoff
    assert gaps[1] >= 0.1  # after the 503: 0.05 * 2**1
    assert gaps[2] >= 0.2  # after the 500: 0.05 * 2**2
    assert gaps[3] >= 0.4 + 0.2  # the read timeout, then the cap
    assert gaps[4] >= 0.2  # after the dropped connection: capped
    assert max(gaps) < 5
    stats = client.stats()
    assert (stats.delivered, stats.retried, sum(stats.dropped.values())) == (5, 25, 0)


@pytest.mark.parametrize(
    ("status", "retried"),
    [(408, True), (429, True), (502, True), (503, True), (400, False), (404, False)],
    ids=["408", "429", "502", "503", "400", "404"],
)
async def test_which_answers_are_retried(
    script: MakeScript, twin: MakeTwin, status: int, retried: bool
) -> None:
    server = script(answer(status))
    client = twin(server.url, "sk_test", config=POLICY)
    await client.capture()
    assert await client.flush(timeout=10) is retried  # a final refusal is not a delivery
    assert len(server.hits) == (2 if retried else 1)
    stats = client.stats()
    assert stats.delivered == (1 if retried else 0)
    assert stats.dropped["rejected"] == (0 if retried else 1)


async def test_a_4xx_is_final_and_reported_by_id_and_reason_never_by_comment(
    script: MakeScript, twin: MakeTwin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="voxloop")
    errors: list[voxloop.DeliveryError] = []
    server = script(answer(400, body={"error": "body is not valid JSON - at `$.events`"}))
    client = twin(server.url, "sk_test", config=POLICY, on_error=errors.append)
    comment = "my card number is 4111 and my address is 1 Secret Lane"
    ids = [await client.capture(comment=comment) for _ in range(3)]
    assert not await client.flush(timeout=10)

    assert len(server.hits) == 1
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, voxloop.Rejected)
    assert (error.status, error.ids) == (400, tuple(ids))
    assert error.reason == "HTTP 400: body is not valid JSON - at `$.events`"
    logged = caplog.text
    assert ids[0] in logged and "HTTP 400" in logged
    assert "Secret" not in logged and "Secret" not in repr(error) and "Secret" not in str(error)
    assert client.stats().dropped["rejected"] == 3


async def test_retries_end_after_the_attempts_and_are_reported_as_given_up(
    script: MakeScript, twin: MakeTwin
) -> None:
    errors: list[voxloop.DeliveryError] = []
    server = script(answer(503), answer(503), answer(503))
    config = POLICY.replace(retry=voxloop.Retry(attempts=3, backoff=0.05, jitter=0.0))
    client = twin(server.url, "sk_test", config=config, on_error=errors.append)
    ids = [await client.capture() for _ in range(4)]
    assert not await client.flush(timeout=10)
    assert len(server.hits) == 3
    assert len(errors) == 1 and isinstance(errors[0], voxloop.GaveUp)
    assert errors[0].ids == tuple(ids) and errors[0].attempts == 3
    assert "HTTP 503" in errors[0].reason
    stats = client.stats()
    assert (stats.delivered, stats.retried, stats.dropped["gave_up"]) == (0, 8, 4)


async def test_capture_never_blocks_while_the_gateway_stalls(
    script: MakeScript, twin: MakeTwin
) -> None:
    server = script(*[slow(2.0) for _ in range(20)])
    config = POLICY.replace(timeout=voxloop.Timeout(connect=2.0, read=5.0))
    client = twin(server.url, "sk_test", config=config)
    await client.capture()
    deadline = time.monotonic() + 5
    while not server.hits and time.monotonic() < deadline:  # the worker is now mid-request
        await client.flush(timeout=0.05)
    assert server.hits

    slowest = 0.0
    for i in range(500):
        started = time.perf_counter()
        await client.capture(score=i % 11, comment="x" * (i % 100))
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 0.05  # generous: it is a deque append, but the machine may be busy

    started = time.monotonic()
    assert not await client.flush(timeout=0.3)
    assert time.monotonic() - started < 1.5
    started = time.monotonic()
    await client.close(timeout=0.3)
    assert time.monotonic() - started < 3


async def test_an_answer_lost_after_the_commit_is_not_counted_twice(
    gateway: Gateway, script: MakeScript, twin: MakeTwin
) -> None:
    # A proxy that lets the gateway commit each batch, then loses its answer: the client must
    # resend the same ids, and the gateway must count them once.
    lossy = script(*[proxy(gateway.url, lose_answer=True) for _ in range(3)])
    lossy.actions.extend(proxy(gateway.url) for _ in range(100))
    client = twin(lossy.url, gateway.server_key, config=POLICY)
    form = unique_form()
    for i in range(250):
        await client.capture(form=form, score=i % 11)
    assert await client.flush(timeout=20)
    assert counted(gateway, form) == 250
    stats = client.stats()
    assert stats.delivered == 250 and sum(stats.dropped.values()) == 0
    assert stats.retried > 0
    sent = [event_id for hit in lossy.hits for event_id in hit.ids]
    assert len(sent) > len(set(sent)) == 250
