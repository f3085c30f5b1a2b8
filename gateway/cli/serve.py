"""``serve`` and ``demo``: the gateway over HTTP, and the server that drains before it stops.

Both take their port before anything else, so a second start on a busy port changes nothing. A
served gateway stops on SIGTERM or SIGINT after a drain (see :class:`DrainingServer`) and exits
with status 0.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
import time
from types import FrameType

import asyncpg  # type: ignore[import-untyped]
import msgspec
import uvicorn

from .. import collector, migrate
from ..app import create_app
from ..control.people import People
from ..errors import ConfigError
from ..routes.demo import DEMO_OWNER, DEMO_PROJECT, SAMPLE_PROJECT, Demo, seed_sample
from ..service import Service
from ..settings import Settings
from ..stores import StoreUnavailable
from .base import (
    Registry,
    cli,
    no_registry,
    one_line,
    print_keys,
    registry,
    setting_options,
    settings,
)
from .ops import core_banner

#: The listen backlog, as uvicorn's default.
BACKLOG = 2048

SETTINGS_HELP = (
    "Every setting is a flag below or a VOXLOOP_* variable (--max-body or VOXLOOP_MAX_BODY;"
    " flags win), checked before the start: a bad one stops it with one line naming it and its"
    " rule. --data-dir and --store go before the command."
)


@cli.command(short_help="serve the gateway over HTTP", epilog=SETTINGS_HELP)
@setting_options
def serve(**flags: str | None) -> None:
    """Serve the gateway over HTTP, on --host and --port, from the registry and stores that
    `init` made (on PostgreSQL: after `migrate`).

    On SIGTERM or SIGINT it drains: /readyz and new events answer 503 for --drain-seconds,
    then it stops listening, lets the requests in flight finish, commits what is queued and
    exits with status 0. A second signal cuts the drain short.
    """
    _start("serve", flags)


@cli.command(short_help="serve the demo: what `make run` does", epilog=SETTINGS_HELP)
@setting_options
def demo(**flags: str | None) -> None:
    """Serve the gateway with its demo page: what `make run` does.

    Makes the demo project if there is none, revokes its earlier keys, mints fresh ones and
    prints them, with curl lines that post a rating and read the score, then serves as `serve`
    does, with /demo (every widget and a sample email). Its own SQLite files are migrated
    without asking.

    The dashboard at /app/ opens on the sample project: two months of feedback stored the first
    time. The demo owner (owner@demo.example) gets a new one-time password at each start,
    printed here, to be changed at the first login.
    """
    _start("demo", flags)


def _start(command: str, flags: dict[str, str | None]) -> None:
    current = settings(flags)
    # The port first: a gateway that can't listen must leave the keys and files as they are.
    sockets = _listen(current)
    try:
        if current.port == 0:
            current = msgspec.structs.replace(current, port=sockets[0].getsockname()[1])
        with registry(current, needed=command == "serve") as found:
            _serve(command, current, found, sockets)
    finally:
        for sock in sockets:
            sock.close()


def _serve(
    command: str, settings: Settings, registry: Registry, sockets: list[socket.socket]
) -> None:
    if command == "demo" and not settings.postgres:
        migrate.migrate(settings)  # the demo's own files: upgrade them without asking
    migrate.check(settings)
    if command == "serve" and settings.postgres and not registry.db.exists():
        raise no_registry(registry)
    asyncio.run(_try_open(settings))
    print(core_banner(), file=sys.stderr)
    demo = None
    if command == "demo":
        _sample(registry, settings)
        demo = _demo(registry, settings)
    app = create_app(settings, demo)
    collector.settle()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=settings.in_flight_seconds,
    )
    DrainingServer(config, app.state.service, settings.drain_seconds).run(sockets)


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
    print_keys(DEMO_PROJECT, site, server)
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
    _owner(registry, base)
    print(f"more: {base}/openapi.json  {base}/metrics  {base}/readyz\n", flush=True)
    return Demo(site, secret.secret)


def _sample(registry: Registry, settings: Settings) -> None:
    """Make the sample project and store its feedback, the first time only."""
    registry.load()
    if SAMPLE_PROJECT in {p.id for p in registry.projects()}:
        return
    registry.create_project(SAMPLE_PROJECT)
    stored = asyncio.run(_seed(settings))
    print(f"created the sample project, with {stored} answers of the last two months")


async def _seed(settings: Settings) -> int:
    service = Service(settings)
    try:
        await service.connect()
        return await seed_sample(service, int(time.time() * 1000))
    finally:
        await service.close()


def _owner(registry: Registry, base: str) -> None:
    """Give the demo owner a fresh one-time password (making them the first time); print it."""
    people = People(registry.db)
    if DEMO_OWNER in {user.email for user in people.users()}:
        password = people.reset_password(DEMO_OWNER)
    else:
        _, password = people.create_user(DEMO_OWNER, ["owner"])
    print(f"\nthe dashboard, on the sample project's feedback: {base}/app/")
    print(f"  log in as {DEMO_OWNER} with the one-time password {password}")
    print("  (shown once; you choose your own password at the first login)")


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
        raise ConfigError(f"can't open the stores: {one_line(exc)}") from None
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
