"""``python -m voxloop send ...``: capture one rating from a shell and print the gateway's answer.

For smoke tests, cron jobs and trying a key::

    python -m voxloop send --endpoint https://feedback.example.com --key sk_... \\
        --channel web --form checkout --metric nps --score 9 --comment "Fast checkout"

The key may come from ``VOXLOOP_KEY`` and the endpoint from ``VOXLOOP_ENDPOINT`` instead, which
keeps the key out of the shell history and the process list. The event is sent in sync mode,
with a few quick retries. Exit status: 0 when the gateway counted the event (or already had
it), 1 when it was refused or could not be delivered, 2 for a wrong argument.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from ._client import Client
from ._config import Config, Retry, Timeout
from ._errors import DeliveryError, VoxloopError
from ._event import METRIC_RANGES
from ._transport import HTTPTransport, Response

__all__ = ["main"]


class _Recording:
    """The default transport, remembering the last answer so it can be printed."""

    def __init__(self, transport: HTTPTransport) -> None:
        self.transport = transport
        self.last: Response | None = None

    def send(self, body: bytes) -> Response:
        self.last = self.transport.send(body)
        return self.last

    def close(self) -> None:
        self.transport.close()


def _meta_item(text: str) -> tuple[str, str | int | float | bool]:
    key, sep, raw = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--meta takes KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        return key, raw
    # Numbers and true/false keep their type; anything else JSON could mean stays text.
    return key, value if isinstance(value, int | float | bool) else raw


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m voxloop", description="voxloop's Python SDK from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("send", help="capture one rating and print the gateway's answer")
    send.add_argument(
        "--endpoint",
        default=os.environ.get("VOXLOOP_ENDPOINT"),
        help="the gateway's base URL (default: $VOXLOOP_ENDPOINT)",
    )
    send.add_argument(
        "--key", default=os.environ.get("VOXLOOP_KEY"), help="a key (default: $VOXLOOP_KEY)"
    )
    send.add_argument("--channel", required=True, help="web, app, email or a project's own")
    send.add_argument("--form", required=True, help="the touchpoint, e.g. checkout")
    send.add_argument("--metric", required=True, choices=list(METRIC_RANGES))
    send.add_argument("--score", required=True, type=int)
    send.add_argument("--comment")
    send.add_argument("--respondent")
    send.add_argument("--vote-key")
    send.add_argument("--ts", help="RFC 3339 with a zone, or epoch milliseconds")
    send.add_argument("--locale", help="BCP 47, e.g. en or fa-IR")
    send.add_argument("--tag", action="append", dest="tags", help="repeatable")
    send.add_argument("--meta", action="append", type=_meta_item, help="KEY=VALUE, repeatable")
    send.add_argument(
        "--timeout", type=float, default=15.0, help="seconds to wait in all (default 15)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    # Failures are printed below, once; keep the logger's copy off the terminal.
    logging.getLogger("voxloop").addHandler(logging.NullHandler())
    if not args.endpoint or not args.key:
        parser.error("--endpoint and --key are required (or VOXLOOP_ENDPOINT and VOXLOOP_KEY)")
    failures: list[DeliveryError] = []
    ts: str | int | None = args.ts
    if args.ts is not None and args.ts.lstrip("-").isdigit():
        ts = int(args.ts)
    try:
        timeout = max(1.0, args.timeout)
        config = Config(
            sync_mode=True,
            flush_timeout=timeout,
            flush_at_exit=False,
            retry=Retry(attempts=3, backoff=0.5, cap=min(5.0, timeout)),
            timeout=Timeout(connect=min(5.0, timeout), read=timeout),
        )
        transport = _Recording(HTTPTransport(args.endpoint, args.key, timeout=config.timeout))
        with Client(
            args.endpoint, args.key, config=config, transport=transport, on_error=failures.append
        ) as client:
            event_id = client.capture(
                channel=args.channel,
                form=args.form,
                metric=args.metric,
                score=args.score,
                comment=args.comment,
                respondent=args.respondent,
                vote_key=args.vote_key,
                ts=ts,
                locale=args.locale,
                tags=args.tags,
                meta=dict(args.meta) if args.meta else None,
            )
    except VoxloopError as exc:  # ConfigError, ValidationError: the arguments are wrong
        print(f"voxloop: {exc}", file=sys.stderr)
        return 2
    answer = transport.last
    if answer is not None:
        print(answer.body.decode("utf-8", "replace").strip() or f"HTTP {answer.status}")
    if failures:
        for failure in failures:
            print(f"voxloop: event {event_id} not delivered: {failure.reason}", file=sys.stderr)
        return 1
    if answer is None or not 200 <= answer.status < 300:
        print(f"voxloop: event {event_id} not delivered", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
