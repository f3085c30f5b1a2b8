"""Access: everything held about one respondent, as one JSON document (GDPR Art. 15).

The respondent is named by their pseudonym (the keyed hash ingest stored in place of the id the
client sent): their responses on every channel the asker may see, oldest first, each as the
read API shows it, and the follow-up items made of them with every change and internal note.
What the asker may see is cut as every read cuts it (:func:`~..reading.params.scope`), on the
``privacy`` section: a person scoped to channel ``app`` gets the ``app`` part only.
"""

from __future__ import annotations

import time

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..control import tables
from ..followups import items
from ..followups.items import Change, FollowupItem
from ..reading import find
from ..reading.formats import ResponseItem, item, rfc3339
from ..reading.params import ChannelForms, ReadQuery
from ..service import Service
from ..stores import ResponseFilter


class HeldItem(msgspec.Struct, kw_only=True):
    """A follow-up item of the respondent's, with its changes and notes, oldest first."""

    item: FollowupItem
    changes: list[Change]


class RespondentData(msgspec.Struct, kw_only=True):
    """The answer of ``GET /v1/respondents/{respondent}``.

    ``respondent`` is the pseudonym the gateway stores (the id itself is never kept);
    ``channels`` the channels read (those the asker may see); ``generated`` when it was made.
    """

    project: str
    respondent: str
    generated: str
    channels: list[str]
    responses: list[ResponseItem]
    followups: list[HeldItem]


async def respondent_data(
    service: Service, project: str, pseudonym: str, channels: ChannelForms
) -> RespondentData:
    """Everything of ``pseudonym`` in ``project`` within ``channels`` (each with its forms)."""
    query = ReadQuery(
        filter=ResponseFilter(project=project, respondent=pseudonym),
        channels=channels,
        oldest_first=True,
    )
    responses = [item(row) async for page in find.pages(service, query) for row in page]

    async def read(conn: AsyncConnection) -> list[HeldItem]:
        f = tables.followups
        found = await conn.execute(
            select(f.c.id)
            .where(f.c.project == project, f.c.respondent == pseudonym, items.in_scope(channels))
            .order_by(f.c.created_ms, f.c.id)
        )
        held = []
        for item_id in list(found.scalars()):
            shown = await items.read_item(conn, item_id)
            if shown is not None:
                held.append(HeldItem(item=shown, changes=await items.changes(conn, item_id)))
        return held

    followups = await service.registry.db.arun(read)
    return RespondentData(
        project=project,
        respondent=pseudonym,
        generated=rfc3339(int(time.time() * 1000)),
        channels=list(channels),
        responses=responses,
        followups=followups,
    )
