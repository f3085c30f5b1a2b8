"""The pure-Python reference of the hot path: validate, deduplicate, aggregate.

It is the readable statement of every rule; ``_pipeline_c.pyx`` must give identical results on
every input (hypothesis checks that), and this module is what loads where the extension can't.
"""

from __future__ import annotations

import os
import re
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final

from ._keys import KeyMaker, key_maker
from ._models import (
    CONTROL_CHARACTERS,
    FORM_PATTERN,
    HOUR_MS,
    LOCALE_PATTERN,
    MAX_COMMENT_CHARS,
    MAX_FORM_CHARS,
    MAX_ID_CHARS,
    MAX_LOCALE_CHARS,
    METRIC_RANGES,
    MIN_NONCE_BYTES,
    Event,
    Histograms,
    Policy,
    Record,
    Rejection,
)

IMPLEMENTATION: Final = "pure"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_FORM: Final = re.compile(FORM_PATTERN)
_LOCALE: Final = re.compile(LOCALE_PATTERN)
_UUID7: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class _Refused(Exception):
    def __init__(self, field: str, error: str) -> None:
        super().__init__(error)
        self.field = field
        self.error = error


def validate(
    events: Sequence[Event | None],
    policy: Policy,
    now_ms: int,
    secret: bytes,
    nonce: bytes | None = None,
) -> tuple[list[Record], list[Rejection]]:
    """Apply the contract's field rules and turn each good event into a :class:`Record`.

    Args:
        events: decoded events; ``None`` marks one the decoder already refused (skipped here).
        policy: allowed channels and the ``ts`` window.
        now_ms: the time of receipt, epoch ms: default ``ts`` and centre of the window.
        secret: the project's secret, keying dedup hashes and pseudonyms.
        nonce: at least 16 random bytes, fresh for each request, from which an event with
            neither ``id`` nor ``ts`` gets its key (see ``_keys``); drawn here when not given.

    Returns:
        The records of the good events in order, and a rejection for each bad one, naming its
        index in ``events``. A bad event never affects the others.

    Raises:
        ValueError: ``nonce`` is shorter than 16 bytes.
    """
    keys = _RequestKeys(key_maker(secret), now_ms, nonce)
    records: list[Record] = []
    rejections: list[Rejection] = []
    for index, event in enumerate(events):
        if event is None:
            continue
        try:
            records.append(_to_record(event, index, policy, now_ms, keys))
        except _Refused as refused:
            rejections.append(Rejection(index, refused.field, refused.error))
    return records, rejections


class _RequestKeys:
    """The dedup keys of one request's events without ``id``: the rules of ``_keys``."""

    def __init__(self, maker: KeyMaker, now_ms: int, nonce: bytes | None) -> None:
        if nonce is not None and len(nonce) < MIN_NONCE_BYTES:
            raise ValueError(f"a nonce must be at least {MIN_NONCE_BYTES} bytes")
        self.maker = maker
        self.now_ms = now_ms
        self.nonce = nonce
        self.occurrences: dict[bytes, int] = {}

    def content_key(self, content: tuple[object, ...], client_ts: int) -> bytes:
        """The key of the content; the same content again in this request gets the next one."""
        first = self.maker.content_key(content, client_ts)
        occurrence = self.occurrences.get(first, 0)
        self.occurrences[first] = occurrence + 1
        if occurrence == 0:
            return first
        return self.maker.content_key(content, client_ts, occurrence)

    def fresh_key(self, index: int) -> bytes:
        """A key of the event at ``index`` alone."""
        if self.nonce is None:
            self.nonce = os.urandom(MIN_NONCE_BYTES)
        return self.maker.fresh_key(self.nonce, index, self.now_ms)


