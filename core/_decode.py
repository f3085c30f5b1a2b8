"""Turn a request body into events in one msgspec pass, isolating events that don't fit.

The common case, a well-formed batch, is decoded straight into :class:`Event` Structs. Only when
that fails do we decode again with each event left raw, so that a malformed event becomes a
:class:`Rejection` naming its field while the events beside it go through.

The refusals of a whole body are the core's own, whatever msgspec's wording: a body that is not
UTF-8 names its first bad byte, and one nested deeper than ``MAX_NESTING`` levels says so. Both
checks run only on that slow path: a body the typed pass accepts is UTF-8 (msgspec checked every
string), and can't nest deeper than the Structs do.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from ._errors import BodyError, LimitError
from ._models import MAX_EVENTS_PER_REQUEST, MAX_NESTING, Batch, Event, Rejection


class _RawBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[msgspec.Raw]


_batch_decoder: Final = msgspec.json.Decoder(Batch)
_raw_batch_decoder: Final = msgspec.json.Decoder(_RawBatch)
_event_decoder: Final = msgspec.json.Decoder(Event)
_NAMED_FIELD = re.compile(r"(?:unknown|required) field `([^`]*)`")
_FIRST_STEP = re.compile(r"^\.([^.\[]+)")

_TOO_DEEP: Final = f"body is nested deeper than {MAX_NESTING} levels of arrays and objects"
#: ``{"events": [`` holds every event two levels down.
_EVENT_NESTING: Final = MAX_NESTING - 2
# A JSON string, or an unterminated one up to the end: every quote starts a match that ends at
# its closing quote, so the scan is linear in the body, whatever its escapes.
_STRING: Final = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
_AS_SQUARE: Final = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET: Final = bytes(c for c in range(256) if c not in b"[]{}")


def decode_batch(body: bytes) -> tuple[list[Event | None], list[Rejection]]:
    """Decode a ``POST /v1/events`` body.

    Args:
        body: the request body, already inflated and within the size limit.

    Returns:
        The events in order, ``None`` where an event was refused, and one :class:`Rejection`
        for each refused event, with msgspec's message pointing at ``$.events[i]...``.

    Raises:
        BodyError: the body is not UTF-8 JSON shaped ``{"events": [...]}``, holds no event, or
            nests deeper than ``MAX_NESTING`` levels.
        LimitError: it carries more than ``MAX_EVENTS_PER_REQUEST`` events.
    """
    try:
        events: list[Event | None] = list(_batch_decoder.decode(body).events)
        rejections: list[Rejection] = []
    except msgspec.ValidationError:
        # msgspec stops at the first invalid value, before it has seen the rest of the
        # body, so the second pass may still find the body malformed.
        _check_utf8(body)
        events, rejections = _decode_event_by_event(body)
    except msgspec.DecodeError as exc:
        _check_utf8(body)
        raise BodyError(f"body is not valid JSON: {exc}") from None
    if not events:
        raise BodyError("`events` must hold at least one event - at `$.events`")
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise LimitError(
            f"a request may carry at most {MAX_EVENTS_PER_REQUEST} events, got {len(events)}"
        )
    return events, rejections


def _check_utf8(body: bytes) -> None:
    """Refuse a body that is not UTF-8, naming the offset of its first bad byte."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not valid UTF-8 (byte {exc.start})") from None


def _decode_event_by_event(body: bytes) -> tuple[list[Event | None], list[Rejection]]:
    try:
        raws = _raw_batch_decoder.decode(body).events
    except msgspec.ValidationError as exc:
        raise BodyError(f'body must be {{"events": [...]}}: {exc}') from None
    except msgspec.DecodeError as exc:
        # Had the body been malformed only after a deep part, the pass could as well have
        # stopped in that part, below: the answer must not depend on how deep the stack is.
        if _nests_deeper(body, MAX_NESTING):
            raise BodyError(_TOO_DEEP) from None
        raise BodyError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        # Skipping over a raw event recurses once a level: only a body hundreds of levels
        # deep gets here, far past the limit that the events refused below are held to.
        raise BodyError(_TOO_DEEP) from None
    events: list[Event | None] = []
    rejections: list[Rejection] = []
    for index, raw in enumerate(raws):
        try:
            events.append(_event_decoder.decode(raw))
        except msgspec.ValidationError as exc:
            if _nests_deeper(bytes(raw), _EVENT_NESTING):
                raise BodyError(_TOO_DEEP) from None
            events.append(None)
            rejections.append(_rejection_from(index, str(exc)))
    return events, rejections


def _nests_deeper(text: bytes, limit: int) -> bool:
    """Whether JSON ``text`` holds arrays and objects more than ``limit`` levels deep.

    Strings are cut out and braces read as brackets; then each round removes the innermost
    pairs, one level of every branch, so whatever is left after ``limit`` rounds is deeper.
    Brackets never closed count too: a run of more than ``limit`` of them is as deep.
    """
    brackets = _STRING.sub(b"", text).translate(_AS_SQUARE, _NOT_BRACKET)
    too_many_open = b"[" * (limit + 1)
    if too_many_open in brackets:
        return True
    for _ in range(limit):
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):
            break
        brackets = inner
    return b"[]" in brackets or too_many_open in brackets


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
