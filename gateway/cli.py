"""The ``voxloop-gateway`` command line: set up projects and keys, serve, read stats.

    voxloop-gateway init [--project demo] [--origin URL]...   a data dir, a project, two keys
    voxloop-gateway projects create NAME [--channel C]... | list
    voxloop-gateway keys create PROJECT --kind site|server [--channel C]... [--origin URL]...
    voxloop-gateway keys list [PROJECT] | revoke KEY_ID
    voxloop-gateway email-secret create PROJECT | list [PROJECT] | revoke ID   rating-link secrets
    voxloop-gateway serve [--host H] [--port P] [--drain-seconds S] ...   every setting a flag
    voxloop-gateway demo                                      what `make run` does
    voxloop-gateway stats PROJECT --metric nps [--interval day] ...
    voxloop-gateway core                                      which core implementation loads
    voxloop-gateway migrate                                   bring the schema to this version
    voxloop-gateway --store postgresql://… COMMAND            the same on PostgreSQL

Every error is one line on stderr and an exit status: 2 for what the command was given (a
usage error, a bad setting or name, a port in use), 1 for what went wrong while it ran (a store
that can't be read). ``serve`` and ``demo`` take their port before anything else, so a second
start on a busy port changes nothing. A served gateway stops on SIGTERM or SIGINT after a drain
(see :class:`DrainingServer`) and exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from types import FrameType
from typing import Any, NoReturn

import asyncpg  # type: ignore[import-untyped]
import msgspec
import uvicorn

import voxloop_core

from . import __version__, migrate
from .app import create_app
from .demo import DEMO_PROJECT, Demo
from .errors import ConfigError
from .registry import Key, Registry
from .service import Service, secure_data_dir
from .settings import (
    DEFAULT_DATA_DIR,
    RULES,
    Settings,
    env_name,
    flag_name,
    load_settings,
    redacted_store,
    unknown_variables,
)
from .stores import StoreUnavailable

#: Settings every command reads, given before the command: where the registry and stores are.
GLOBAL_SETTINGS = ("data_dir", "store")
#: Commands that read or change what ``init`` made: they refuse a data dir without a registry
#: rather than make an empty one. (``init``, ``projects create`` and ``demo`` make one.)
NEEDS_REGISTRY = ("keys", "email-secret", "stats", "serve", "projects list")
#: The listen backlog, as uvicorn's default.
BACKLOG = 2048
#: What ``stats --from`` and ``--to`` take.
TIME_FORMATS = (
    "an RFC 3339 time with its zone (2024-05-01T09:30:00Z, 2024-05-01T11:30:00+02:00)"
    " or a date (2024-05-01: its midnight, UTC)"
)
HOUR_MS = 3_600_000


def core_banner() -> str:
    """One line saying which core serves, and why it is the pure one when it is."""
    if voxloop_core.FALLBACK_REASON is None:
        return f"voxloop core: {voxloop_core.IMPLEMENTATION} (compiled extension loaded)"
    return (
        f"voxloop core: {voxloop_core.IMPLEMENTATION} (pure-Python reference:"
        f" {voxloop_core.FALLBACK_REASON}); ingestion will be slower"
    )


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line (and status 2), like every error.

    Its commands and verbs are not required as argparse sees them, so that an option it doesn't
    know is named as such (``unrecognized arguments: --bogus``) rather than reported as a
    missing command; :meth:`parse_args` then asks for the command, or the verb, itself.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        parsed = super().parse_args(args, namespace)
        parser: argparse.ArgumentParser = self
        for dest in ("command", "verb"):
            commands = _subcommands(parser)
            if commands is None or commands.dest != dest:
                break
            chosen = getattr(parsed, dest, None)
            if chosen is None:
                parser.error(f"the following arguments are required: {dest}")
            parser = commands.choices[chosen]
        return parsed


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any] | None:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return found[0] if found else None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    parser.add_argument(
        "--store",
        default=None,
        help="sqlite (the files in the data dir, the default) or a postgresql:// URL shared by"
        " every replica (VOXLOOP_STORE)",
    )
    commands = parser.add_subparsers(dest="command")

    init = commands.add_parser("init", help="create a data dir, a project and its two keys")
    init.add_argument("--project", default=DEMO_PROJECT)
    init.add_argument("--origin", action="append", default=[], help="allowed origin (repeatable)")

    projects = commands.add_parser("projects", help="create or list projects")
    pverbs = projects.add_subparsers(dest="verb")
    pcreate = pverbs.add_parser("create")
    pcreate.add_argument("name")
    pcreate.add_argument("--channel", action="append", default=[], help="extra channel")
    pverbs.add_parser("list")

    keys = commands.add_parser("keys", help="create, list or revoke keys")
    kverbs = keys.add_subparsers(dest="verb")
    kcreate = kverbs.add_parser("create")
    kcreate.add_argument("project")
    kcreate.add_argument("--kind", choices=["site", "server"], required=True)
    kcreate.add_argument("--channel", action="append", default=[])
    kcreate.add_argument("--origin", action="append", default=[])
    klist = kverbs.add_parser("list")
    klist.add_argument("project", nargs="?")
    krevoke = kverbs.add_parser("revoke")
    krevoke.add_argument("key_id", help="the public id shown by `keys list`")

    email = commands.add_parser(
        "email-secret", help="create, list or revoke the secrets that sign email rating links"
    )
    everbs = email.add_subparsers(dest="verb")
    everbs.add_parser("create").add_argument("project")
    everbs.add_parser("list").add_argument("project", nargs="?")
    everbs.add_parser("revoke").add_argument("secret_id", help="the id shown by `list`")

    defaults = Settings()
    for name in ("serve", "demo"):
        serve = commands.add_parser(name, help="serve the gateway over HTTP")
        # Every setting, as text: load_settings reads and checks flags and variables alike.
        for setting, rule in RULES.items():
            if setting not in GLOBAL_SETTINGS:
                default = getattr(defaults, setting)
                serve.add_argument(
                    flag_name(setting),
                    help=f"{rule.must_be}; {env_name(setting)}, default {default or 'none'}",
                )

    stats = commands.add_parser(
        "stats",
        help="print a project's stats as a table",
        description="The project's score, count and histogram, in all or over a window of"
        " hours: those starting at or after --from (rounded down to its hour) and before --to.",
    )
    stats.add_argument("project")
    metrics = ", ".join(voxloop_core.METRIC_RANGES)
    stats.add_argument(
        "--metric",
        required=True,
        choices=list(voxloop_core.METRIC_RANGES),
        metavar="METRIC",
        help=f"one of {metrics}",
    )
    stats.add_argument(
        "--channel", action="append", default=[], help="only this channel (repeatable)"
    )
    stats.add_argument("--form", action="append", default=[], help="only this form (repeatable)")
    stats.add_argument("--from", dest="start", metavar="TIME", help=TIME_FORMATS)
    stats.add_argument("--to", dest="end", metavar="TIME", help="the same, after --from")
    stats.add_argument(
        "--interval",
        choices=list(voxloop_core.INTERVALS),
        metavar="INTERVAL",
        help=f"a row per {', '.join(voxloop_core.INTERVALS)} (weeks start on Monday, UTC)",
    )

    commands.add_parser("core", help="say which core implementation loads, and exit")
    commands.add_parser(
        "migrate", help="bring the registry's and the stores' schema to this version"
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    for warning in unknown_variables():
        print(f"voxloop-gateway: warning: {warning}", file=sys.stderr)
    flags = {name: getattr(args, name, None) for name in RULES}
    flags["data_dir"] = args.data_dir
    flags["store"] = args.store
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


def _demo(registry: Registry, settings: Settings) -> Demo:
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
    signing = [s for s in registry.email_secrets(DEMO_PROJECT) if not s.revoked]
    secret = signing[-1] if signing else registry.create_email_secret(DEMO_PROJECT)
    _print_keys(DEMO_PROJECT, site, server)
    print(f"\nthe demo page, with every widget and a sample email: {base}/demo")
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
    return Demo(site, secret.secret)


def _instant(text: str | None, flag: str) -> int | None:
    """``--from`` or ``--to`` as epoch milliseconds; ConfigError naming the flag and the forms."""
    if text is None:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(f"{flag} {text!r} is not valid: it must be {TIME_FORMATS}") from None
    return int(moment.timestamp() * 1000)


def _stats(args: argparse.Namespace, settings: Settings) -> None:
    from .stats import StatsQuery, compute

    start = _instant(args.start, "--from")
    end = _instant(args.end, "--to")
    if start is not None:
        start -= start % HOUR_MS  # the window is made of whole hours
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"--to {args.end!r} must be later than --from {args.start!r}")

    async def run() -> Any:
        # What GET /v1/stats reads, through the same code; a store that doesn't exist yet has
        # no events, and a read doesn't make it.
        service = Service(settings)
        try:
            await service.connect()
            project = service.registry.project(args.project, reload=True)
            unknown = sorted(set(args.channel) - project.channels)
            if unknown:
                raise ConfigError(f"project {project.id!r} has no channel {', '.join(unknown)}")
            channels = tuple(args.channel) or tuple(sorted(project.channels))
            query = StatsQuery(
                metric=args.metric,
                channels=tuple([c for c in channels if await service.has_store(c)]),
                forms=tuple(args.form) or None,
                start_ms=start,
                end_ms=end,
                interval=args.interval,
            )
            return await compute(service, project.id, query)
        finally:
            await service.close()

    answer = asyncio.run(run())
    # interval: the score's 95% confidence interval, [low, high].
    print(f"{'bucket':<22} {'count':>7} {'score':>7}  {'interval':<16}  histogram")
    rows = [("total", answer.total)] + [(b.start or "", b) for b in answer.series or []]
    for label, bucket in rows:
        score = "-" if bucket.score is None else f"{bucket.score:.1f}"
        interval = "-"
        if bucket.low is not None and bucket.high is not None:
            interval = f"[{bucket.low:.1f}, {bucket.high:.1f}]"
        print(f"{label:<22} {bucket.count:>7} {score:>7}  {interval:<16}  {bucket.histogram}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"voxloop-gateway: {_without_secrets(str(exc), args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("voxloop-gateway: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a store, the disk, the network: one line, never a traceback
        said = _without_secrets(_one_line(exc), args)
        print(f"voxloop-gateway: {args.command} failed: {said}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _without_secrets(message: str, args: argparse.Namespace) -> str:
    """``message`` with the store URL, wherever a library may have quoted it, shown redacted."""
    for url in (args.store, os.environ.get(env_name("store"))):
        if url:
            message = message.replace(url, redacted_store(url))
    return message


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # The port first: a gateway that can't listen must leave the keys and files as they are.
    sockets = _listen(settings) if args.command in ("serve", "demo") else []
    try:
        if sockets and settings.port == 0:
            settings = msgspec.structs.replace(settings, port=sockets[0].getsockname()[1])
        registry = Registry(settings.data_dir, settings.store)
        try:
            return _command(args, settings, registry, sockets)
        finally:
            registry.close()
    finally:
        for sock in sockets:
            sock.close()


def _listen(settings: Settings) -> list[socket.socket]:
    """Sockets listening on every address of ``settings.host`` at ``settings.port``.

    Raises:
        ConfigError: one line naming the setting to change: the host doesn't resolve or isn't
            this machine's, the port is in use or needs privileges.
    """
    host, port = settings.host, settings.port
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    change_host = "set --host or VOXLOOP_HOST to an address of this machine (default 127.0.0.1)"
    try:
        found = socket.getaddrinfo(
            host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(
            f"can't listen on {where}: host {host!r} doesn't resolve ({exc}); {change_host}"
        ) from None
    sockets: list[socket.socket] = []
    try:
        unique = dict.fromkeys(
            (family, kind, proto, address) for family, kind, proto, _, address in found
        )
        for family, kind, proto, address in unique:
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # one free port for every address
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(BACKLOG)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"can't listen on {where}: the port is in use (another gateway or `make run`?);"
                " stop it, or choose another port with --port or VOXLOOP_PORT"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"can't listen on {where}: port {port} needs privileges;"
                " choose one above 1023 with --port or VOXLOOP_PORT"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(
                f"can't listen on {where}: {host!r} is not an address of this machine;"
                f" {change_host}"
            ) from None
        raise ConfigError(
            f"can't listen on {where}: {exc.strerror or exc}; check --host / VOXLOOP_HOST"
            " and --port / VOXLOOP_PORT"
        ) from None
    return sockets


def _command(
    args: argparse.Namespace,
    settings: Settings,
    registry: Registry,
    sockets: list[socket.socket],
) -> int:
    command = f"{args.command} {getattr(args, 'verb', '')}".strip()
    # On PostgreSQL the schema check (``migrate.check``) says first what is missing.
    needs = args.command in NEEDS_REGISTRY or command in NEEDS_REGISTRY
    if needs and settings.store == "sqlite" and not registry.db.exists():
        raise _no_registry(registry)
    if args.command != "core" and not settings.postgres and settings.data_dir.is_dir():
        # Closed again if a copy or a restore left it open. Best effort: a command that needs
        # the stores (serve, demo, stats, migrate) says what is wrong with them itself.
        with contextlib.suppress(OSError):
            secure_data_dir(settings.data_dir)
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
    elif args.command == "email-secret":
        _email_secret(args, registry)
    elif args.command == "stats":
        _stats(args, settings)
    elif args.command == "migrate":
        for line in migrate.migrate(settings):
            print(line)
    else:
        _serve(args, settings, registry, sockets)
    return 0


def _email_secret(args: argparse.Namespace, registry: Registry) -> None:
    if args.verb == "create":
        made = registry.create_email_secret(args.project)
        print(made.secret.hex())
        print(
            f"{made.id}  {made.project}: give the hex above to the server that sends the"
            " emails (voxloop.email.rating_links(..., secret=bytes.fromhex(...)));"
            " it is shown once",
            file=sys.stderr,
        )
    elif args.verb == "list":
        if args.project:
            registry.project(args.project, reload=True)
        for found in registry.email_secrets(args.project):
            print(f"{found.id}  {found.project:<16} {'revoked' if found.revoked else 'active'}")
    else:
        revoked = registry.revoke_email_secret(args.secret_id)
        print(f"revoked {revoked.id}  {revoked.project}")


def _no_registry(registry: Registry) -> ConfigError:
    return ConfigError(
        f"no registry in {registry.db.where}: run `voxloop-gateway init` first"
        " (or `make run` for a demo)"
    )


def _serve(
    args: argparse.Namespace,
    settings: Settings,
    registry: Registry,
    sockets: list[socket.socket],
) -> None:
    if args.command == "demo" and not settings.postgres:
        migrate.migrate(settings)  # the demo's own files: upgrade them without asking
    migrate.check(settings)
    if args.command == "serve" and settings.postgres and not registry.db.exists():
        raise _no_registry(registry)
    asyncio.run(_try_open(settings))
    print(core_banner(), file=sys.stderr)
    demo = _demo(registry, settings) if args.command == "demo" else None
    app = create_app(settings, demo)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=settings.in_flight_seconds,
    )
    DrainingServer(config, app.state.service, settings.drain_seconds).run(sockets)


async def _try_open(settings: Settings) -> None:
    """Open the registry and every store as the gateway's start will, then close them.

    What would stop the start (a registry or a store file that isn't a database, a store that
    can't be made, PostgreSQL refusing the pool) then stops it here, in one line and with
    status 2, before anything is served or, for the demo, any key minted.
    """
    service = Service(settings)
    try:
        await service.connect()
        for channel in service.channels():
            await service.store(channel)
    except StoreUnavailable as exc:  # it names the store and what is wrong with it
        raise ConfigError(str(exc)) from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ConfigError(f"can't open the stores: {_one_line(exc)}") from None
    finally:
        await service.close()


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a drain between the stop signal and the stop.

    On the first SIGTERM or SIGINT the gateway marks itself draining: ``/readyz`` and new
    ``POST /v1/events`` answer 503 with Retry-After, so a load balancer takes this replica out
    of rotation and clients send their events elsewhere, while it still serves. After
    ``drain_seconds`` uvicorn stops as usual: it stops listening, lets the requests in flight
    finish, and the lifespan closes the stores once every queued commit has landed. A second
    signal ends the drain at once; a Ctrl+C during the stop quits without waiting (as uvicorn).

    The process then exits normally, with status 0: the stop was asked for and went as planned
    (plain uvicorn re-raises the signal, and so dies of it).
    """

    def __init__(self, config: uvicorn.Config, service: Service, drain_seconds: float) -> None:
        super().__init__(config)
        self.service = service
        self.drain_seconds = drain_seconds
        self.stop_at: float | None = None
        self._said_draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: only set flags (no logging, no loop calls); on_tick acts on them.
        if self.stop_at is None:
            self.service.draining = True
            self.stop_at = time.monotonic() + self.drain_seconds
        elif not self.should_exit:
            self.should_exit = True
        elif sig == signal.SIGINT:
            self.force_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's start-up, saying where it listens also when given its sockets."""
        await super().startup(sockets)
        if sockets and self.started:
            for sock in sockets:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
                logging.getLogger("uvicorn.error").info(
                    "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port
                )

    async def on_tick(self, counter: int) -> bool:
        """Every 0.1 s in uvicorn's main loop: say that the drain began, stop when it is over."""
        if self.stop_at is not None:
            if not self._said_draining:
                self._said_draining = True
                logging.getLogger("uvicorn.error").info(
                    "Draining: /readyz and new events answer 503 for %g s, then stopping",
                    self.drain_seconds,
                )
            if time.monotonic() >= self.stop_at:
                self.should_exit = True
        return await super().on_tick(counter)


if __name__ == "__main__":
    raise SystemExit(main())
