"""``email-secret create``, ``list`` and ``revoke``: the secrets that sign email rating links."""

from __future__ import annotations

import sys

import click

from .base import cli, print_table, registry, settings


@cli.group(name="email-secret", short_help="create, list or revoke email rating-link secrets")
def email_secret() -> None:
    """Create, list or revoke the secrets that sign email rating links. The gateway accepts a
    link signed by any active secret of its project, so a new secret can replace an old one
    before it is revoked."""


@email_secret.command(short_help="create a secret and print it, once")
@click.argument("project")
def create(project: str) -> None:
    """Create a signing secret of PROJECT: its 64 hex digits on stdout, once; its id on stderr.

    Give the hex to the server that sends the emails:
    voxloop.email.rating_links(..., secret=bytes.fromhex(...)).
    """
    with registry(settings(), needed=True) as found:
        made = found.create_email_secret(project)
    print(made.secret.hex())
    print(
        f"{made.id}  {made.project}: give the hex above to the server that sends the"
        " emails (voxloop.email.rating_links(..., secret=bytes.fromhex(...)));"
        " it is shown once",
        file=sys.stderr,
    )


@email_secret.command(name="list", short_help="list the secrets by their ids")
@click.argument("project", required=False)
def list_(project: str | None) -> None:
    """List the signing secrets, of PROJECT or of every project, by their ids.

    On a terminal the table has a header; piped, each line is "ID  PROJECT  STATE" (active
    or revoked), columns aligned.
    """
    with registry(settings(), needed=True) as found:
        if project:
            found.project(project, reload=True)
        rows = [
            (s.id, s.project, "revoked" if s.revoked else "active")
            for s in found.email_secrets(project)
        ]
    print_table(["id", "project", "state"], rows, header=False)


@email_secret.command(short_help="revoke a secret")
@click.argument("secret_id")
def revoke(secret_id: str) -> None:
    """Revoke SECRET_ID, the id shown by `email-secret list`: links signed with it get the
    "not valid" page from then on."""
    with registry(settings(), needed=True) as found:
        revoked = found.revoke_email_secret(secret_id)
    print(f"revoked {revoked.id}  {revoked.project}")
