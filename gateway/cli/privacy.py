"""``privacy show`` and ``privacy set``: a project's privacy policy from the command line."""

from __future__ import annotations

import asyncio

import click
import msgspec

from ..errors import ConfigError
from ..privacy import audit
from ..privacy import policy as policies
from ..privacy.policy import RETENTION_MODES, Policy
from ..privacy.scrub import TYPES
from .base import Choice, cli, print_table, registry, settings
from .webhooks import control


def rows(project: str, policy: Policy) -> list[tuple[str, str]]:
    """``policy`` as ``show`` prints it: a line per field."""
    scrub = f"on: {', '.join(TYPES)}" if policy.scrub else "off: comments kept as sent"
    patterns = [f"{name}={pattern}" for name, pattern in policy.patterns]
    if policy.retention_days is None:
        retention = "kept for ever"
    else:
        done = "deleted" if policy.retention_mode == "delete" else "comments and meta cleared"
        retention = f"{policy.retention_days} days, then {done}"
    return [
        ("project", project),
        ("scrub", scrub),
        *(("pattern", p) for p in patterns or ["none"]),
        ("retention", retention),
    ]


def _pattern(given: str) -> tuple[str, str]:
    name, equals, pattern = given.partition("=")
    if not equals:
        raise ConfigError(f"--pattern {given!r} must be NAME=REGEX")
    return name, pattern


@cli.group(short_help="show or change a project's privacy policy")
def privacy() -> None:
    """Show or change a project's privacy policy: scrubbing of comments and retention.

    With scrubbing on (new projects have it), email addresses, phone numbers, card numbers and
    IBANs in comments become [email], [phone], [card] and [iban] before they are stored, and
    each --pattern NAME=REGEX of the policy becomes [NAME]. The retention window says how long
    events are kept; the retention job deletes older ones, or clears their comments and meta.
    """


@privacy.command(short_help="show a project's privacy policy")
@click.argument("project")
def show(project: str) -> None:
    """Show PROJECT's privacy policy: "FIELD  VALUE" lines (scrub, each pattern, retention)."""
    config = settings()
    with registry(config, needed=True) as found:
        found.project(project, reload=True)
        with control(config) as db:
            policy = asyncio.run(policies.read_policy(db, project))
    print_table(["field", "value"], rows(project, policy), header=False)


@privacy.command(name="set", short_help="change a project's privacy policy")
@click.argument("project")
@click.option("--scrub/--no-scrub", default=None, help="replace personal data in comments or not")
@click.option(
    "--pattern",
    "patterns",
    multiple=True,
    metavar="NAME=REGEX",
    help="a pattern of your own whose hits become [NAME] (repeatable; replaces the policy's):"
    f" NAME 1-31 of a-z 0-9 _, REGEX 1-{policies.MAX_PATTERN_CHARS} characters,"
    f" at most {policies.MAX_PATTERNS}",
)
@click.option("--clear-patterns", is_flag=True, help="remove the policy's own patterns")
@click.option(
    "--retention-days",
    type=click.IntRange(policies.MIN_RETENTION_DAYS, policies.MAX_RETENTION_DAYS),
    help=f"keep events this many days ({policies.MIN_RETENTION_DAYS}-"
    f"{policies.MAX_RETENTION_DAYS})",
)
@click.option("--keep-forever", is_flag=True, help="keep events for ever (no retention window)")
@click.option(
    "--retention-mode",
    type=Choice(list(RETENTION_MODES)),
    help="past the window: delete the events, or redact (clear their comments and meta)",
)
def set_(
    project: str,
    scrub: bool | None,
    patterns: tuple[str, ...],
    clear_patterns: bool,
    retention_days: int | None,
    keep_forever: bool,
    retention_mode: str | None,
) -> None:
    """Change PROJECT's privacy policy: what is given changes, the rest stays; prints the
    policy as `privacy show` does. The change is recorded in the audit log."""
    if retention_days is not None and keep_forever:
        raise click.UsageError("give --retention-days or --keep-forever, not both")
    if patterns and clear_patterns:
        raise click.UsageError("give --pattern or --clear-patterns, not both")
    config = settings()
    with registry(config, needed=True) as found:
        found.project(project, reload=True)
        with control(config) as db:
            policy = asyncio.run(policies.read_policy(db, project))
            fields: dict[str, object] = {}
            if scrub is not None:
                fields["scrub"] = scrub
            if patterns or clear_patterns:
                fields["patterns"] = tuple(_pattern(p) for p in patterns)
            if retention_days is not None or keep_forever:
                fields["retention_days"] = retention_days
            if retention_mode is not None:
                fields["retention_mode"] = retention_mode
            policy = policies.check_policy(msgspec.structs.replace(policy, **fields))
            asyncio.run(policies.write_policy(db, project, policy, audit.CLI_ACTOR))
    print_table(["field", "value"], rows(project, policy), header=False)
