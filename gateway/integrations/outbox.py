"""The outbox: what integrations must hear of, written in the transaction of its cause.

A message is one thing that happened (``followup.created``, ``alert.fired``...), with one id
that every delivery attempt of it carries (the ``webhook-id`` of the Standard Webhooks
headers), so a receiver can drop a repeat. :func:`enqueue` writes the message and a pending
delivery to each of the project's enabled endpoints that take its type, on the connection the
caller's transaction holds: if the cause rolls back, so does the message, and if it commits, the
message is on disk before anyone is told of the cause. :func:`enqueue_email` does the same for an
email. Workers (``webhooks``, ``mail``) deliver them later, at least once.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..control import tables
from ..control.inserts import Inserts
from ..reading.formats import rfc3339

#: Every type of event an endpoint may take, in the order the docs list them.
EVENT_TYPES: Final = (
    "response.created",
    "response.updated",
    "followup.created",
    "followup.updated",
    "followup.breached",
    "alert.fired",
)


#: An enabled webhook endpoint of a project: its id, and the event types it takes.
Endpoint = tuple[str, frozenset[str]]
#: The digits of an id: Crockford's base 32, lower case.
_ID_DIGITS: Final = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str) -> str:
    """A new random id: ``prefix`` and 26 base-32 characters (130 bits).

    The 130 bits are drawn at once and cut five at a time: a draw per character cost the feed
    as much as the rest of an item's making.
    """
    bits = secrets.randbits(130)
    return prefix + "".join(_ID_DIGITS[(bits >> shift) & 31] for shift in range(0, 130, 5))


async def enqueue(
    conn: AsyncConnection,
    project: str,
    event_type: str,
    data: Mapping[str, Any],
    now_ms: int,
    message_id: str | None = None,
    endpoints: Sequence[Endpoint] | None = None,
    into: Inserts | None = None,
) -> str:
    """Write a message of ``event_type`` about ``data`` to the outbox, in ``conn``'s transaction.

    The payload is the Standard Webhooks shape: ``{"type", "timestamp", "data"}``. A delivery
    is made pending, due now, for each of ``project``'s enabled endpoints that take the type;
    with none, the message is still kept (the delivery log shows what happened). Returns the
    message's id (``message_id`` when the caller derives one, else a new ``msg_`` id).

    ``endpoints``: the project's (:func:`endpoints_of`), when the caller has read them already.
    ``into``: the rows are kept there for the caller to flush with the rest of its batch,
    rather than written now.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    message = message_id or new_id("msg_")
    payload = {
        "type": event_type,
        "timestamp": rfc3339(now_ms),
        "data": dict(data),
    }
    writes = Inserts() if into is None else into
    writes.add(
        tables.outbox,
        {
            "id": message,
            "project": project,
            "event_type": event_type,
            "payload": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
            "created_ms": now_ms,
        },
    )
    if endpoints is None:
        endpoints = await endpoints_of(conn, project)
    for endpoint, types in endpoints:
        if event_type in types:
            writes.add(
                tables.webhook_deliveries,
                {
                    "message": message,
                    "endpoint": endpoint,
                    "state": "pending",
                    "attempts": 0,
                    "next_ms": now_ms,
                },
            )
    if into is None:
        await writes.flush(conn)
    return message


async def endpoints_of(conn: AsyncConnection, project: str) -> list[Endpoint]:
    """``project``'s enabled endpoints: their ids and the event types each takes."""
    found = await conn.execute(
        select(tables.webhook_endpoints.c.id, tables.webhook_endpoints.c.event_types).where(
            tables.webhook_endpoints.c.project == project,
            tables.webhook_endpoints.c.disabled_ms.is_(None),
        )
    )
    return [(endpoint, frozenset(json.loads(types))) for endpoint, types in found]


def wanted(endpoints: Sequence[Endpoint], event_type: str) -> bool:
    """Whether any of ``endpoints`` takes ``event_type``."""
    return any(event_type in types for _, types in endpoints)


async def enqueue_email(
    conn: AsyncConnection,
    project: str | None,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    now_ms: int,
) -> str:
    """Write an email to the outbox, in ``conn``'s transaction; returns its id."""
    message = new_id("eml_")
    await conn.execute(
        insert(tables.email_outbox).values(
            id=message,
            project=project,
            recipient=recipient,
            subject=subject,
            text=text,
            html=html,
            created_ms=now_ms,
            state="pending",
            attempts=0,
            next_ms=now_ms,
        )
    )
    return message
