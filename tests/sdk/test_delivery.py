"""Delivery end to end against the real gateway on loopback, for both clients.

Every test runs twice, with the thread-backed :class:`voxloop.Client` (``sync``) and with the
task-backed :class:`voxloop.AsyncClient` (``async``), and counts what the gateway's stats say.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import voxloop

from .conftest import FAST, Gateway, MakeTwin, counted, free_port, serve, unique_form


async def wait_for_count(gateway: Gateway, form: str, expected: int, seconds: float = 10) -> int:
    """The stats count once it reaches ``expected``, or whatever it is after ``seconds``."""
    deadline = time.monotonic() + seconds
    count = counted(gateway, form)
    while count < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        count = counted(gateway, form)
    return count


async def test_capture_n_events_and_the_stats_show_exactly_n(
    gateway: Gateway, twin: MakeTwin
) -> None:
    client = twin(gateway.url, gateway.server_key)
    form = unique_form()
    ids = [await client.capture(form=form, score=i % 11, comment=f"n°{i}") for i in range(1234)]
    assert len(set(ids)) == 1234
    assert await client.flush()
    assert counted(gateway, form) == 1234
    stats = client.stats()
    assert (stats.delivered, stats.retried, sum(stats.dropped.values())) == (1234, 0, 0)


async def test_a_partial_batch_goes_out_after_the_interval_without_a_flush(
    gateway: Gateway, twin: MakeTwin
) -> None:
    client = twin(gateway.url, gateway.server_key)
    form = unique_form()
    for _ in range(3):
        await client.capture(form=form)
    assert await wait_for_count(gateway, form, 3) == 3


async def test_gateway_down_while_capturing_then_up_every_event_once(
    tmp_path: Path, twin: MakeTwin
) -> None:
    # The key exists once the project does: make it with a first gateway, and stop that one.
    first = serve(tmp_path / "gw")
    key = first.server_key
    first.stop()
    port = free_port()
    client = twin(f"http://127.0.0.1:{port}", key)
    form = unique_form()
    for i in range(300):
        await client.capture(form=form, score=i % 11)
    assert not await client.flush(timeout=0.5)  # nobody listens: nothing can be settled
    assert client.stats().retried > 0
    gateway = serve(tmp_path / "gw", port=port)
    try:
        assert await client.flush(timeout=15)
        assert counted(gateway, form) == 300
        stats = client.stats()
        assert stats.delivered == 300 and sum(stats.dropped.values()) == 0
    finally:
        gateway.stop()


async def test_a_refused_key_is_final_and_reported_by_id_not_retried(
    gateway: Gateway, twin: MakeTwin
) -> None:
    errors: list[voxloop.DeliveryError] = []
    client = twin(gateway.url, "sk_not_a_key", on_error=errors.append)
    ids = [await client.capture(comment="secret words") for _ in range(3)]
    assert not await client.flush()  # settled, but nothing delivered
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, voxloop.Rejected) and error.status == 401
    assert sorted(error.ids) == sorted(ids)
    assert error.reason.startswith("HTTP 401")
    assert "secret" not in error.reason
    stats = client.stats()
    assert (stats.delivered, stats.retried, stats.dropped["rejected"]) == (0, 0, 3)


async def test_events_the_gateway_rejects_are_reported_the_others_counted(
    gateway: Gateway, twin: MakeTwin
) -> None:
    errors: list[voxloop.DeliveryError] = []
    client = twin(gateway.url, gateway.server_key, on_error=errors.append)
    form = unique_form()
    good = [await client.capture(form=form) for _ in range(4)]
    # Well-formed but unknown to the project: only the gateway can tell.
    bad = await client.capture(form=form, channel="sms")
    assert not await client.flush()  # one was refused
    assert counted(gateway, form) == len(good)
    assert len(errors) == 1 and errors[0].ids == (bad,)
    assert isinstance(errors[0], voxloop.Rejected) and errors[0].field == "channel"
    assert "unknown channel 'sms'" in errors[0].reason
    stats = client.stats()
    assert (stats.delivered, stats.dropped["rejected"]) == (4, 1)


async def test_sync_mode_delivers_inside_capture(gateway: Gateway, twin: MakeTwin) -> None:
    client = twin(gateway.url, gateway.server_key, config=FAST.replace(sync_mode=True))
    form = unique_form()
    for i in range(5):
        await client.capture(form=form, score=i)
        assert counted(gateway, form) == i + 1
    assert client.stats().delivered == 5


async def test_a_full_queue_drops_new_events_and_counts_them(twin: MakeTwin) -> None:
    client = twin(f"http://127.0.0.1:{free_port()}", "sk_x", config=FAST.replace(queue_size=5))
    captured = [await client.capture() for _ in range(50)]
    assert len(captured) == 50
    stats = client.stats()
    # The worker may have taken a batch out before the queue filled; the rest is dropped.
    assert stats.dropped["queue_full"] >= 50 - 5 - FAST.batching.max_events
    assert stats.dropped["queue_full"] + stats.queued + stats.delivered <= 50


async def test_close_gives_up_on_what_it_cannot_send_and_counts_it(twin: MakeTwin) -> None:
    errors: list[voxloop.DeliveryError] = []
    client = twin(f"http://127.0.0.1:{free_port()}", "sk_x", on_error=errors.append)
    ids = [await client.capture() for _ in range(7)]
    started = time.monotonic()
    assert not await client.close(timeout=0.3)
    assert time.monotonic() - started < 3
    assert client.stats().dropped["gave_up"] == 7
    assert sorted(i for e in errors for i in e.ids) == sorted(ids)
    assert all(isinstance(e, voxloop.GaveUp) for e in errors)


async def test_capture_after_close_is_dropped_as_closed(gateway: Gateway, twin: MakeTwin) -> None:
    client = twin(gateway.url, gateway.server_key)
    await client.close()
    await client.capture()
    assert client.stats().dropped["closed"] == 1
    assert await client.close()  # twice is harmless


async def test_close_flushes_what_was_captured(gateway: Gateway, twin: MakeTwin) -> None:
    client = twin(gateway.url, gateway.server_key)
    form = unique_form()
    for _ in range(42):
        await client.capture(form=form)
    assert await client.close()
    assert counted(gateway, form) == 42


async def test_large_batches_are_gzipped_and_split_to_the_gateways_limit(
    tmp_path: Path, twin: MakeTwin
) -> None:
    # A gateway taking 16 KiB bodies, batches of up to 200 events of about 400 bytes each:
    # the first request is refused with 413 and the batches are halved until they fit.
    gateway = serve(tmp_path / "small", max_body=16 * 1024)
    try:
        config = FAST.replace(batching=voxloop.Batching(max_events=200, interval=0.05))
        client = twin(gateway.url, gateway.server_key, config=config)
        form = unique_form()
        for i in range(400):
            await client.capture(form=form, comment=f"{i} " + "é" * 300)
        assert await client.flush(timeout=20)
        assert counted(gateway, form) == 400
        stats = client.stats()
        assert stats.delivered == 400 and sum(stats.dropped.values()) == 0
    finally:
        gateway.stop()


async def test_every_field_of_the_contract_reaches_the_gateway(
    gateway: Gateway, twin: MakeTwin
) -> None:
    from datetime import UTC, datetime

    client = twin(gateway.url, gateway.server_key, config=FAST.replace(sync_mode=True))
    form = unique_form()
    await client.capture(
        channel="app",
        form=form,
        metric="csat",
        score=4,
        comment="خیلی ممنون\u200cام،配送が速い",
        respondent="user-42",
        vote_key="campaign-1:user-42",
        ts=datetime.now(UTC),
        locale="fa-IR",
        tags=["mobile", "beta"],
        meta={"plan": "pro", "cart_value": 129.5, "items": 3, "returning": True},
    )
    assert client.stats().delivered == 1
    assert gateway.stats(metric="csat", form=form)["total"]["histogram"] == [0, 0, 0, 1, 0]


async def test_the_async_client_over_the_standard_library_transport(gateway: Gateway) -> None:
    # Where httpx isn't installed the async client runs http.client in a thread: same results.
    transport = voxloop.HTTPTransport(gateway.url, gateway.server_key)
    form = unique_form()
    async with voxloop.AsyncClient(
        gateway.url, gateway.server_key, config=FAST, transport=transport
    ) as client:
        for i in range(120):
            await client.capture(channel="app", form=form, metric="nps", score=i % 11)
        assert await client.flush()
    assert counted(gateway, form) == 120


def test_the_sync_client_over_httpx(gateway: Gateway) -> None:
    transport = voxloop.HttpxTransport(gateway.url, gateway.server_key)
    form = unique_form()
    with voxloop.Client(gateway.url, gateway.server_key, config=FAST, transport=transport) as c:
        for i in range(120):
            c.capture(channel="web", form=form, metric="nps", score=i % 11, comment="é" * 50)
        assert c.flush()
    assert counted(gateway, form) == 120


async def test_a_failing_on_error_callback_does_not_stop_delivery(
    gateway: Gateway, twin: MakeTwin
) -> None:
    def explode(error: voxloop.DeliveryError) -> None:
        raise RuntimeError("a bug in the app's callback")

    client = twin(gateway.url, gateway.server_key, on_error=explode)
    form = unique_form()
    await client.capture(form=form, channel="sms")  # rejected: the callback raises
    assert not await client.flush()
    await client.capture(form=form)
    assert await client.flush()
    assert counted(gateway, form) == 1
