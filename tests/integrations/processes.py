"""Whole gateway processes for the end-to-end tests of the loop: started, posted to, killed.

:func:`serve` runs ``voxloop-gateway serve`` as a process of its own (the ``spawn`` fixture) on
a loopback port, over a data dir's SQLite files or a PostgreSQL database, with webhooks to
loopback allowed; its background workers deliver what the tests check. :class:`Poster` keeps
posting while a test kills the process, and remembers what was acknowledged. What a receiver
got is read through :func:`verified`: every request verified with the official
``standardwebhooks`` package. :class:`ControlPlane` reads the gateway's control plane from the
test's side (and moves a due time, as only a clock could), :func:`stored_ids` its SQLite
stores, and :func:`eventually` waits for something with a deadline.
"""

from __future__ import annotations

import itertools
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx
import pytest
from sqlalchemy import Executable, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from standardwebhooks.webhooks import Webhook

from tests.gateway.conftest import Command, Spawn, free_port, make_project, wait_ready
from voxloop_gateway.control.db import Database
from voxloop_gateway.control.registry import Registry

from .receivers import Receiver

#: What every gateway of these tests runs with: webhooks may reach loopback (the receivers'),
#: and an attempt takes at most 2 s, so a lease a killed gateway held runs out in 12 s.
LOOPBACK_WEBHOOKS: Final = {
    "VOXLOOP_WEBHOOK_ALLOW": "127.0.0.0/8",
    "VOXLOOP_WEBHOOK_TIMEOUT_S": "2",
}
#: How often a wait looks again.
POLL_S: Final = 0.05

_numbers = itertools.count(1)


