"""The ``voxloop-gateway`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import voxloop_core

from . import __version__
from .app import create_app
from .settings import DEFAULT_HOST, DEFAULT_PORT, Settings


def core_banner() -> str:
    """One line saying which core serves, and why it is the pure one when it is."""
    if voxloop_core.FALLBACK_REASON is None:
        return f"voxloop core: {voxloop_core.IMPLEMENTATION} (compiled extension loaded)"
    return (
        f"voxloop core: {voxloop_core.IMPLEMENTATION} (pure-Python reference:"
        f" {voxloop_core.FALLBACK_REASON}); ingestion will be slower"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxloop-gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"voxloop-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the gateway over HTTP")
    serve.add_argument("--host", default=os.environ.get("VOXLOOP_HOST", DEFAULT_HOST))
    serve.add_argument(
        "--port", type=int, default=int(os.environ.get("VOXLOOP_PORT", DEFAULT_PORT))
    )
    commands.add_parser("core", help="say which core implementation loads, and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    print(core_banner(), file=sys.stderr)
    if args.command == "core":
        return 0
    import uvicorn

    settings = Settings(host=args.host, port=args.port)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
