"""Turn a request body into events in one msgspec pass, isolating events that don't fit.

The common case, a well-formed batch, is decoded straight into :class:`Event` Structs. Only when
that fails do we decode again with each event left raw, so that a malformed event becomes a
:class:`Rejection` naming its field while the events beside it go through.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from ._errors import BodyError, LimitError
from ._models import MAX_EVENTS_PER_REQUEST, Batch, Event, Rejection


class _RawBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[msgspec.Raw]


_batch_decoder: Final = msgspec.json.Decoder(Batch)
_raw_batch_decoder: Final = msgspec.json.Decoder(_RawBatch)
_event_decoder: Final = msgspec.json.Decoder(Event)
_NAMED_FIELD = re.compile(r"(?:unknown|required) field `([^`]*)`")
_FIRST_STEP = re.compile(r"^\.([^.\[]+)")


def decode_batch(body: bytes) -> tuple[list[Event | None], list[Rejection]]:
    """Decode a ``POST /v1/events`` body.

    Args:
        body: the request body, already inflated and within the size limit.

    Returns:
        The events in order, ``None`` where an event was refused, and one :class:`Rejection`
        for each refused event, with msgspec's message pointing at ``$.events[i]...``.

    Raises:
        BodyError: the body is not UTF-8 JSON shaped ``{"events": [...]}``, or holds no event.
        LimitError: it carries more than ``MAX_EVENTS_PER_REQUEST`` events.
    """
    try:
        try:
            events: list[Event | None] = list(_batch_decoder.decode(body).events)
            rejections: list[Rejection] = []
        except msgspec.ValidationError:
            # msgspec stops at the first invalid value, before it has seen the rest of the
            # body, so the second pass may still find the body malformed.
            events, rejections = _decode_event_by_event(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BodyError(_describe_syntax_error(exc)) from None
    if not events:
        raise BodyError("`events` must hold at least one event - at `$.events`")
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise LimitError(
            f"a request may carry at most {MAX_EVENTS_PER_REQUEST} events, got {len(events)}"
        )
    return events, rejections


def _decode_event_by_event(body: bytes) -> tuple[list[Event | None], list[Rejection]]:
    try:
        raws = _raw_batch_decoder.decode(body).events
    except msgspec.ValidationError as exc:
        raise BodyError(f'body must be {{"events": [...]}}: {exc}') from None
    events: list[Event | None] = []
    rejections: list[Rejection] = []
    for index, raw in enumerate(raws):
        try:
            events.append(_event_decoder.decode(raw))
        except msgspec.ValidationError as exc:
            events.append(None)
            rejections.append(_rejection_from(index, str(exc)))
    return events, rejections


def _rejection_from(index: int, message: str) -> Rejection:
    """Re-anchor msgspec's event-relative path at ``$.events[index]`` and name the field."""
    anchor = f"$.events[{index}]"
    at = message.rfind("`$")
    if at < 0:
        relative = ""
        message = f"{message} - at `{anchor}`"
    else:
        end = message.index("`", at + 1)
        relative = message[at + 2 : end]
        message = f"{message[: at + 1]}{anchor}{relative}{message[end:]}"
    named = _NAMED_FIELD.search(message)
    step = _FIRST_STEP.match(relative)
    if named:
        field = named.group(1)
    elif step:
        field = step.group(1)
    else:
        field = "event"
    return Rejection(index, field, message)


def _describe_syntax_error(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"body is not valid UTF-8 (byte {exc.start})"
    return f"body is not valid JSON: {exc}"
