"""Real parts for the SDK's tests: a gateway on loopback, a scripted HTTP server, both clients.

- ``gateway``: the real gateway (Starlette under uvicorn) in a thread, over real SQLite files,
  with project ``shop``; ``serve()`` starts one on a chosen port, for "down, then up" tests.
- ``Script``: a small real HTTP server that answers as told (429 with ``Retry-After``, 503, 500,
  a slow answer, a dropped connection, then 202) and records every request: when, and which
  event ids it carried.
- ``twin``: the sync :class:`voxloop.Client` or the :class:`voxloop.AsyncClient` behind one
  awaitable face, so each behavioural test runs against both (ids ``sync`` and ``async``).
"""

from __future__ import annotations

import gzip
import inspect
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import voxloop
from tests.gateway.conftest import Gateway, free_port, make_project, start_gateway

#: Small and fast settings for tests: short batching, quick exact backoff.
FAST = voxloop.Config(
    batching=voxloop.Batching(interval=0.05, jitter=0.0),
    retry=voxloop.Retry(attempts=50, backoff=0.05, cap=0.2, jitter=0.0),
    timeout=voxloop.Timeout(connect=2.0, read=5.0),
    flush_timeout=10.0,
    flush_at_exit=False,
)


def serve(data_dir: Path, port: int = 0, **settings: Any) -> Gateway:
    """A gateway for project ``shop`` in ``data_dir`` on ``port`` (0: any free one)."""
    keys = data_dir / "keys.json"
    if keys.exists():
        site, server = json.loads(keys.read_text())
    else:
        site, server = make_project(data_dir)
        keys.write_text(json.dumps([site, server]))
    return start_gateway(data_dir, site, server, port=port, drain_seconds=0, **settings)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    """A running gateway for project ``shop``."""
    running = serve(tmp_path / "gateway")
    yield running
    running.stop()


def counted(gateway: Gateway, form: str, metric: str = "nps") -> int:
    """How many events the gateway's stats count for ``form``."""
    count: int = gateway.stats(metric=metric, form=form)["total"]["count"]
    return count


def unique_form() -> str:
    return f"f-{uuid.uuid4().hex[:12]}"


# --- a scripted HTTP server -------------------------------------------------------------------


@dataclass
class Hit:
    """One request the scripted server received."""

    at: float
    ids: list[str]
    headers: dict[str, str]
    body: dict[str, Any] = field(repr=False)
    raw: bytes = field(repr=False, default=b"")


Action = Callable[[BaseHTTPRequestHandler, "Hit"], None]


def answer(status: int, headers: dict[str, str] | None = None, body: Any = None) -> Action:
    """Answer ``status`` with JSON ``body`` (default: everything accepted, for a 2xx)."""

    def act(handler: BaseHTTPRequestHandler, hit: Hit) -> None:
        payload = body
        if payload is None and 200 <= status < 300:
            payload = {"accepted": len(hit.ids), "duplicates": 0, "rejected": []}
        if payload is None:
            payload = {"error": f"scripted {status}"}
        data = json.dumps(payload).encode()
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return act


def slow(seconds: float, then: Action | None = None) -> Action:
    """Answer after ``seconds`` (beyond the client's read timeout, it sees no answer)."""

    def act(handler: BaseHTTPRequestHandler, hit: Hit) -> None:
        time.sleep(seconds)
        try:
            (then or answer(202))(handler, hit)
        except OSError:
            handler.close_connection = True

    return act


def drop() -> Action:
    """Read the request, then close the connection without a word."""

    def act(handler: BaseHTTPRequestHandler, hit: Hit) -> None:
        handler.close_connection = True

    return act


def proxy(url: str, *, lose_answer: bool = False) -> Action:
    """Pass the request on to the gateway at ``url``; with ``lose_answer``, then drop the
    connection instead of answering: the gateway has the events, the client doesn't know."""

    def act(handler: BaseHTTPRequestHandler, hit: Hit) -> None:
        names = ("authorization", "content-type", "content-encoding")
        headers = {name: hit.headers[name] for name in names if name in hit.headers}
        upstream = httpx.post(f"{url}/v1/events", content=hit.raw, headers=headers, timeout=10)
        if lose_answer:
            handler.close_connection = True
            return
        passed = {k: v for k, v in upstream.headers.items() if k.lower() == "retry-after"}
        answer(upstream.status_code, passed, upstream.json())(handler, hit)

    return act


class Script:
    """A real HTTP server on loopback answering each request with the next scripted action.

    After the script runs out it answers 202 (everything accepted). Requests are recorded in
    ``hits``, with their ids decoded from the (possibly gzipped) body.
    """

    def __init__(self, actions: list[Action] | None = None) -> None:
        self.actions = list(actions or [])
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        script = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                text = gzip.decompress(raw) if self.headers.get("Content-Encoding") else raw
                body = json.loads(text)
                hit = Hit(
                    time.monotonic(),
                    [event["id"] for event in body["events"]],
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    raw,
                )
                with script.lock:
                    script.hits.append(hit)
                    action = script.actions.pop(0) if script.actions else answer(202)
                action(self, hit)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def script() -> Iterator[Callable[..., Script]]:
    """Make scripted servers; each is stopped after the test."""
    made: list[Script] = []

    def make(*actions: Action) -> Script:
        server = Script(list(actions))
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


# --- both clients behind one face --------------------------------------------------------------


class Twin:
    """A sync or async client behind awaitable methods, so one test drives either."""

    def __init__(self, client: voxloop.Client | voxloop.AsyncClient) -> None:
        self.client = client

    @property
    def kind(self) -> str:
        return "async" if isinstance(self.client, voxloop.AsyncClient) else "sync"

    async def capture(self, **fields: Any) -> str:
        fields = {"channel": "web", "form": "checkout", "metric": "nps", "score": 9, **fields}
        result = self.client.capture(**fields)
        event_id: str = await result if inspect.isawaitable(result) else result
        return event_id

    async def flush(self, timeout: float | None = None) -> bool:
        result = self.client.flush(timeout)
        done: bool = await result if inspect.isawaitable(result) else result
        return done

    async def close(self, timeout: float | None = None) -> bool:
        if isinstance(self.client, voxloop.AsyncClient):
            return await self.client.aclose(timeout)
        return self.client.close(timeout)

    def stats(self) -> voxloop.Stats:
        return self.client.stats()


MakeTwin = Callable[..., Twin]


@pytest.fixture(params=["sync", "async"])
async def twin(request: pytest.FixtureRequest) -> AsyncIterator[MakeTwin]:
    """``twin(endpoint, key, **client_kwargs)``: a client of the parametrised kind.

    ``config`` defaults to :data:`FAST`. Clients left open are closed after the test.
    """
    made: list[Twin] = []

    def make(endpoint: str, key: str, **kwargs: Any) -> Twin:
        kwargs.setdefault("config", FAST)
        cls = voxloop.AsyncClient if request.param == "async" else voxloop.Client
        made.append(Twin(cls(endpoint, key, **kwargs)))
        return made[-1]

    yield make
    for client in made:
        if not client.client.closed:
            await client.close(timeout=0.2)


__all__ = [
    "FAST",
    "Gateway",
    "Hit",
    "MakeTwin",
    "Script",
    "Twin",
    "answer",
    "counted",
    "drop",
    "free_port",
    "proxy",
    "serve",
    "slow",
    "unique_form",
]
