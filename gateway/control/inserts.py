"""Rows a transaction inserts into several tables, written a table at a time.

The rules' feed turns a batch of events into hundreds of rows (messages, deliveries, items and
their changes). A statement each costs a round trip to the database's thread and SQLAlchemy's
work on every one: about 2 ms an event. Kept here, each table's rows go in one ``executemany``
when the transaction is about to read what they might change, or to commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection


class Inserts:
    """Rows waiting to be inserted, by table.

    Tables are written in the order they were first given a row: a row's parent (the message
    of a delivery, the item of a change) is always given before it, so foreign keys hold at
    every statement. The rows of one table must all name the same columns.
    """

    def __init__(self) -> None:
        self._rows: dict[Table, list[Mapping[str, Any]]] = {}

    def add(self, table: Table, row: Mapping[str, Any]) -> None:
        """Keep ``row`` for ``table`` until :meth:`flush`."""
        self._rows.setdefault(table, []).append(row)

    async def flush(self, conn: AsyncConnection) -> None:
        """Insert every row kept, in ``conn``'s transaction, and forget them."""
        pending, self._rows = self._rows, {}
        for table, rows in pending.items():
            await conn.execute(insert(table), list(rows))


__all__ = ["Inserts"]
