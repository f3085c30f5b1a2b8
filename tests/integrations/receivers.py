"""What the webhook tests share: a real HTTP receiver on loopback, and a control plane to fill.

:class:`Receiver` is a small ASGI app served by uvicorn in a thread of the test process, on a
loopback port that can be stopped and started again (a receiver that goes down and comes back).
It keeps every request it got and answers as its ``answer`` function says: a status, after a
delay, with a body (``endless`` streams one that never ends, until the client hangs up).

:class:`Control` is a control-plane database with projects ``shop`` and ``cafe``, on a SQLite
file or a PostgreSQL schema, and more connections to it as other replicas would have.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from standardwebhooks.webhooks import Webhook

from voxloop_gateway.control import schema, tables
from voxloop_gateway.control.db import Database
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.integrations import outbox
from voxloop_gateway.settings import Settings

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@dataclass(frozen=True)
class Received:
    """One request a receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def signatures(self) -> list[str]:
        return self.headers["webhook-signature"].split(" ")

    def payload(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found


@dataclass(frozen=True)
class Answer:
    """How a receiver answers one request."""

    status: int = 200
    body: bytes = b"ok"
    delay_s: float = 0.0
    endless: bool = False


def always(status: int, **options: Any) -> Callable[[Received], Answer]:
    return lambda _got: Answer(status, **options)


@dataclass
class Receiver:
    """A webhook receiver on ``127.0.0.1``; ``port`` 0 takes a free one at the first start."""

    port: int = 0
    answer: Callable[[Received], Answer] = field(default=always(200))
    ssl_files: tuple[Path, Path] | None = None
    got: list[Received] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_files else "http"
        return f"{scheme}://127.0.0.1:{self.port}/hook"

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.got)

    def ids(self) -> list[str]:
        return [r.id for r in self.received()]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender went away mid-request (a gateway killed): nothing arrived
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        got = Received(scope["path"], headers, body)
        with self._lock:
            self.got.append(got)
        answer = self.answer(got)
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        if not answer.endless:
            await send({"type": "http.response.body", "body": answer.body})
            return
        hung_up = asyncio.ensure_future(receive())  # http.disconnect, when the client goes
        chunk = answer.body * (65536 // max(1, len(answer.body)))
        try:
            while not hung_up.done():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await asyncio.sleep(0)
        finally:
            hung_up.cancel()

    def start(self) -> Receiver:
        keyfile, certfile = (None, None)
        if self.ssl_files is not None:
            certfile, keyfile = (str(p) for p in self.ssl_files)
        config = uvicorn.Config(
            self,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            lifespan="off",
            http="h11",
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "the receiver failed to start"
            assert time.monotonic() < deadline, "the receiver took too long to start"
            time.sleep(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True  # an endless answer must not hold the stop
        self._thread.join(timeout=20)
        assert not self._thread.is_alive(), "the receiver did not stop"
        self._server = self._thread = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver answering 200 to everything; change its ``answer`` to change that."""
    running = Receiver().start()
    yield running
    running.stop()


class Control:
    """A control plane with projects ``shop`` and ``cafe``; ``db`` is one replica's database."""

    def __init__(self, data_dir: Path, where: str) -> None:
        self.data_dir, self.where = data_dir, where
        self.registry = Registry(data_dir, where)
        self.opened: list[Database] = [self.registry.db]
        if where != "sqlite":
            schema.migrate(self.registry.db)
        self.registry.create_project("shop", ["kiosk"])
        self.registry.create_project("cafe")
        self.db = self.registry.db

    def replica(self) -> Database:
        """Another connection to the same database, as another gateway process has."""
        db = Database(self.data_dir, self.where)
        self.opened.append(db)
        return db

    def settings(self, **options: Any) -> Settings:
        """The settings of the tests: loopback allowed, a short timeout, unless given."""
        options.setdefault("webhook_allow", LOOPBACK)
        options.setdefault("webhook_timeout_s", 2.0)
        return Settings(data_dir=self.data_dir, **options)

    async def enqueue(
        self,
        data: dict[str, Any],
        now_ms: int,
        event_type: str = "response.created",
        project: str = "shop",
    ) -> str:
        async def write(conn: AsyncConnection) -> str:
            return await outbox.enqueue(conn, project, event_type, data, now_ms)

        return await self.db.arun(write, write=True)

    async def rows(self, table: Any, *where: Any) -> list[Any]:
        """The rows of ``table`` (where ``where`` holds), as stored."""

        async def read(conn: AsyncConnection) -> list[Any]:
            return list((await conn.execute(select(table).where(*where))).all())

        return await self.db.arun(read)

    async def delivery(self, message: str, endpoint: str) -> Any:
        d = tables.webhook_deliveries
        found = await self.rows(d, d.c.message == message, d.c.endpoint == endpoint)
        assert len(found) == 1, found
        return found[0]

    def close(self) -> None:
        for db in self.opened:
            db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def control(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Control]:
    """The control plane, once on a SQLite file and once on PostgreSQL."""
    where = "sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    made = Control(tmp_path, where)
    yield made
    made.close()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def signed_with(secret: str, got: Received) -> bool:
    """Whether one of ``got``'s signatures is ``secret``'s, as the official package signs
    (whatever the timestamp's distance from now, which its ``verify`` also checks)."""
    stamp = datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(got.id, stamp, got.body.decode())
    return expected in got.signatures


def tls_files(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for the host ``name`` and its key, made with openssl."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def trusting(cert: Path) -> ssl.SSLContext:
    """A client's TLS context that trusts ``cert`` alone, and checks host names."""
    return ssl.create_default_context(cafile=str(cert))
