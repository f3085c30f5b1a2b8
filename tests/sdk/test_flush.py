"""What ``flush()`` tells the caller, and what the log says when delivery fails.

``flush()`` returns ``True`` only when every event captured since the previous flush was
delivered; otherwise ``last_error`` says why, and the ``voxloop`` logger names the cause: the
gateway's status and message for a refused key (once, never the key), the network's reason and
the gateway's address when it can't be reached. Both clients, the real gateway on loopback and
real refused, slow, reset and unresolvable connections.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

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
    free_port,
    serve,
    slow,
    unique_form,
)

MakeScript = Callable[..., Script]
WRONG_KEY = "sk_wrong_8c1f4d2e9a7b"


def records(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    """The ``voxloop`` log lines at exactly ``level`` that contain ``text``."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "voxloop" and r.levelno == level and text in r.getMessage()
    ]


# --- a refused key ---------------------------------------------------------------------------


async def test_flush_is_false_when_the_gateway_refuses_the_key_and_says_why_once(
    gateway: Gateway, twin: MakeTwin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="voxloop")
    errors: list[voxloop.DeliveryError] = []
    client = twin(gateway.url, WRONG_KEY, on_error=errors.append)
    assert client.client.last_error is None
    first = [await client.capture() for _ in range(3)]
    assert not await client.flush()
    error = client.client.last_error
    assert isinstance(error, voxloop.Rejected) and error is errors[-1]
    assert error.status == 401 and error.reason.startswith("HTTP 401: ")
    said = error.reason.removeprefix("HTTP 401: ")  # the gateway's own message
    assert said and sorted(error.ids) == sorted(first)

    # Every later batch fails alike: reported to on_error, but the log says it once.
    await client.capture()
    assert not await client.flush()
    assert len(errors) == 2
    logged = records(caplog, logging.ERROR, f"HTTP 401: {said}")
    assert len(logged) == 1, logged
    assert "refused the key" in logged[0] and first[0] in logged[0]
    assert WRONG_KEY not in caplog.text and WRONG_KEY not in repr(error)

    # Nothing captured since: nothing lost since.
    assert await client.flush()
    assert client.client.last_error is None
    stats = client.stats()
    assert (stats.delivered, stats.retried, stats.dropped["rejected"]) == (0, 0, 4)


async def test_a_key_echoed_by_the_gateway_is_masked(
    script: MakeScript, twin: MakeTwin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="voxloop")
    server = script(answer(403, body={"error": f"key {WRONG_KEY} may not post here"}))
    client = twin(server.url, WRONG_KEY)
    await client.capture()
    assert not await client.flush()
    error = client.client.last_error
    assert isinstance(error, voxloop.Rejected) and error.status == 403
    assert error.reason == "HTTP 403: key <key> may not post here"
    assert len(records(caplog, logging.ERROR, "HTTP 403: key <key> may not post here")) == 1
    assert WRONG_KEY not in caplog.text


async def test_sync_mode_flush_reports_a_refused_key(
    gateway: Gateway, twin: MakeTwin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="voxloop")
    client = twin(gateway.url, WRONG_KEY, config=FAST.replace(sync_mode=True))
    await client.capture()  # refused inside capture(), which never raises for delivery
    assert not await client.flush()
    error = client.client.last_error
    assert isinstance(error, voxloop.Rejected) and error.status == 401
    assert len(records(caplog, logging.ERROR, "HTTP 401")) == 1
    assert await client.flush()


