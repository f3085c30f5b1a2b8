"""``webhooks add``, ``list``, ``remove``, ``rotate-secret`` and ``enable``; each change is
recorded in the audit log as the operator's, never with a secret."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator

import click

from ..control import schema
from ..control.db import Database
from ..errors import ApiError, ConfigError
from ..integrations import webhooks as hooks
from ..integrations.outbox import EVENT_TYPES
from ..privacy import audit
from ..reading.formats import rfc3339
from ..settings import Settings
from .base import Choice, cli, print_table, registry, settings

COLUMNS = ["id", "project", "state", "events", "url", "notice"]


@contextlib.contextmanager
def control(config: Settings | None = None) -> Iterator[Database]:
    """The control plane's database the global flags name (or ``config``), its schema
    checked; refusals of bad input (``ApiError``) become one-line errors (exit status 2)."""
    with registry(config or settings(), needed=True) as found:
        schema.prepare(found.db)
        try:
            yield found.db
        except ApiError as exc:
            raise ConfigError(exc.message) from None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def notice(endpoint: hooks.Endpoint) -> str:
    """What ``list`` says beside an endpoint: why it is disabled, since when it fails, until
    when a rotated secret overlaps; ``-`` for nothing."""
    if endpoint.disabled_ms is not None:
        return f"disabled {rfc3339(endpoint.disabled_ms)}: {endpoint.disabled_reason}"
    said = []
    if endpoint.failing_since_ms is not None:
        said.append(f"failing since {rfc3339(endpoint.failing_since_ms)}")
    if endpoint.previous_until_ms is not None and endpoint.previous_until_ms > _now_ms():
        said.append(f"previous secret signs until {rfc3339(endpoint.previous_until_ms)}")
    return "; ".join(said) or "-"


def row(endpoint: hooks.Endpoint) -> tuple[str, ...]:
    """An endpoint as ``list`` shows it."""
    return (
        endpoint.id,
        endpoint.project,
        endpoint.state,
        ",".join(endpoint.event_types),
        endpoint.url,
        notice(endpoint),
    )


def _show(endpoint: hooks.Endpoint) -> None:
    print_table(COLUMNS, [row(endpoint)], header=False)


@cli.group(short_help="add, list, remove or rotate the secrets of webhook endpoints")
def webhooks() -> None:
    """Add, list, remove or rotate the secrets of a project's webhook endpoints.

    Each endpoint gets the events of the types it takes, as JSON, signed per the Standard
    Webhooks specification (webhook-id, webhook-timestamp, webhook-signature) with its whsec_
    secret. A delivery is retried with backoff for at least 24 hours with the same webhook-id;
    an endpoint that answers 410 or fails for 24 hours is disabled. URLs reaching private,
    loopback or link-local addresses are refused unless VOXLOOP_WEBHOOK_ALLOW includes them.
    """


@webhooks.command(short_help="add an endpoint and print its secret, once")
@click.argument("project")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    required=True,
    type=Choice(list(EVENT_TYPES)),
    help=f"an event type it takes (repeatable): {', '.join(EVENT_TYPES)}",
)
@click.option("--description", default="", help="what it is for, shown in lists")
def add(project: str, url: str, events: tuple[str, ...], description: str) -> None:
    """Add an endpoint of PROJECT at URL (http or https) taking each --event type.

    Prints its whsec_ secret on stdout, once (give it to the receiver, which verifies the
    signatures with it); the endpoint's description goes to stderr.
    """
    config = settings()
    with control(config) as db:
        made, secret = asyncio.run(
            hooks.add(db, config.webhook_allow, project, url, list(events), description, _now_ms())
        )
        detail = audit.webhook_detail(made.url, made.event_types)
        audit.record_sync(
            db, action="webhook.create", project=made.project, target=made.id, detail=detail
        )
    print(secret)
    print(f"{made.id}  {made.project}  {','.join(made.event_types)}  {made.url}", file=sys.stderr)


@webhooks.command(name="list", short_help="list the endpoints, never their secrets")
@click.argument("project", required=False)
def list_(project: str | None) -> None:
    """List the endpoints, of PROJECT or of every project.

    On a terminal the table has a header; piped, each line is "ID  PROJECT  STATE  EVENTS  URL
    NOTICE" (STATE: active, failing or disabled; EVENTS comma-separated; NOTICE why it was
    disabled, since when it fails, until when a rotated secret overlaps, or "-"), columns
    aligned.
    """
    with control() as db:
        found = asyncio.run(hooks.list_endpoints(db, project))
    print_table(COLUMNS, [row(e) for e in found], header=False)


@webhooks.command(short_help="remove an endpoint and its delivery log")
@click.argument("endpoint_id")
def remove(endpoint_id: str) -> None:
    """Remove the endpoint ENDPOINT_ID (as `webhooks list` shows it), with its pending
    deliveries and its delivery log. Prints "removed" and the endpoint."""
    with control() as db:
        gone = asyncio.run(hooks.remove(db, None, endpoint_id))
        audit.record_sync(db, action="webhook.remove", project=gone.project, target=gone.id)
    print(f"removed {gone.id}  {gone.project}  {gone.url}")


@webhooks.command(name="rotate-secret", short_help="give an endpoint a new secret, printed once")
@click.argument("endpoint_id")
def rotate_secret(endpoint_id: str) -> None:
    """Give ENDPOINT_ID a new whsec_ secret and print it on stdout, once.

    For 24 hours every delivery is signed with both the new and the previous secret, so the
    receiver keeps verifying until it has the new one.
    """
    with control() as db:
        rotated, secret = asyncio.run(hooks.rotate_secret(db, None, endpoint_id, _now_ms()))
        audit.record_sync(db, action="webhook.rotate", project=rotated.project, target=rotated.id)
    print(secret)
    print(f"{rotated.id}  {notice(rotated)}", file=sys.stderr)


@webhooks.command(short_help="enable a disabled endpoint again")
@click.argument("endpoint_id")
def enable(endpoint_id: str) -> None:
    """Enable ENDPOINT_ID again after a 410 or a day of failures; messages from now on are
    delivered to it. Prints the endpoint."""
    with control() as db:
        enabled = asyncio.run(hooks.enable(db, None, endpoint_id))
        audit.record_sync(db, action="webhook.enable", project=enabled.project, target=enabled.id)
    _show(enabled)