def eventually(check: Callable[[], bool], seconds: float, what: Callable[[], str]) -> None:
    """Wait until ``check()`` holds, looking every :data:`POLL_S`; fail after ``seconds``
    saying ``what()`` (called then, so it tells how things stand at the deadline)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {what()}")
        time.sleep(POLL_S)


def rating(score: int, **fields: Any) -> dict[str, Any]:
    """A new NPS event (an id of its own) on ``web`` for form ``checkout``, with ``fields``."""
    return {
        "id": str(uuid.uuid4()),
        "channel": "web",
        "form": "checkout",
        "metric": "nps",
        "score": score,
        "respondent": f"person-{next(_numbers)}",
        **fields,
    }


# --- setting up and running gateways ----------------------------------------------------------


def store_flags(store: str) -> tuple[str, ...]:
    """The global flags that name ``store`` (none for the data dir's SQLite files)."""
    return () if store == "sqlite" else ("--store", store)


def make_shop(data_dir: Path, store: str = "sqlite") -> str:
    """Project ``shop`` (channels web, app, email, kiosk) in ``store``; its server key.

    On PostgreSQL the database must be migrated already (``voxloop-gateway migrate``).
    """
    if store == "sqlite":
        return make_project(data_dir)[1]
    registry = Registry(data_dir, store)
    try:
        registry.create_project("shop", ["kiosk"])
        server, _ = registry.create_key("shop", "server")
    finally:
        registry.close()
    return server


def add_endpoint(
    command: Command, data_dir: Path, url: str, *events: str, store: str = "sqlite"
) -> str:
    """``voxloop-gateway webhooks add shop URL --event ...``: the endpoint's ``whsec_`` secret."""
    flags = ("--data-dir", str(data_dir), *store_flags(store))
    chosen = [arg for event in events for arg in ("--event", event)]
    added = command(*flags, "webhooks", "add", "shop", url, *chosen, env=LOOPBACK_WEBHOOKS)
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_"), added.stdout
    return secret


@dataclass
class Served:
    """A gateway process serving project ``shop`` at ``url``; its output goes to ``log``."""

    url: str
    process: subprocess.Popen[str]
    server_key: str
    log: Path

    def post(self, events: list[dict[str, Any]]) -> httpx.Response:
        with httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.server_key}"}, timeout=10
        ) as client:
            return client.post("/v1/events", json={"events": events})

    def accept(self, events: list[dict[str, Any]]) -> None:
        """Post ``events``; each must be accepted (202, none rejected or known already)."""
        answer = self.post(events)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"accepted": len(events), "duplicates": 0, "rejected": []}

    def ready(self) -> Served:
        """Wait until it answers ``/readyz`` with 200; fail with its output if it exits."""
        try:
            wait_ready(self.url, self.process)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.tail()}") from None
        return self

    def alive(self) -> bool:
        """True while the process runs; a failure showing its output once it has exited."""
        assert self.process.poll() is None, (
            f"the gateway exited with status {self.process.returncode}: {self.tail()}"
        )
        return True

    def tail(self, lines: int = 30) -> str:
        """The end of what the gateway wrote, for a failure's message."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: the process ends at once, whatever it was doing (nothing drains)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def serve(
    spawn: Spawn,
    data_dir: Path,
    server_key: str,
    *,
    store: str = "sqlite",
    log: Path,
    ready: bool = True,
) -> Served:
    """``voxloop-gateway serve`` on a free loopback port, ready (``/readyz``) when returned;
    with ``ready=False`` just started (replicas start together, then :meth:`Served.ready`)."""
    port = free_port()
    with log.open("a") as output:  # the child has its own copy of the descriptor
        process = spawn(
            data_dir,
            *store_flags(store),
            "serve",
            "--port",
            str(port),
            env=LOOPBACK_WEBHOOKS,
            stderr=output,
        )
    served = Served(f"http://127.0.0.1:{port}", process, server_key, log)
    return served.ready() if ready else served


@dataclass
class Poster:
    """Posts batches of new events to a gateway until stopped or the gateway is gone.

    ``acked`` holds the ids of every event of a batch answered 202: those the gateway promised
    to keep. A batch cut off by the gateway's death is in neither list: it may or may not have
    been stored.
    """

    served: Served
    batch: int = 3
    pause_s: float = 0.05
    most: int = 400
    acked: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Poster:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=20)
            assert not self._thread.is_alive(), "the poster did not stop"

    def _run(self) -> None:
        for n in range(self.most):  # bounded, whatever happens
            if self._stop.is_set():
                return
            events = [
                rating(9 if k % 2 else 3, channel=("web", "app")[(n + k) % 2])
                for k in range(self.batch)
            ]
            try:
                answer = self.served.post(events)
            except httpx.TransportError:
                return  # the gateway is gone
            if answer.status_code == 202:
                self.acked.extend(event["id"] for event in events)
            time.sleep(self.pause_s)


# --- what came of it --------------------------------------------------------------------------


def verified(receiver: Receiver, secret: str) -> dict[str, dict[str, Any]]:
    """Every message ``receiver`` got, by its ``webhook-id``: the payload that the official
    ``standardwebhooks`` package verified (signature and timestamp) on each request. A
    webhook-id that came more than once came with the same body each time."""
    bodies: dict[str, bytes] = {}
    payloads: dict[str, dict[str, Any]] = {}
    checker = Webhook(secret)
    for got in receiver.received():
        payloads[got.id] = checker.verify(got.body, got.headers)
        first = bodies.setdefault(got.id, got.body)
        assert got.body == first, f"{got.id} came again with another body"
    return payloads


def stored_ids(data_dir: Path) -> set[str]:
    """The ids of every event in the data dir's SQLite stores, read as the files hold them."""
    found: set[str] = set()
    for path in sorted((data_dir / "stores").glob("*.sqlite3")):
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            found.update(i for (i,) in connection.execute("SELECT id FROM events"))
        finally:
            connection.close()
    return found


class ControlPlane:
    """The control plane a gateway uses, read (and written) from the test's side."""

    def __init__(self, data_dir: Path, store: str = "sqlite") -> None:
        self.db = Database(data_dir, store)

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.db.close()

    def rows(self, table: Any, *where: Any) -> list[Any]:
        async def read(conn: AsyncConnection) -> list[Any]:
            return list((await conn.execute(select(table).where(*where))).all())

        return self.db.run(read)

    def count(self, table: Any, *where: Any) -> int:
        async def read(conn: AsyncConnection) -> int:
            found = await conn.execute(select(func.count()).select_from(table).where(*where))
            return int(found.scalar_one())

        return self.db.run(read)

    def execute(self, statement: Executable) -> None:
        async def write(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        self.db.run(write, write=True)


@pytest.fixture
def resting_receiver() -> Iterator[Receiver]:
    """A receiver with a port of its own that is not listening yet: down until ``start()``."""
    made = Receiver(port=free_port())
    yield made
    made.stop()