async def test_sync_mode_against_a_closed_port_says_why_not_that_the_client_closed(
    twin: MakeTwin,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = twin(url, WRONG_KEY, config=FAST.replace(sync_mode=True, flush_timeout=0.5))
    await client.capture()  # given up inside capture() at the flush timeout
    assert not await client.flush()
    error = client.client.last_error
    assert isinstance(error, voxloop.GaveUp)
    assert "connection refused by " + url in error.reason
    assert "closed" not in error.reason


def test_the_module_level_flush_reports_a_refused_key(gateway: Gateway) -> None:
    client = voxloop.init(gateway.url, WRONG_KEY, config=FAST)
    try:
        voxloop.capture(channel="web", form="checkout", metric="nps", score=9)
        assert not voxloop.flush(timeout=10)
        error = client.last_error
        assert isinstance(error, voxloop.Rejected) and error.status == 401
        voxloop.capture(channel="web", form="checkout", metric="nps", score=9)
    finally:
        assert not voxloop.close()  # the second event was refused too
    assert isinstance(client.last_error, voxloop.Rejected)


async def test_a_partly_refused_batch_makes_flush_false_and_the_next_good_one_true(
    gateway: Gateway, twin: MakeTwin
) -> None:
    client = twin(gateway.url, gateway.server_key)
    form = unique_form()
    await client.capture(form=form)
    bad = await client.capture(form=form, channel="sms")
    assert not await client.flush()
    error = client.client.last_error
    assert isinstance(error, voxloop.Rejected) and error.ids == (bad,)
    assert error.field == "channel"
    await client.capture(form=form)
    assert await client.flush()
    assert client.client.last_error is None
    assert counted(gateway, form) == 2


async def test_events_dropped_on_a_full_queue_make_flush_false(
    gateway: Gateway, twin: MakeTwin
) -> None:
    config = FAST.replace(queue_size=2, batching=voxloop.Batching(interval=5.0, max_events=100))
    client = twin(gateway.url, gateway.server_key, config=config)
    for _ in range(10):
        await client.capture()
    assert not await client.flush()
    error = client.client.last_error
    assert error is not None and "queue was full" in error.reason
    assert client.stats().dropped["queue_full"] > 0


async def test_events_given_up_make_flush_and_close_false(
    script: MakeScript, twin: MakeTwin
) -> None:
    server = script(answer(503), answer(503))
    config = FAST.replace(retry=voxloop.Retry(attempts=2, backoff=0.05, jitter=0.0))
    client = twin(server.url, "sk_test", config=config)
    ids = [await client.capture() for _ in range(2)]
    assert not await client.flush()
    error = client.client.last_error
    assert isinstance(error, voxloop.GaveUp) and error.ids == tuple(ids)
    assert "HTTP 503" in error.reason
    await client.capture()
    assert await client.close()  # the script now answers 202


# --- the gateway can't be reached -------------------------------------------------------------


async def test_flush_is_false_while_the_gateway_is_down_and_the_warning_says_why(
    tmp_path: Path, twin: MakeTwin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voxloop")
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    first = serve(tmp_path / "gw")
    key = first.server_key
    first.stop()
    client = twin(origin, key)
    form = unique_form()
    ids = [await client.capture(form=form) for _ in range(3)]
    assert not await client.flush(timeout=0.5)
    error = client.client.last_error
    assert error is not None and not isinstance(error, voxloop.Rejected | voxloop.GaveUp)
    assert "within 0.5 s" in error.reason
    assert f"connection refused by {origin}" in error.reason
    assert sorted(error.ids) == sorted(ids)
    warned = records(caplog, logging.WARNING, f"connection refused by {origin}")
    assert len(warned) == 1, warned  # once for the outage; its retries are INFO
    assert records(caplog, logging.INFO, f"connection refused by {origin}")
    assert key not in caplog.text

    gateway = serve(tmp_path / "gw", port=port)
    try:
        assert await client.flush(timeout=15)
        assert client.client.last_error is None
        assert counted(gateway, form) == 3
        assert records(caplog, logging.INFO, "answers again")
    finally:
        gateway.stop()


async def test_flush_says_when_the_first_attempt_is_still_on_its_way(
    script: MakeScript, twin: MakeTwin
) -> None:
    server = script(slow(1.0))
    client = twin(server.url, "sk_test")
    await client.capture()
    assert not await client.flush(timeout=0.2)
    error = client.client.last_error
    assert error is not None and "still on its way" in error.reason
    assert await client.flush(timeout=10)


# --- every network failure names its reason and the gateway, for each transport --------------


def _reset_server() -> tuple[str, Callable[[], None]]:
    """A server that reads a request, then resets the connection (RST, no answer)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def serve_forever() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.settimeout(2)
            try:
                conn.recv(65536)
            except OSError:
                pass
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        listener.close()
        thread.join(2)

    return f"http://127.0.0.1:{listener.getsockname()[1]}", stop


@pytest.fixture
def situation(
    request: pytest.FixtureRequest, script: MakeScript
) -> Iterator[tuple[str, tuple[str, ...]]]:
    """``(endpoint, what the reason may start with)`` for one kind of network failure."""
    kind = request.param
    if kind == "refused":
        url = f"http://127.0.0.1:{free_port()}"
        yield url, (f"connection refused by {url}",)
    elif kind == "read-timeout":
        url = script(slow(1.5)).url
        yield url, (f"timed out waiting for {url} after 0.3 s",)
    elif kind == "reset":
        url, stop = _reset_server()
        # httpx reads a reset as an end of file, and says no more than that.
        yield url, (f"connection reset by {url}", f"{url} closed the connection without answering")
        stop()
    elif kind == "closed":
        url = script(drop()).url
        yield url, (f"{url} closed the connection without answering",)
    else:
        url = "http://voxloop-gateway.invalid:8080"
        yield url, (f"can't resolve the host of {url}: ",)


@pytest.mark.parametrize("transport", ["stdlib", "httpx", "async-httpx"])
@pytest.mark.parametrize(
    "situation", ["refused", "read-timeout", "reset", "closed", "dns"], indirect=True
)
def test_a_network_failure_names_its_reason_and_the_gateway(
    transport: str, situation: tuple[str, tuple[str, ...]]
) -> None:
    url, expected = situation
    timeout = voxloop.Timeout(connect=2.0, read=0.3)
    body = b'{"events":[]}'
    with pytest.raises(voxloop.TransportError) as caught:
        if transport == "stdlib":
            stdlib = voxloop.HTTPTransport(url, WRONG_KEY, timeout=timeout)
            try:
                stdlib.send(body)
            finally:
                stdlib.close()
        elif transport == "httpx":
            sync = voxloop.HttpxTransport(url, WRONG_KEY, timeout=timeout)
            try:
                sync.send(body)
            finally:
                sync.close()
        else:
            asynchronous = voxloop.AsyncHttpxTransport(url, WRONG_KEY, timeout=timeout)

            async def send() -> None:
                try:
                    await asynchronous.send(body)
                finally:
                    await asynchronous.aclose()

            asyncio.run(send())
    assert caught.value.reason.startswith(expected), caught.value.reason
    assert WRONG_KEY not in caught.value.reason
