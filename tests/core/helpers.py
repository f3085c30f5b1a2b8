"""Small builders shared by the core's tests."""

from __future__ import annotations

from typing import Any

import msgspec

from voxloop_core import DEFAULT_POLICY, Policy, Record, Rejection, decode_batch

from .conftest import NONCE, NOW_MS, SECRET


def event(**fields: Any) -> dict[str, Any]:
    """A valid NPS event for the web channel, with ``fields`` changed or added."""
    base: dict[str, Any] = {"channel": "web", "form": "checkout", "metric": "nps", "score": 9}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()
DROP: Any = _DROP  # pass as a field value to leave the field out


def body(*events: dict[str, Any]) -> bytes:
    return msgspec.json.encode({"events": list(events)})


def run(
    pipeline: Any,
    *events: dict[str, Any],
    policy: Policy = DEFAULT_POLICY,
    nonce: bytes | None = NONCE,
) -> tuple[list[Record], list[Rejection]]:
    """Decode and validate ``events`` as one batch with ``pipeline``; all rejections together."""
    decoded, rejected = decode_batch(body(*events))
    records, refused = pipeline.validate(decoded, policy, NOW_MS, SECRET, nonce)
    return records, sorted(rejected + refused, key=lambda r: r.index)


def only_rejection(pipeline: Any, **fields: Any) -> Rejection:
    """The single rejection of one event with ``fields``; fails if it was accepted."""
    records, rejections = run(pipeline, event(**fields))
    assert records == [], f"expected a rejection, got {records}"
    assert len(rejections) == 1
    return rejections[0]


def only_record(pipeline: Any, **fields: Any) -> Record:
    records, rejections = run(pipeline, event(**fields))
    assert rejections == []
    assert len(records) == 1
    return records[0]
