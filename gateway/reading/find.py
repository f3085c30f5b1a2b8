"""Reading responses across the channels of one project: pages, whole exports, one response.

Each channel has its own store; a page asks each store read for a page after the same place and
merges them (:func:`~..stores.reads.merge`), one row more than asked so that it knows whether
another page follows without an empty last one. An export walks the same pages through the
keyset, a page at a time, so its memory stays flat however many rows it writes. A channel with
no store yet has no events, and reading doesn't make one (the CLI reads what exists).

Nothing here decides what the asker may see: the channels it is given, each with its own forms,
were cut to the asker's scope by :mod:`.params` already; each channel's store is read for that
channel's forms only.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable
from typing import Final, NamedTuple

import msgspec

from voxloop_core import CHANNEL_PATTERN, key_maker

from ..service import Service
from ..stores.base import Store
from ..stores.reads import Position, ResponseFilter, StoredResponse, merge
from .params import ChannelForms, ReadQuery

#: Rows an export reads a page at a time: a few MB of memory at most, whatever the total.
EXPORT_PAGE: Final = 1_000
#: How many of a respondent's other responses a response's detail shows (newest first); the
#: respondent view pages through all of them.
OTHERS_SHOWN: Final = 50
_REF: Final = re.compile(rf"({CHANNEL_PATTERN})\.([0-9a-f]{{32}})")


class Detail(NamedTuple):
    """One response, the votes of its vote group (oldest first), its respondent's others."""

    response: StoredResponse
    history: list[StoredResponse]
    others: list[StoredResponse]


async def _stores(service: Service, channels: Iterable[str]) -> list[Store]:
    return [await service.store(c) for c in channels if await service.has_store(c)]


async def page(service: Service, query: ReadQuery) -> tuple[list[StoredResponse], Position | None]:
    """The rows of ``query``'s page, and where the next page starts (None: this is the last)."""
    stores = await _stores(service, query.channels)
    ask = query.limit + 1
    pages = await asyncio.gather(
        *(
            store.responses(
                query.filter_in(store.channel),
                after=query.after,
                limit=ask,
                oldest_first=query.oldest_first,
            )
            for store in stores
        )
    )
    rows = merge(pages, ask, oldest_first=query.oldest_first)
    if len(rows) > query.limit:
        return rows[: query.limit], rows[query.limit - 1].position
    return rows, None


async def pages(
    service: Service, query: ReadQuery, size: int = EXPORT_PAGE
) -> AsyncIterator[list[StoredResponse]]:
    """Every row of ``query`` from its place on, ``size`` rows a page, in its order."""
    current = msgspec.structs.replace(query, limit=size)
    while True:
        rows, after = await page(service, current)
        if rows:
            yield rows
        if after is None:
            return
        current = msgspec.structs.replace(current, after=after)


def parse_ref(ref: str) -> tuple[str, bytes] | None:
    """The channel and key a response's ``ref`` names, or None if it is not a ref's shape."""
    found = _REF.fullmatch(ref)
    return None if found is None else (found[1], bytes.fromhex(found[2]))


async def response(
    service: Service, project: str, ref: str, channels: ChannelForms
) -> StoredResponse | None:
    """The response ``ref`` names, if it is on one of ``channels`` and of one of its forms.

    A response outside them is None exactly as one that doesn't exist is, so a guessed ref
    tells nothing of what is beyond the asker's scope.
    """
    parsed = parse_ref(ref)
    if parsed is None or parsed[0] not in channels:
        return None
    channel, key = parsed
    stores = await _stores(service, (channel,))
    found = await stores[0].response(project, key) if stores else None
    forms = channels[channel]
    if found is None or (forms is not None and found.form not in forms):
        return None
    return found


async def detail(service: Service, project: str, ref: str, channels: ChannelForms) -> Detail | None:
    """A response with its vote history and the same respondent's other visible responses."""
    found = await response(service, project, ref, channels)
    if found is None:
        return None
    history: list[StoredResponse] = []
    if found.vote_key is not None:
        store = await service.store(found.channel)
        history = await store.vote_history(project, found.form, found.vote_key)
    others: list[StoredResponse] = []
    if found.respondent is not None:
        query = ReadQuery(
            filter=ResponseFilter(project=project, respondent=found.respondent),
            channels=channels,
            limit=OTHERS_SHOWN + 1,
        )
        rows, _ = await page(service, query)
        others = [row for row in rows if row.position != found.position][:OTHERS_SHOWN]
    return Detail(found, history, others)


def pseudonym(secret: bytes, respondent: str) -> str:
    """The stored stand-in of a client's respondent id: the core's keyed hash, as ingest makes."""
    return key_maker(secret).pseudonym(respondent)
