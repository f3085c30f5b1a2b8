"""``POST /v1/events``: check, decode, validate, scrub, deduplicate, commit, and only then
answer 202; ``OPTIONS /v1/events``, the CORS preflight of a browser about to post.

The order of the checks is the contract's and also the cheapest first: the key and the limits
before the body is read, the size before it is inflated, the whole body before any event.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import voxloop_core
from voxloop_core import Policy, Record, Rejection

from ..control.registry import Key, Project
from ..errors import ApiError
from ..http.auth import authenticate
from ..http.body import Head, head_of, media_type, read_body
from ..http.cors import cors_headers, preflight_headers
from ..http.responses import json_response
from ..ingest.pipeline import commit
from ..privacy.scrub import scrub_records
from ..service import Service

#: Where batches of events are posted.
EVENTS_PATH = "/v1/events"


class IngestAnswer(msgspec.Struct, kw_only=True):
    """The body of a 202 or a 422: what became of each event."""

    accepted: int
    duplicates: int
    rejected: list[Rejection]


async def post_events(request: Request) -> Response:
    """Take a batch of events in; see CONTRACT.md, "Ingest". Refusals raise (``errors``)."""
    service: Service = request.app.state.service
    service.check_taking_writes()
    head = head_of(request)  # the headers, read once for every check below
    key, project = authenticate(request, service, head)
    answer = await _ingest(request, service, key, project, head)
    status = 202 if answer.accepted + answer.duplicates else 422
    service.metrics.request("events", status)
    return json_response(status, answer, cors_headers(request, service, key, head))


async def _ingest(
    request: Request, service: Service, key: Key, project: Project, head: Head
) -> IngestAnswer:
    media = media_type(request, head)
    if media != "application/json":
        raise ApiError(415, f"Content-Type must be application/json, got {media or 'none'}")
    body = await read_body(request, limit=service.settings.max_body, head=head)
    events, rejected = voxloop_core.decode_batch(body)  # CoreError: 400 or 413
    if key.kind == "site":
        others = sorted({e.channel for e in events if e is not None} - key.channels)
        if others:
            raise ApiError(
                403,
                f"this site key may not write channel {', '.join(others)};"
                f" it names {', '.join(sorted(key.channels))}",
            )
    now_ms = int(time.time() * 1000)
    policy = Policy(channels=project.channels)
    records, refused = voxloop_core.validate(events, policy, now_ms, project.secret)
    if project.scrubber is not None:  # the project's privacy policy: before anything keeps them
        records, found = scrub_records(project.scrubber, records)
        service.metrics.scrubbed(found)
    rejected = sorted(rejected + refused, key=lambda r: r.index)
    by_channel: defaultdict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_channel[record.channel].append(record)
    commits = [commit(service, project.id, c, batch, now_ms) for c, batch in by_channel.items()]
    # Most requests name one channel: awaiting it directly spares gather's task per channel.
    results = [await commits[0]] if len(commits) == 1 else await asyncio.gather(*commits)
    accepted = sum(stored for stored, _ in results)
    duplicates = sum(dups for _, dups in results)
    for rejection in rejected:
        refused_event = events[rejection.index]
        channel = refused_event.channel if refused_event is not None else "unknown"
        service.metrics.outcome(channel, "rejected", 1)
    return IngestAnswer(accepted=accepted, duplicates=duplicates, rejected=rejected)


async def events_preflight(request: Request) -> Response:
    """CORS preflight for browsers posting events with a site key."""
    service: Service = request.app.state.service
    return Response(status_code=204, headers=preflight_headers(request, service))
