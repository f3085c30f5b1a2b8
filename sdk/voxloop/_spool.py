"""The offline spool: a SQLite file holding every event until the gateway acknowledges it.

Opt-in with ``Config(spool_path=...)``. Events go from memory into the spool within one batching
interval of ``capture()``, and at the latest before ``flush()`` returns; they leave it only when
the gateway has answered for them (accepted, already known, or refused for good). A process that
dies in between, even by SIGKILL or power loss (``synchronous=FULL``), leaves them on disk, and
the next process with the same spool sends them. Exactly once follows from the ids: an event is
sent with the id it was captured with, however many times and by whichever process, and the
gateway counts an id once.

Several processes may share one spool (a pre-fork server's workers): each row belongs to the
process that wrote it, under a lease it renews while alive. Rows whose owner has exited, or whose
lease ran out, are adopted by the next process that looks, so nothing is stranded and two live
processes don't send the same rows.

The file holds comments and other personal data, so it is created readable by its owner only.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from ._errors import ConfigError

__all__ = ["Spool", "SpoolError"]

logger = logging.getLogger("voxloop")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL,
    owner INTEGER NOT NULL,
    lease_until REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_owner ON events (owner, seq);
"""
#: Seconds a process's claim on its rows lasts without renewal; renewed every third of it.
LEASE_SECONDS: Final = 60.0
#: SQLite's limit of parameters per statement is 32,766 in current builds, 999 in old ones.
_CHUNK: Final = 500
#: Connections inherited across fork: never used again, never closed (closing one in the child
#: could checkpoint or unlink the parent's write-ahead log), only kept from the collector.
_inherited: list[sqlite3.Connection] = []


class SpoolError(Exception):
    """The spool file can't be read or written (disk full, permissions, corruption)."""


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (POSIX); elsewhere, trust the lease."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """Events not yet acknowledged, durable in one SQLite file. Thread-safe.

    Args:
        path: the SQLite file; created (owner-only) with its directory if missing.
        lease: seconds a process's claim on its rows lasts without renewal.

    Raises:
        ConfigError: the file can't be created or opened as a spool.
    """

    def __init__(self, path: str | os.PathLike[str], *, lease: float = LEASE_SECONDS) -> None:
        self.path = Path(path)
        self._lease = lease
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._maintained_at = float("-inf")
        try:
            with self._lock:
                self._connect()
        except SpoolError as exc:
            raise ConfigError(f"spool_path {str(self.path)!r}: {exc}") from None

    def put(self, events: Sequence[tuple[str, bytes]]) -> None:
        """Store ``(id, json)`` events, durably, before returning; ids already held are kept."""
        if not events:
            return
        until = time.time() + self._lease
        with self._lock:
            self._write(
                "INSERT OR IGNORE INTO events (id, body, owner, lease_until) VALUES (?, ?, ?, ?)",
                [(event_id, body, self._pid, until) for event_id, body in events],
            )

    def take(self, max_events: int, max_bytes: int) -> list[tuple[str, bytes]]:
        """The oldest events of this process, at most ``max_events`` and about ``max_bytes``.

        They stay in the spool until :meth:`delete`. At least one event is returned when any is
        held, however large.
        """
        with self._lock:
            self._maintain_if_due()
            rows = self._read(
                "SELECT id, body FROM events WHERE owner = ? ORDER BY seq LIMIT ?",
                (self._pid, max_events),
            )
        taken: list[tuple[str, bytes]] = []
        size = 0
        for event_id, body in rows:
            size += len(body) + 1
            if taken and size > max_bytes:
                break
            taken.append((str(event_id), bytes(body)))
        return taken

    def delete(self, ids: Sequence[str]) -> None:
        """Forget the events ``ids``: the gateway has answered for them."""
        if not ids:
            return
        with self._lock:
            db = self._connect()
            try:
                db.execute("BEGIN IMMEDIATE")
                for start in range(0, len(ids), _CHUNK):
                    chunk = ids[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    db.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(db)
                raise SpoolError(str(exc)) from None

    def pending(self) -> int:
        """How many events of this process the spool holds."""
        with self._lock:
            rows = self._read("SELECT count(*) FROM events WHERE owner = ?", (self._pid,))
        count: int = rows[0][0]
        return count

    def maintain(self) -> None:
        """Renew this process's lease and adopt rows of exited processes or lapsed leases."""
        with self._lock:
            self._maintained_at = float("-inf")
            self._maintain_if_due()

    def close(self) -> None:
        """Close the file; events not yet acknowledged stay in it for the next process."""
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    # --- under self._lock -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            if self._db is not None:
                _inherited.append(self._db)
            self._db, self._pid = None, os.getpid()
            self._maintained_at = float("-inf")
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
                db = sqlite3.connect(
                    self.path, timeout=10.0, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode=WAL")
                # FULL: a commit is on disk when put() returns, through a power loss too.
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise SpoolError(f"can't open the spool: {exc}") from None
            self._db = db
        return self._db

    def _write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(sql, rows)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(db)
            raise SpoolError(str(exc)) from None

    def _read(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            return self._connect().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise SpoolError(str(exc)) from None

    def _maintain_if_due(self) -> None:
        now = time.time()
        if now - self._maintained_at < self._lease / 3:
            return
        db = self._connect()
        until = now + self._lease
        try:
            owners = [
                int(owner)
                for (owner,) in db.execute(
                    "SELECT DISTINCT owner FROM events WHERE owner != ?", (self._pid,)
                )
            ]
            gone = [owner for owner in owners if not _alive(owner)]
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE events SET lease_until = ? WHERE owner = ?", (until, self._pid))
            marks = ",".join("?" * len(gone[:_CHUNK]))
            adopted = db.execute(
                "UPDATE events SET owner = ?, lease_until = ?"
                f" WHERE owner != ? AND (lease_until < ? OR owner IN ({marks}))",
                (self._pid, until, self._pid, now, *gone[:_CHUNK]),
            ).rowcount
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(db)
            raise SpoolError(str(exc)) from None
        self._maintained_at = now
        if adopted:
            logger.info("voxloop: took over %d unsent event(s) from the spool", adopted)


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
