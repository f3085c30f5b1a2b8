"""``voxloop.web``: the relay served for real (ASGI under uvicorn, WSGI under wsgiref) in front
of a real gateway, posted to like the widget does."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
import uvicorn

from tests.sdk.conftest import Gateway, counted, free_port, serve, unique_form
from voxloop import MockTransport, Response, TransportError, new_id
from voxloop.web import Relay, Request, asgi_app, wsgi_app

PAGE = "https://shop.example.com/checkout/done"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"
WIDGET = {"Referer": f"{PAGE}?order=123#top", "User-Agent": AGENT}


def event(form: str, **fields: Any) -> dict[str, Any]:
    return {"id": new_id(), "channel": "web", "form": form, "metric": "nps", "score": 9, **fields}


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve_asgi(relay: Relay) -> tuple[str, Callable[[], None]]:
    config = uvicorn.Config(asgi_app(relay), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the relay did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


def _serve_wsgi(relay: Relay) -> tuple[str, Callable[[], None]]:
    server: WSGIServer = make_server("127.0.0.1", 0, wsgi_app(relay), handler_class=_Quiet)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    return f"http://127.0.0.1:{server.server_port}", stop


Serve = Callable[..., str]


@pytest.fixture(params=["asgi", "wsgi"])
def relay(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """``relay(endpoint, key, **options)``: the URL of a relay served over the chosen face."""
    stops: list[Callable[[], None]] = []
    made: list[Relay] = []

    def start(endpoint: str, key: str, **options: Any) -> str:
        made.append(Relay(endpoint, key, **options))
        url, stop = (_serve_asgi if request.param == "asgi" else _serve_wsgi)(made[-1])
        stops.append(stop)
        return url

    yield start
    for stop in stops:
        stop()
    for one in made:
        one.close()


def post(url: str, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **WIDGET, **headers}
    return httpx.post(url, content=content, headers=headers, timeout=10)


def stored_meta(gateway: Gateway, event_id: str) -> dict[str, Any]:
    with sqlite3.connect(gateway.data_dir / "stores" / "web.sqlite3") as db:
        row = db.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
    assert row is not None, f"event {event_id} is not stored"
    meta: dict[str, Any] = json.loads(row[0]).get("meta", {})
    return meta


def test_relays_with_page_and_user_agent_and_counts_a_retry_once(
    gateway: Gateway, relay: Serve
) -> None:
    url = relay(gateway.url, gateway.server_key)
    form = unique_form()
    events = [event(form), event(form, meta={"plan": "pro"})]

    answer = post(url, {"events": events})
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert counted(gateway, form) == 2
    # The query and fragment of the page never reach the store.
    assert stored_meta(gateway, events[0]["id"]) == {"page": PAGE, "user_agent": AGENT}
    assert stored_meta(gateway, events[1]["id"]) == {
        "plan": "pro",
        "page": PAGE,
        "user_agent": AGENT,
    }

    again = post(url, {"events": events})
    assert again.status_code == 202, again.text
    assert again.json()["duplicates"] == 2
    assert counted(gateway, form) == 2


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        ({"events": [event("f", channel="app")]}, {}, 403, "'app'"),
        ({"events": [event("f", channel="email")]}, {}, 403, "'email'"),
        (b'{"events": [' + b" " * (1024 * 1024) + b"]}", {}, 413, "at most"),
        ({"events": [event("f")] * 1001}, {}, 413, "1000 events"),
        ({"events": [event("f")]}, {"Content-Type": "text/plain"}, 415, "application/json"),
        (b'{"events": [', {}, 400, "not JSON"),
        ({"event": []}, {}, 400, '{"events"'),
    ],
    ids=[
        "other-channel",
        "email-channel",
        "too-large",
        "too-many",
        "not-json-type",
        "malformed",
        "not-a-batch",
    ],
)
def test_refuses(
    gateway: Gateway, relay: Serve, body: Any, headers: dict[str, str], status: int, says: str
) -> None:
    url = relay(gateway.url, gateway.server_key)
    answer = post(url, body, **headers)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]
    assert gateway.stats(metric="nps", form="f")["total"]["count"] == 0


def test_limits_each_visitor(gateway: Gateway, relay: Serve) -> None:
    url = relay(gateway.url, gateway.server_key, visitor_rate=0.01, visitor_burst=3)
    form = unique_form()
    statuses = [post(url, {"events": [event(form)]}).status_code for _ in range(3)]
    assert statuses == [202, 202, 202]
    limited = post(url, {"events": [event(form)]})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert counted(gateway, form) == 3


def test_gateway_down_is_503_then_the_same_ids_count_once(tmp_path: Path, relay: Serve) -> None:
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "gateway"
    started = serve(data_dir)  # make the project and its keys, then stop
    started.stop()
    url = relay(gateway_url, started.server_key)
    form = unique_form()
    batch = {"events": [event(form, comment="lovely")]}

    down = post(url, batch)
    assert down.status_code == 503
    assert int(down.headers["Retry-After"]) >= 1

    gateway = serve(data_dir, port)
    try:
        assert post(url, batch).status_code == 202
        assert post(url, batch).json()["duplicates"] == 1
        assert counted(gateway, form) == 1
    finally:
        gateway.stop()


# --- the core alone, through a transport that records what it would send ---------------------


def _relayed(body: dict[str, Any], **headers: str) -> dict[str, Any]:
    sent: list[bytes] = []

    def handler(batch: bytes) -> Response:
        sent.append(batch)
        return Response(202, {"content-type": "application/json"}, b"{}")

    relay = Relay("https://gw.example.com", "sk_test", transport=MockTransport(handler))
    request = Request("POST", {"content-type": "application/json", **headers}, "192.0.2.1")
    answer = relay.handle(request, json.dumps(body).encode())
    assert answer.status == 202, answer.body
    result: dict[str, Any] = json.loads(sent[0])
    return result


def test_meta_keeps_the_events_own_keys_and_its_32_key_limit() -> None:
    full = {f"k{i}": i for i in range(31)}
    body = {
        "events": [
            {"form": "f", "metric": "nps", "score": 1, "meta": full},
            {"form": "f", "metric": "nps", "score": 1, "meta": {"page": "mine"}},
            {"form": "f", "metric": "nps", "score": 1, "page": "https://a.example/x?q=1"},
        ]
    }
    sent = _relayed(body, referer=PAGE, **{"user-agent": "x" * 600})["events"]
    assert sent[0]["channel"] == "web"  # the relay's channel when the event names none
    assert sent[0]["meta"] == {**full, "page": PAGE}  # 32 keys: no room for the user agent
    assert sent[1]["meta"] == {"page": "mine", "user_agent": "x" * 512}
    assert "page" not in sent[2]  # moved into meta, where the contract allows it
    assert sent[2]["meta"]["page"] == "https://a.example/x"


def test_unreachable_gateway_answers_503_with_retry_after() -> None:
    def handler(batch: bytes) -> Response:
        raise TransportError("connection refused")

    relay = Relay("https://gw.example.com", "sk_test", transport=MockTransport(handler))
    request = Request("POST", {"content-type": "application/json"}, "192.0.2.1")
    answer = relay.handle(request, b'{"events": []}')
    assert answer.status == 503
    assert ("retry-after", "5") in answer.headers


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"content-length": "²"}, b"{}", 400),
        ({}, b"[" * 100_000 + b"]" * 100_000, 400),
        ({}, json.dumps({"events": [event("f", channel=["web"])]}).encode(), 403),
        ({"content-encoding": "gzip"}, b"", 415),
        ({"origin": "https://evil.example"}, b'{"events": []}', 403),
    ],
    ids=["odd-length", "deeply-nested", "channel-not-a-string", "compressed", "foreign-origin"],
)
def test_core_refuses_without_sending(headers: dict[str, str], body: bytes, status: int) -> None:
    def handler(batch: bytes) -> Response:
        raise AssertionError("nothing should be sent")

    relay = Relay(
        "https://gw.example.com",
        "sk_test",
        origins=["https://shop.example.com"],
        transport=MockTransport(handler),
    )
    request = Request("POST", {"content-type": "application/json", **headers}, "192.0.2.1")
    answer = relay.handle(request, body)
    assert answer.status == status, answer.body
    assert "error" in json.loads(answer.body)
