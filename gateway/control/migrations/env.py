"""Alembic's environment for the control plane: the gateway's connection, or an async engine.

The gateway runs migrations itself (:mod:`..schema`) and hands over its connection, already in
a transaction, in ``config.attributes["connection"]``. Run by hand (``alembic -x url=...`` with
``script_location`` pointing here), this makes an async engine of that URL and runs the same
migrations through ``connection.run_sync``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from voxloop_gateway.control.tables import metadata

config = context.config


def run_migrations(connection: Connection) -> None:
    """The migrations on ``connection``, SQLite's table changes made by copy-and-move."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async(url: str) -> None:
    """The migrations on a connection of a new async engine for ``url``."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


given = config.attributes.get("connection")
if context.is_offline_mode():
    raise SystemExit("the control plane's migrations run on a database, not as SQL text")
if given is not None:
    run_migrations(given)
else:
    asyncio.run(run_async(context.get_x_argument(as_dictionary=True)["url"]))