def _to_record(event: Event, index: int, policy: Policy, now_ms: int, keys: _RequestKeys) -> Record:
    if event.id is not None:
        _check_id(event.id)
    if event.channel not in policy.channels:
        allowed = ", ".join(sorted(policy.channels))
        raise _Refused("channel", f"unknown channel {event.channel!r}; allowed: {allowed}")
    if _FORM.fullmatch(event.form) is None:
        raise _Refused("form", f"form must be 1-{MAX_FORM_CHARS} characters of A-Z a-z 0-9 . _ -")
    score_range = METRIC_RANGES.get(event.metric)
    if score_range is None:
        raise _Refused(
            "metric",
            f"unknown metric {event.metric!r}; expected one of {', '.join(METRIC_RANGES)}",
        )
    low, high = score_range
    if not low <= event.score <= high:
        raise _Refused("score", f"{event.metric} score must be {low}..{high}, got {event.score}")
    client_ts = _epoch_ms(event.ts)
    if client_ts is not None:
        _check_ts_window(client_ts, policy, now_ms)
    comment = _clean_comment(event.comment)
    if event.locale is not None and not (
        len(event.locale) <= MAX_LOCALE_CHARS and _LOCALE.fullmatch(event.locale)
    ):
        raise _Refused(
            "locale",
            f"locale must be a BCP 47 tag of at most {MAX_LOCALE_CHARS} characters,"
            " like en or fa-IR",
        )
    key = _dedup_key(event, index, comment, client_ts, keys)
    return Record(
        key,
        event.id,
        now_ms if client_ts is None else client_ts,
        event.channel,
        event.form,
        event.metric,
        event.score,
        comment,
        None if event.respondent is None else keys.maker.pseudonym(event.respondent),
        None if event.vote_key is None else keys.maker.pseudonym(event.vote_key),
        event.locale,
        event.tags,
        event.meta,
    )


def _check_id(event_id: str) -> None:
    if not (0 < len(event_id) <= MAX_ID_CHARS and event_id.isascii() and event_id.isprintable()):
        raise _Refused("id", f"id must be 1-{MAX_ID_CHARS} printable ASCII characters")


def _epoch_ms(ts: datetime | int | None) -> int | None:
    if ts is None or isinstance(ts, int):
        return ts
    return (ts - _EPOCH) // _ONE_MS


_ONE_MS: Final = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - _EPOCH


def _check_ts_window(ts_ms: int, policy: Policy, now_ms: int) -> None:
    if ts_ms > now_ms + policy.max_future_ms:
        raise _Refused(
            "ts", f"ts is more than {policy.max_future_ms // 1000} s ahead of the gateway's clock"
        )
    if ts_ms < now_ms - policy.retention_ms:
        raise _Refused(
            "ts",
            f"ts is older than the retention window of {policy.retention_ms // 86_400_000} days",
        )


def _clean_comment(comment: str | None) -> str | None:
    """Remove control characters (not newline or tab), then NFC; empty means no comment."""
    if comment is None:
        return None
    # Removal comes first: a control character between a letter and its combining mark would
    # otherwise keep the pair from composing.
    cleaned = unicodedata.normalize("NFC", CONTROL_CHARACTERS.sub("", comment))
    if len(cleaned) > MAX_COMMENT_CHARS:
        raise _Refused(
            "comment",
            f"comment must be at most {MAX_COMMENT_CHARS} characters after normalisation,"
            f" got {len(cleaned)}",
        )
    return cleaned or None


def _dedup_key(
    event: Event, index: int, comment: str | None, client_ts: int | None, keys: _RequestKeys
) -> bytes:
    if event.id is not None:
        if _UUID7.fullmatch(event.id):
            return uuid.UUID(event.id).bytes
        return keys.maker.foreign_id_key(event.id)
    if client_ts is None:
        return keys.fresh_key(index)
    content = (
        event.channel,
        event.form,
        event.metric,
        event.score,
        comment,
        event.respondent,
        event.vote_key,
        client_ts,
        event.locale,
        event.tags,
        event.meta,
    )
    return keys.content_key(content, client_ts)


