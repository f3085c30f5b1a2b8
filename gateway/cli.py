"""The ``voxloop-gateway`` command line: set up projects and keys, serve, read stats.

    voxloop-gateway init [--project demo] [--origin URL]...   a data dir, a project, two keys
    voxloop-gateway projects create NAME [--channel C]... | list
    voxloop-gateway keys create PROJECT --kind site|server [--channel C]... [--origin URL]...
    voxloop-gateway keys list [PROJECT] | revoke KEY_ID
    voxloop-gateway serve [--host H] [--port P] [--data-dir D] ...
    voxloop-gateway demo                                      what `make run` does
    voxloop-gateway stats PROJECT --metric nps [--interval day] ...
    voxloop-gateway core                                      which core implementation loads

Errors in settings or names print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import voxloop_core

from . import __version__
from .errors import ConfigError
from .registry import Key, Registry
from .settings import DEFAULT_DATA_DIR, Settings, load_settings

DEMO_PROJECT = "demo"


def core_banner() -> str:
    """One line saying which core serves, and why it is the pure one when it is."""
    if voxloop_core.FALLBACK_REASON is None:
        return f"voxloop core: {voxloop_core.IMPLEMENTATION} (compiled extension loaded)"
    return (
        f"voxloop core: {voxloop_core.IMPLEMENTATION} (pure-Python reference:"
        f" {voxloop_core.FALLBACK_REASON}); ingestion will be slower"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxloop-gateway",
        description="voxloop's gateway: projects, keys, serving, stats.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--version", action="version", version=f"voxloop-gateway {__version__}")
    parser.add_argument(
        "--data-dir",
        default=None,
        help=f"where the registry and stores live (VOXLOOP_DATA_DIR, default ./{DEFAULT_DATA_DIR})",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="create a data dir, a project and its two keys")
    init.add_argument("--project", default=DEMO_PROJECT)
    init.add_argument("--origin", action="append", default=[], help="allowed origin (repeatable)")

    projects = commands.add_parser("projects", help="create or list projects")
    pverbs = projects.add_subparsers(dest="verb", required=True)
    pcreate = pverbs.add_parser("create")
    pcreate.add_argument("name")
    pcreate.add_argument("--channel", action="append", default=[], help="extra channel")
    pverbs.add_parser("list")

    keys = commands.add_parser("keys", help="create, list or revoke keys")
    kverbs = keys.add_subparsers(dest="verb", required=True)
    kcreate = kverbs.add_parser("create")
    kcreate.add_argument("project")
    kcreate.add_argument("--kind", choices=["site", "server"], required=True)
    kcreate.add_argument("--channel", action="append", default=[])
    kcreate.add_argument("--origin", action="append", default=[])
    klist = kverbs.add_parser("list")
    klist.add_argument("project", nargs="?")
    krevoke = kverbs.add_parser("revoke")
    krevoke.add_argument("key_id", help="the public id shown by `keys list`")

    for name in ("serve", "demo"):
        serve = commands.add_parser(name, help="serve the gateway over HTTP")
        serve.add_argument("--host")
        serve.add_argument("--port", type=int)
        serve.add_argument("--synchronous", choices=["FULL", "NORMAL"])
        serve.add_argument("--max-pending", type=int)
        serve.add_argument("--trusted-proxies", help="comma-separated addresses or networks")

    stats = commands.add_parser("stats", help="print a project's stats as a table")
    stats.add_argument("project")
    stats.add_argument("--metric", required=True, choices=list(voxloop_core.METRIC_RANGES))
    stats.add_argument("--channel", action="append", default=[])
    stats.add_argument("--form", action="append", default=[])
    stats.add_argument("--from", dest="start")
    stats.add_argument("--to", dest="end")
    stats.add_argument("--interval", choices=list(voxloop_core.INTERVALS))

    commands.add_parser("core", help="say which core implementation loads, and exit")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    flags = {
        "data_dir": args.data_dir,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "synchronous": getattr(args, "synchronous", None),
        "max_pending": getattr(args, "max_pending", None),
        "trusted_proxies": getattr(args, "trusted_proxies", None),
    }
    return load_settings(flags)


def _describe(key: Key) -> str:
    state = "revoked" if key.revoked else "active"
    rules = f"channels={','.join(sorted(key.channels))}"
    if key.kind == "site":
        rules += f" origins={','.join(sorted(key.origins)) or '-'}"
    return f"{key.id}…  {key.project:<16} {key.kind:<6} {state:<7} {rules}"


def _init(registry: Registry, project: str, origins: Sequence[str]) -> tuple[str, str]:
    registry.create_project(project)
    site, _ = registry.create_key(project, "site", ["web"], origins)
    server, _ = registry.create_key(project, "server")
    return site, server


def _print_keys(project: str, site: str, server: str) -> None:
    print(f"project {project}")
    print(f"  site key   {site}   (public: web pages and apps)")
    print(f"  server key {server}   (secret: servers only)")
    print("  keys are shown once and stored hashed; `keys create` makes more.")


def _demo(registry: Registry, settings: Settings) -> None:
    """Make sure the demo project exists, mint fresh demo keys, print how to try them."""
    base = f"http://{settings.host}:{settings.port}"
    origins = [base, f"http://localhost:{settings.port}"]
    registry.load()
    if DEMO_PROJECT not in {p.id for p in registry.projects()}:
        registry.create_project(DEMO_PROJECT)
        print(f"created the demo project in {settings.data_dir}/")
    for old in registry.keys(DEMO_PROJECT):
        if not old.revoked:
            registry.revoke_key(old.id)
    site, _ = registry.create_key(DEMO_PROJECT, "site", ["web"], origins)
    server, _ = registry.create_key(DEMO_PROJECT, "server")
    _print_keys(DEMO_PROJECT, site, server)
    body = '{"events":[{"channel":"web","form":"checkout","metric":"nps","score":9}]}'
    print("\npost a rating:")
    print(
        f"  curl -s {base}/v1/events -H 'Authorization: Bearer {site}'"
        f" -H 'Content-Type: application/json' -d '{body}'"
    )
    print("read the score:")
    print(
        f"  curl -s '{base}/v1/stats?metric=nps&interval=day' -H 'Authorization: Bearer {server}'"
    )
    print(f"more: {base}/openapi.json  {base}/metrics  {base}/readyz\n", flush=True)


def _stats(args: argparse.Namespace, settings: Settings) -> None:
    from .service import Service
    from .stats import StatsQuery, compute

    async def run() -> Any:
        service = Service(settings)
        project = service.registry.project(args.project, reload=True)
        unknown = sorted(set(args.channel) - project.channels)
        if unknown:
            raise ConfigError(f"project {project.id!r} has no channel {', '.join(unknown)}")
        from .stats import _instant

        query = StatsQuery(
            metric=args.metric,
            channels=tuple(args.channel) or tuple(sorted(project.channels)),
            forms=tuple(args.form) or None,
            start_ms=_instant(args.start, "from"),
            end_ms=_instant(args.end, "to"),
            interval=args.interval,
        )
        try:
            return await compute(service, project.id, query)
        finally:
            await service.close()

    answer = asyncio.run(run())
    print(f"{'bucket':<22} {'count':>7} {'score':>7} {'±margin':>8}  histogram")
    rows = [("total", answer.total)] + [(b.start or "", b) for b in answer.series or []]
    for label, bucket in rows:
        score = "-" if bucket.score is None else f"{bucket.score:.1f}"
        margin = "-" if bucket.margin is None else f"{bucket.margin:.1f}"
        print(f"{label:<22} {bucket.count:>7} {score:>7} {margin:>8}  {bucket.histogram}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"voxloop-gateway: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    registry = Registry(settings.data_dir)
    if args.command == "core":
        print(core_banner(), file=sys.stderr)
    elif args.command == "init":
        _print_keys(args.project, *_init(registry, args.project, args.origin))
    elif args.command == "projects" and args.verb == "create":
        project = registry.create_project(args.name, args.channel)
        print(f"project {project.id}: channels {', '.join(sorted(project.channels))}")
    elif args.command == "projects":
        for project in registry.projects():
            print(f"{project.id:<16} channels={','.join(sorted(project.channels))}")
    elif args.command == "keys" and args.verb == "create":
        raw, key = registry.create_key(args.project, args.kind, args.channel, args.origin)
        print(raw)
        print(_describe(key), file=sys.stderr)
    elif args.command == "keys" and args.verb == "list":
        if args.project:
            registry.project(args.project, reload=True)
        for key in registry.keys(args.project):
            print(_describe(key))
    elif args.command == "keys":
        print(f"revoked {_describe(registry.revoke_key(args.key_id))}")
    elif args.command == "stats":
        _stats(args, settings)
    else:
        _serve(args, settings, registry)
    return 0


def _serve(args: argparse.Namespace, settings: Settings, registry: Registry) -> None:
    import uvicorn

    from .app import create_app

    print(core_banner(), file=sys.stderr)
    if args.command == "demo":
        _demo(registry, settings)
    elif not registry.path.exists():
        raise ConfigError(
            f"no registry in {settings.data_dir}/: run `voxloop-gateway init` first"
            " (or `make run` for a demo)"
        )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=8,
    )


if __name__ == "__main__":
    raise SystemExit(main())
