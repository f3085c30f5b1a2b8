"""A fresh PostgreSQL database (or schema) per test, and a TCP relay that can cut the gateway
off from it.

The server is ``VOXLOOP_TEST_PG``'s (see tests/postgres.py).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.postgres import PG_URL, require_postgres

BASE_URL = PG_URL


def with_database(url: str, database: str, port: int | None = None) -> str:
    """``url`` naming ``database`` (and ``port``) instead of its own."""
    parts = urlsplit(url)
    netloc = parts.netloc if port is None else f"{parts.netloc.rsplit(':', 1)[0]}:{port}"
    return urlunsplit(parts._replace(path=f"/{database}", netloc=netloc))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(BASE_URL, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    require_postgres()
    name = f"voxloop_t_{secrets.token_hex(6)}"
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    yield with_database(BASE_URL, name)
    asyncio.run(_admin(f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """The URL of ``VOXLOOP_TEST_PG``'s database with a new, empty schema as its search path
    (asyncpg sends the URL's other parameters as settings), dropped after the test.

    For tests of the control plane alone, which names no schema: its tables are made in the
    first one of the search path. A schema takes milliseconds to make, a database a third of a
    second.
    """
    require_postgres()
    name = f"voxloop_t_{secrets.token_hex(6)}"
    asyncio.run(_admin(f"CREATE SCHEMA {name}"))
    separator = "&" if urlsplit(BASE_URL).query else "?"
    yield f"{BASE_URL}{separator}search_path={name}"
    asyncio.run(_admin(f"DROP SCHEMA {name} CASCADE"))


class Relay:
    """A TCP relay on loopback to PostgreSQL that can be cut (as if the server went away).

    ``cut()`` closes every relayed connection and refuses new ones; ``mend()`` accepts again.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.open = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.open = False
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._sockets.clear()

    def mend(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def relay() -> Iterator[Relay]:
    parts = urlsplit(BASE_URL)
    made = Relay(parts.hostname or "127.0.0.1", parts.port or 5432)
    yield made
    made.close()