class DedupWindow:
    """A bounded "seen recently?" set of dedup keys, in front of the store's unique key.

    It holds at most ``max_entries`` distinct keys, each for at most ``max_age_ms`` after it was
    remembered; past either bound it forgets the oldest. It is a cache: forgetting only costs a
    trip to the store, but it never answers "seen" for a key it was not given. Remember keys
    only once they are committed, or a failed commit would turn the client's retry into a
    "duplicate" and lose the event.
    """

    def __init__(self, max_entries: int = 1_000_000, max_age_ms: int = 7 * 86_400_000) -> None:
        if max_entries < 1 or max_age_ms < 1:
            raise ValueError("a dedup window needs max_entries >= 1 and max_age_ms >= 1")
        self.max_entries = max_entries
        self.max_age_ms = max_age_ms
        self._remembered: OrderedDict[bytes, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._remembered)

    def seen(self, key: bytes, now_ms: int) -> bool:
        """Whether ``key`` was remembered less than ``max_age_ms`` before ``now_ms``."""
        at = self._remembered.get(key)
        return at is not None and now_ms - at < self.max_age_ms

    def split(self, records: Iterable[Record], now_ms: int) -> tuple[list[Record], int]:
        """Drop records seen recently or earlier in the same batch.

        Returns:
            The records not seen before, in order, and how many were dropped as duplicates.
        """
        fresh: list[Record] = []
        in_batch: set[bytes] = set()
        duplicates = 0
        for record in records:
            if record.key in in_batch or self.seen(record.key, now_ms):
                duplicates += 1
            else:
                in_batch.add(record.key)
                fresh.append(record)
        return fresh, duplicates

    def remember(self, records: Iterable[Record], now_ms: int) -> None:
        """Add committed records' keys; a key already held keeps its first time."""
        self._expire(now_ms)
        for record in records:
            key = record.key
            if key in self._remembered:
                continue
            if len(self._remembered) >= self.max_entries:
                self._remembered.popitem(last=False)
            self._remembered[key] = now_ms

    def forget(self, keys: Iterable[bytes]) -> int:
        """Drop ``keys``, the keys of erased events; how many of them the window held.

        An erasure removes what is held of a person everywhere, this cache included; a retry of
        an erased event then reaches the store, whose tombstone refuses it.
        """
        forgotten = 0
        for key in keys:
            if self._remembered.pop(key, None) is not None:
                forgotten += 1
        return forgotten

    def _expire(self, now_ms: int) -> None:
        while self._remembered:
            oldest_key, at = next(iter(self._remembered.items()))
            if now_ms - at < self.max_age_ms:
                return
            del self._remembered[oldest_key]


#: What personal data that a scrubber finds by itself never goes without (an email address, a
#: phone, card or account number): an "@" or a decimal digit, of any script (``\d`` of a str
#: pattern is Unicode's category Nd, as ``str.isdecimal``).
_MARKED: Final = re.compile(r"[@\d]")


def suspects(records: Iterable[Record]) -> list[int]:
    """Where in ``records`` a comment holds an "@" or a decimal digit: the only comments the
    gateway's scrubber reads for email addresses, phone, card and account numbers.

    Most comments hold neither; one scan of each, in C in the compiled twin, lets ingest skip
    them without a Python step per comment.
    """
    search = _MARKED.search
    return [
        index
        for index, record in enumerate(records)
        if record.comment is not None and search(record.comment) is not None
    ]


def aggregate(records: Iterable[Record]) -> Histograms:
    """Histogram deltas per (channel, form, metric, hour bucket) of ``records``."""
    out: Histograms = {}
    for record in records:
        low, high = METRIC_RANGES[record.metric]
        bucket = record.ts_ms - record.ts_ms % HOUR_MS
        key = (record.channel, record.form, record.metric, bucket)
        if key not in out:
            out[key] = [0] * (high - low + 1)
        out[key][record.score - low] += 1
    return out
