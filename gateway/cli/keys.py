"""``keys create``, ``keys list`` and ``keys revoke``; a key made or revoked is recorded in the
audit log by its public id."""

from __future__ import annotations

import sys
from typing import cast

import click

from ..privacy import audit
from .base import Choice, Key, KeyKind, cli, print_table, registry, settings


def forms_of(key: Key) -> str:
    """A key's forms as lists show them: ``*`` for all of them, ``-`` for a writing key."""
    if key.kind != "read":
        return "-"
    return "*" if key.forms is None else ",".join(sorted(key.forms))


def describe(key: Key) -> str:
    """A key in one line, by its public id: what ``create`` and ``revoke`` say of it."""
    state = "revoked" if key.revoked else "active"
    rules = f"channels={','.join(sorted(key.channels))}"
    if key.kind == "site":
        rules += f" origins={','.join(sorted(key.origins)) or '-'}"
    if key.kind == "read":
        rules += f" forms={forms_of(key)}"
    return f"{key.id}…  {key.project:<16} {key.kind:<6} {state:<7} {rules}"


def _detail(key: Key) -> dict[str, object]:
    """What the audit log keeps of a key: its kind and reach, never the key itself."""
    return {
        "kind": key.kind,
        "channels": sorted(key.channels),
        "origins": sorted(key.origins),
        "forms": None if key.forms is None else sorted(key.forms),
    }


@cli.group(short_help="create, list or revoke keys")
def keys() -> None:
    """Create, list or revoke keys. A site key (pk_...) is public: web pages and apps post
    with it, on its channels, from its origins. A server key (sk_...) is secret: it writes
    every channel and reads stats, from servers only. A read key (rk_...) is secret too: BI
    tools and scripts read responses, stats and exports with it, within its channels and
    forms, and it never writes. Keys are stored as SHA-256 digests."""


@keys.command(short_help="create a key and print it, once")
@click.argument("project")
@click.option(
    "--kind", required=True, type=Choice(["site", "server", "read"]), help="site, server or read"
)
@click.option(
    "--channel",
    multiple=True,
    help="a channel the site key writes or the read key reads (repeatable)",
)
@click.option(
    "--origin",
    multiple=True,
    metavar="URL",
    help="an origin the site key allows, as https://shop.example.com[:port] (repeatable)",
)
@click.option(
    "--form", multiple=True, help="a form the read key reads (repeatable; default: all forms)"
)
def create(
    project: str,
    kind: str,
    channel: tuple[str, ...],
    origin: tuple[str, ...],
    form: tuple[str, ...],
) -> None:
    """Create a key of PROJECT and print it on stdout, once; its description goes to stderr.

    A site key writes the channels given (web when none is) from the origins given; a server
    key takes no --channel or --origin; a read key reads the channels given (all when none
    is) and the forms given (all when none is), and takes no --origin.
    """
    with registry(settings(), needed=True) as found:
        raw, key = found.create_key(project, cast(KeyKind, kind), channel, origin, form)
        audit.record_sync(
            found.db, action="key.create", project=key.project, target=key.id, detail=_detail(key)
        )
    print(raw)
    print(describe(key), file=sys.stderr)


@keys.command(name="list", short_help="list keys by their public ids")
@click.argument("project", required=False)
def list_(project: str | None) -> None:
    """List the keys, of PROJECT or of every project, by their public ids (never the keys).

    On a terminal the table has a header; piped, each line is "ID…  PROJECT  KIND  STATE
    CHANNELS  ORIGINS  FORMS" (STATE: active or revoked; CHANNELS, ORIGINS and a read key's
    FORMS comma-separated, "-" for none, FORMS "*" for all), columns aligned.
    """
    with registry(settings(), needed=True) as found:
        if project:
            found.project(project, reload=True)
        rows = [
            (
                f"{key.id}…",
                key.project,
                key.kind,
                "revoked" if key.revoked else "active",
                ",".join(sorted(key.channels)) or "-",
                ",".join(sorted(key.origins)) or "-",
                forms_of(key),
            )
            for key in found.keys(project)
        ]
    columns = ["key", "project", "kind", "state", "channels", "origins", "forms"]
    print_table(columns, rows, header=False)


@keys.command(short_help="revoke a key, at once")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke KEY_ID: the public id shown by `keys list` (or the whole key). It takes effect
    at once, with no restart. Prints "revoked" and the key's description."""
    with registry(settings(), needed=True) as found:
        revoked = found.revoke_key(key_id)
        audit.record_sync(
            found.db,
            action="key.revoke",
            project=revoked.project,
            target=revoked.id,
            detail=_detail(revoked),
        )
    print(f"revoked {describe(revoked)}")
