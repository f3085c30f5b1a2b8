"""The HTTP benchmark: the gateway and its peers under wrk, side by side, in one run.

Each app runs under the same uvicorn settings, pinned to CPU 0; wrk runs pinned to CPU 1 and
speaks only the wire contract. Scenarios: 1-event and 100-event batches, each as a stream of
unique events and as a stream of 100% duplicates (the same body again and again). The gateway
runs in two configurations: ``gateway``, plain (:func:`plain_gateway_env`: nothing a stored
event sets off, no scrubbing, no rules, no webhook endpoints), and, in the unique streams,
``gateway_real`` (:class:`RealGateway`), the realistic one: a new project's policy, which
scrubs (checked), the integrations section's five rules and two webhook endpoints on a receiver
that runs beside it. Every run
also measures the server's CPU time during the load (user + system, from /proc), printed per
event sent: per stored event in the unique streams.

After the rounds: the gateway alone at about half its peak rate, paced by wrk's ``delay()``, for
p99 latency; then each gateway configuration offered twice its peak 1-event rate
(:mod:`.overload`), its answers counted by status.

Beside the goals it prints their floors, measured in the same run: the bare ASGI peer (uvicorn
and asyncio, no framework) for the HTTP part, and the store alone (:mod:`.floors`) for the
durable write; what a request costs at least is their sum, which bounds what any gateway on this
machine can reach.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import httpx

if TYPE_CHECKING:
    from .floors import StoreFloors

#: the peer apps, kept beside the project (``--peers`` or VOXLOOP_BENCH_PEERS to point elsewhere)
DEFAULT_PEERS = Path(__file__).resolve().parents[1] / ".." / "shared" / "bench" / "peers"
UVICORN_FLAGS = ["--no-access-log", "--log-level", "warning", "--host", "127.0.0.1"]
GATEWAY_MODULE: Final = "voxloop_gateway.asgi:app"
#: wrk's connections in a run at full speed, and in a paced one (``delay_ms``) unless told.
CONNECTIONS: Final = 32
PACED_CONNECTIONS: Final = 8
_RESULT = re.compile(r"VXRESULT (\d+) (\d+) (\d+) (\d+) (\d+)")
_COUNTS = re.compile(r"VXCOUNTS" + r" (\d+)" * 8)

# wrk script: builds contract bodies with UUIDv7 ids unique per thread and request; prints one
# machine-readable line at the end. VX_DELAY_MS paces each connection for the latency run.
# VX_COUNT=1 defines response(), which counts the answers by status (2xx, 503 with Retry-After,
# 429, anything else) and prints them with the socket errors on a second line; only then, as a
# Lua response() makes wrk parse every answer for it, which costs the runs at full speed.
WRK_SCRIPT = r"""
local n = tonumber(os.getenv("VX_BATCH")) or 1
local unique = os.getenv("VX_UNIQUE") == "1"
local key = os.getenv("VX_KEY") or ""
local pace = tonumber(os.getenv("VX_DELAY_MS")) or 0
local counting = os.getenv("VX_COUNT") == "1"
vx_ok, vx_shed, vx_limited, vx_bad = 0, 0, 0, 0
local counter, tid, fixed = 0, 0, nil
-- Ids carry the time in milliseconds, as the SDK's and the widget's do (os.time() has seconds):
-- a second's events sharing one timestamp would land in random order in every index by id.
local ffi = require("ffi")
ffi.cdef("typedef struct { long sec; long usec; } vx_timeval;"
  .. " int gettimeofday(vx_timeval *tv, void *tz);")
local clock = ffi.new("vx_timeval")
local function now_ms()
  ffi.C.gettimeofday(clock, nil)
  return tonumber(clock.sec) * 1000 + math.floor(tonumber(clock.usec) / 1000)
end
local metrics = {{"nps", 0, 10}, {"csat", 1, 5}, {"ces", 1, 7}}
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() * 97 + (tid or 0))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
end
local function body()
  local parts = {}
  local ms = now_ms()
  for i = 1, n do
    counter = counter + 1
    local m = metrics[(counter % 3) + 1]
    local id = string.format("%08x-%04x-7%03x-%04x-%04x%08x",
      math.floor(ms / 65536), ms % 65536, math.random(0, 4095), 32768 + math.random(0, 16383),
      (tid or 0) * 256 + math.random(0, 255), counter)
    parts[i] = string.format(
      '{"id":"%s","channel":"web","form":"checkout","metric":"%s","score":%d,'
      .. '"comment":"Fast checkout, thanks!"}',
      id, m[1], m[2] + counter % (m[3] - m[2] + 1))
  end
  return '{"events":[' .. table.concat(parts, ",") .. ']}'
end
function request()
  if unique then return wrk.format(nil, nil, nil, body()) end
  if not fixed then fixed = wrk.format(nil, nil, nil, body()) end
  return fixed
end
if pace > 0 then function delay() return pace end end
local function retry_after(headers)
  for name, value in pairs(headers) do
    if string.lower(name) == "retry-after" and value ~= "" then return true end
  end
  return false
end
if counting then
  function response(status, headers, body)
    if status >= 200 and status < 300 then vx_ok = vx_ok + 1
    elseif status == 429 then vx_limited = vx_limited + 1
    elseif status == 503 and retry_after(headers) then vx_shed = vx_shed + 1
    else vx_bad = vx_bad + 1 end
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("VXRESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
  if counting then
    local ok, shed, limited, bad = 0, 0, 0, 0
    for _, thread in ipairs(threads) do
      ok = ok + thread:get("vx_ok")
      shed = shed + thread:get("vx_shed")
      limited = limited + thread:get("vx_limited")
      bad = bad + thread:get("vx_bad")
    end
    io.write(string.format("VXCOUNTS %d %d %d %d %d %d %d %d\n", ok, shed, limited, bad,
      e.connect, e.read, e.write, e.timeout))
  end
end
"""


@dataclass
class Counts:
    """A counted run's answers by status, and its socket errors (``VX_COUNT``)."""

    ok: int
    #: 503 with a Retry-After header: the gateway shedding load as the contract says.
    shed: int
    limited: int
    #: Every other answer: a 503 without Retry-After, a 500, a 4xx other than 429...
    bad: int
    connect: int
    read: int
    write: int
    timeout: int

    @property
    def socket_errors(self) -> int:
        return self.connect + self.read + self.write + self.timeout


@dataclass
class Run:
    """One wrk run's figures."""

    requests_s: float
    events_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: The server's CPU time (user + system) during the run, and the run's length.
    cpu_s: float = 0.0
    duration_s: float = 0.0
    counts: Counts | None = None

    @property
    def cpu_us_per_event(self) -> float:
        """The server's CPU time per event sent (per stored event in a unique stream), in µs."""
        sent = self.events_s * self.duration_s
        return 1e6 * self.cpu_s / sent if sent else math.nan


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class App:
    """An ASGI app under uvicorn, pinned to CPU 0, restarted fresh for each scenario."""

    def __init__(self, name: str, module: str, env: dict[str, str], app_dir: Path | None) -> None:
        self.name, self.module, self.env, self.app_dir = name, module, env, app_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        self.port = free_port()
        command = ["taskset", "-c", "0", sys.executable, "-m", "uvicorn", self.module]
        command += [*UVICORN_FLAGS, "--port", str(self.port)]
        if self.app_dir is not None:
            command += ["--app-dir", str(self.app_dir)]
        self.process = subprocess.Popen(command, env={**os.environ, **self.env})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start")

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def stop(self, kill: bool = False) -> None:
        """Stop the server: terminated and given 15 s to finish, or (``kill``) killed."""
        if self.process is not None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


class RealGateway(App):
    """The gateway in the realistic configuration: a new project, whose policy scrubs comments
    (checked before it starts), with the integrations section's five rules and two webhook
    endpoints (``integrations_bench.prepare``) on a receiver of its own, started with it and
    stopped with it, so that the rules and the deliveries work during the load as they would."""

    def __init__(self, data_dir: Path) -> None:
        from .integrations_bench import LOOPBACK

        env, self.key = gateway_env(data_dir)
        env["VOXLOOP_WEBHOOK_ALLOW"] = LOOPBACK
        super().__init__("gateway_real", GATEWAY_MODULE, env, None)
        self.data_dir = data_dir
        self._receiver = contextlib.ExitStack()

    def start(self) -> None:
        # Imported here: integrations_bench imports this module.
        from .integrations_bench import prepare, receiver_process

        try:
            prepare(self.data_dir, self._receiver.enter_context(receiver_process()))
            _check_scrubs(self.data_dir)
            super().start()
        except BaseException:
            self._receiver.close()
            raise

    def stop(self, kill: bool = True) -> None:
        """Killed by default, as the integrations section's gateways: its data dir is thrown
        away, and one stopped while its feed is in a batch's transaction takes seconds."""
        try:
            super().stop(kill)
        finally:
            self._receiver.close()


def _check_scrubs(data_dir: Path) -> None:
    """RuntimeError unless the bench's project scrubs its comments at ingest."""
    from voxloop_gateway.control.registry import Registry

    from .integrations_bench import PROJECT

    registry = Registry(data_dir)
    try:
        if registry.project(PROJECT, reload=True).scrubber is None:
            raise RuntimeError(f"the project {PROJECT!r} of {data_dir} does not scrub")
    finally:
        registry.close()


def wrk(
    app: App,
    script: Path,
    batch: int,
    unique: bool,
    key: str,
    seconds: int,
    delay_ms: int = 0,
    *,
    connections: int | None = None,
    count: bool = False,
) -> Run:
    """One bounded wrk run against ``app``, with the server's CPU time during it; ``count``
    counts the answers by status (slower: wrk hands every answer to the script)."""
    # Imported here: read_http imports this module.
    from .read_http import cpu_seconds

    env = {
        **os.environ,
        "VX_BATCH": str(batch),
        "VX_UNIQUE": "1" if unique else "0",
        "VX_KEY": key,
        "VX_DELAY_MS": str(delay_ms),
        "VX_COUNT": "1" if count else "0",
    }
    if connections is None:
        connections = PACED_CONNECTIONS if delay_ms else CONNECTIONS
    command = ["taskset", "-c", "1", "wrk", "-t1", "-c", str(connections), "-d", f"{seconds}s"]
    command += ["--latency", "-s", str(script), f"http://127.0.0.1:{app.port}/v1/events"]
    cpu = cpu_seconds(app.pid)
    out = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    cpu = cpu_seconds(app.pid) - cpu
    found = _RESULT.search(out)
    if found is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    requests, duration_us, p50, p99, errors = map(int, found.groups())
    duration = duration_us / 1e6
    rate = requests / duration
    counts = None
    if count:
        counted = _COUNTS.search(out)
        if counted is None:
            raise RuntimeError(f"wrk printed no counts:\n{out}")
        counts = Counts(*map(int, counted.groups()))
    return Run(rate, rate * batch, p50 / 1000, p99 / 1000, errors, cpu, duration, counts)


def gateway_env(data_dir: Path, store: str = "sqlite") -> tuple[dict[str, str], str]:
    """The environment of a gateway on ``store`` with a fresh project, and its server key."""
    from voxloop_gateway import Settings, migrate
    from voxloop_gateway.control.registry import Registry

    if store != "sqlite":
        migrate.migrate(Settings(store=store, data_dir=data_dir))
    registry = Registry(data_dir, store)
    registry.create_project("bench")
    key, _ = registry.create_key("bench", "server")
    env = {
        "VOXLOOP_DATA_DIR": str(data_dir),
        "VOXLOOP_STORE": store,
        "VOXLOOP_KEY_RATE": "1e9",
        "VOXLOOP_KEY_BURST": "1e9",
    }
    return env, key


def plain_gateway_env(data_dir: Path) -> tuple[dict[str, str], str]:
    """:func:`gateway_env` for the plain configuration: nothing set off by a stored event (no
    scrubbing, the default rule disabled, no endpoints), the integrations section's (a)."""
    # Imported here: both modules import this one.
    from .integrations_bench import prepare
    from .privacy_bench import keep_comments

    env, key = gateway_env(data_dir)
    prepare(data_dir, None)
    keep_comments(data_dir)
    return env, key


class PgDatabases:
    """Fresh PostgreSQL databases for the PostgreSQL mode, dropped at the end; None if there is
    no server at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: list[str] = []

    def _admin(self, sql: str) -> None:
        import asyncio

        import asyncpg  # type: ignore[import-untyped]

        async def run() -> None:
            conn = await asyncpg.connect(self.url, timeout=5)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    def available(self) -> bool:
        try:
            self._admin("SELECT 1")
        except Exception as exc:  # any failure: no PostgreSQL mode
            print(f"http: PostgreSQL mode skipped, no server at {self.url}: {exc}", file=sys.stderr)
            return False
        return True

    def fresh(self) -> str:
        name = f"voxloop_bench_{len(self.made)}_{os.getpid()}"
        self._admin(f"DROP DATABASE IF EXISTS {name}")
        self._admin(f"CREATE DATABASE {name}")
        self.made.append(name)
        return self.url.rsplit("/", 1)[0] + "/" + name

    def drop_all(self) -> None:
        for name in self.made:
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def http_section(
    seconds: int,
    rounds: int,
    peers: Path,
    pg_url: str | None = None,
    overload_seconds: int = 30,
) -> int:
    """Run every app in every scenario ``rounds`` times, interleaved; then the half-peak latency
    run and the overload runs of ``overload_seconds`` (0: none); print medians and ratios."""
    # Imported here: overload imports this module, floors imports bench, which imports it.
    from .floors import store_floors
    from .overload import overload_run, print_overload

    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print(
            "http: needs wrk and taskset (Debian: apt-get install wrk util-linux)", file=sys.stderr
        )
        return 1
    if not peers.is_dir():
        print(f"http: no peers at {peers}; pass --peers DIR", file=sys.stderr)
        return 1
    scenarios = [(1, True), (1, False), (100, True), (100, False)]
    figures: dict[tuple[str, int, bool], list[Run]] = {}
    databases = PgDatabases(pg_url) if pg_url else None
    if databases is not None and not databases.available():
        databases = None
    floors = store_floors()  # before the rounds: no server is running meanwhile
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "events.lua"
        script.write_text(WRK_SCRIPT)
        for round_no in range(rounds):
            for batch, unique in scenarios:
                data = Path(tmp) / f"gw-{round_no}-{batch}-{unique}"
                env, key = plain_gateway_env(data)
                keys = {"gateway": key}
                apps = [
                    App("gateway", GATEWAY_MODULE, env, None),
                    App("bare_asgi", "bare_asgi:app", {}, peers),
                    App("bare_starlette", "bare_starlette:app", {}, peers),
                    App(
                        "naive_fastapi",
                        "naive_fastapi:app",
                        {"NAIVE_DB": str(Path(tmp) / f"naive-{round_no}-{batch}-{unique}.db")},
                        peers,
                    ),
                ]
                if unique:  # the realistic configuration: rules and deliveries are for new events
                    real = RealGateway(Path(tmp) / f"real-{round_no}-{batch}")
                    keys[real.name] = real.key
                    apps.insert(1, real)
                if databases is not None and unique:  # the PostgreSQL mode: one replica
                    pg_env, keys["gateway_pg"] = gateway_env(data / "pg", databases.fresh())
                    apps.insert(1, App("gateway_pg", GATEWAY_MODULE, pg_env, None))
                for app in apps:
                    app_key = keys.get(app.name, key)
                    app.start()
                    try:
                        if not unique:  # the duplicate stream: its one body is stored first
                            wrk(app, script, batch, False, app_key, 1)
                        run = wrk(app, script, batch, unique, app_key, seconds)
                    finally:
                        app.stop()
                    figures.setdefault((app.name, batch, unique), []).append(run)
                    print(
                        f"  round {round_no + 1} {app.name:<15} batch={batch:<3}"
                        f" {'unique' if unique else 'dupes':<6} {run.requests_s:>9,.0f} req/s"
                        f" p99 {run.p99_ms:.1f} ms cpu {run.cpu_us_per_event:.1f} µs/event"
                        f" errors {run.errors}",
                        file=sys.stderr,
                        flush=True,
                    )
        half = _half_rate_latency(Path(tmp), script, figures, seconds)
        overloaded = []
        if overload_seconds > 0:
            env, key = plain_gateway_env(Path(tmp) / "gw-overload")
            real = RealGateway(Path(tmp) / "real-overload")
            for app, app_key in [
                (App("gateway", GATEWAY_MODULE, env, None), key),
                (real, real.key),
            ]:
                peak = _median(figures[(app.name, 1, True)], "requests_s")
                overloaded.append(overload_run(app, app_key, script, peak, overload_seconds))
    if databases is not None:
        databases.drop_all()
    _print_http(figures, half)
    _print_floors(figures, floors)
    if overloaded:
        print_overload(overloaded, overload_seconds)
    return 0


def _half_rate_latency(
    tmp: Path, script: Path, figures: dict[tuple[str, int, bool], list[Run]], seconds: int
) -> Run:
    peak = statistics.median(r.requests_s for r in figures[("gateway", 1, True)])
    delay_ms = max(1, int(1000 * PACED_CONNECTIONS / (peak / 2)))
    env, key = plain_gateway_env(tmp / "gw-half")
    app = App("gateway", GATEWAY_MODULE, env, None)
    app.start()
    try:
        return wrk(app, script, 1, True, key, seconds, delay_ms)
    finally:
        app.stop()


def _median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(r, field) for r in runs)


#: The configurations of the gateway whose goal lines are printed, in order.
GATEWAYS: Final = ("gateway", "gateway_real")
#: The goals of the hot path: a ratio's least value, the CPU time's most.
GOAL_BARE_1: Final = 0.45
GOAL_CPU_US: Final = 10.0
GOAL_NAIVE: Final = {1: 4.0, 100: 3.5}
#: The width of the labels of the ratios.
W: Final = 48


def _print_http(figures: dict[tuple[str, int, bool], list[Run]], half: Run) -> None:
    print("\nhttp: uvicorn on CPU 0, wrk on CPU 1, medians of interleaved rounds")
    print("  gateway: plain, no scrubbing, no rules, no webhook endpoints; gateway_real:")
    print("  comments scrubbed, 5 rules and 2 webhook endpoints on a receiver (on CPU 1, with wrk)")
    print("  cpu µs/event: the server's CPU time (user + sys) during the run ÷ events sent")
    header = f"{'app':<15} {'batch':>5} {'stream':<7} {'req/s':>9} {'events/s':>10}"
    print(f"  {header} {'p50':>7} {'p99':>7} {'cpu µs/event':>12}")
    for (name, batch, unique), runs in sorted(figures.items()):
        print(
            f"  {name:<15} {batch:>5} {'unique' if unique else 'dupes':<7}"
            f" {_median(runs, 'requests_s'):>9,.0f} {_median(runs, 'events_s'):>10,.0f}"
            f" {_median(runs, 'p50_ms'):>6.1f}ms {_median(runs, 'p99_ms'):>6.1f}ms"
            f" {_median(runs, 'cpu_us_per_event'):>12.1f}"
            + (f"  errors {sum(r.errors for r in runs)}" if any(r.errors for r in runs) else "")
        )

    def rate(name: str, batch: int, unique: bool = True, field: str = "events_s") -> float:
        return _median(figures[(name, batch, unique)], field)

    print("  ratios and figures (goals in brackets):")
    for gw in GATEWAYS:
        bare = rate(gw, 1) / rate("bare_starlette", 1)
        print(f"    {f'{gw} 1-event / bare starlette':<{W}} {bare:6.2f}  [>= {GOAL_BARE_1}]")
    for gw in GATEWAYS:
        bare = rate(gw, 100) / rate("bare_starlette", 100)
        print(f"    {f'{gw} 100-event / bare starlette':<{W}} {bare:6.2f}")
    for gw in GATEWAYS:
        cpu = rate(gw, 100, field="cpu_us_per_event")
        label = f"{gw} CPU µs per stored event, 100-event"
        print(f"    {label:<{W}} {cpu:6.1f}  [<= {GOAL_CPU_US:g} µs]")
    for gw in GATEWAYS:
        for batch, goal in GOAL_NAIVE.items():
            naive = rate(gw, batch) / rate("naive_fastapi", batch)
            print(f"    {f'{gw} / naive peer, {batch}-event':<{W}} {naive:6.2f}  [>= {goal:g}]")
    if ("gateway_pg", 1, True) in figures:
        for batch in (1, 100):
            pg = rate("gateway_pg", batch) / rate("gateway", batch)
            print(f"    {f'PostgreSQL / SQLite, {batch}-event':<{W}} {pg:6.2f}  [>= 0.6]")
    for batch in (1, 100):
        dup = rate("gateway", batch, False) / rate("gateway", batch)
        print(f"    {f'gateway duplicates / unique, {batch}-event':<{W}} {dup:6.2f}  [>= 1]")
    print(
        f"    gateway at ~half peak ({half.requests_s:,.0f} req/s): p99 {half.p99_ms:.1f} ms"
        f"  [<= 10 ms]"
    )


def _print_floors(figures: dict[tuple[str, int, bool], list[Run]], store: StoreFloors) -> None:
    """The floors of the goals, from this run's figures: the bare ASGI peer's CPU time per
    request (uvicorn and asyncio alone) plus the store's per event (:mod:`.floors`), the
    store's as the runs' connections hand the writes over (:data:`CONNECTIONS` at a time)."""
    asgi_1 = figures[("bare_asgi", 1, True)]
    asgi_100 = figures[("bare_asgi", 100, True)]
    http_1 = _median(asgi_1, "cpu_us_per_event")
    http_100 = _median(asgi_100, "cpu_us_per_event")
    busy = statistics.median(r.cpu_s / r.duration_s for r in asgi_1 if r.duration_s)
    request_1 = http_1 + store.single_us
    most = 1e6 / request_1
    starlette = _median(figures[("bare_starlette", 1, True)], "requests_s")
    print("  floors (measured in this run, one core):")
    print(
        f"    {'bare ASGI under uvicorn, 1-event':<{W}} {http_1:6.1f} µs CPU a request"
        f"  (its core busy {busy:.0%})"
    )
    print(f"    {'bare ASGI under uvicorn, 100-event':<{W}} {http_100:6.1f} µs CPU an event")
    label = "the store alone, 100-event writes one by one"
    print(
        f"    {label:<{W}} {store.batch_us:6.1f} µs CPU an event"
        f"  ({store.batch_nosync_us:.1f} without fsync)"
    )
    for label, figure in [
        (f"the store alone, 100-event writes x{CONNECTIONS}", store.batch_concurrent_us),
        (f"the store alone, 1-event writes x{CONNECTIONS}", store.single_us),
    ]:
        print(f"    {label:<{W}} {figure:6.1f} µs CPU an event")
    print(
        f"    => a durable 1-event request costs at least {http_1:.1f} + {store.single_us:.1f}"
        f" = {request_1:.1f} µs: at most {most:,.0f} req/s on one core,"
        f" {most / starlette:.2f} of bare Starlette  [goal >= {GOAL_BARE_1}]"
    )
    batch = store.batch_concurrent_us  # the runs' 32 connections hand them over so
    print(
        f"    => a durable 100-event batch costs at least {http_100:.1f} + {batch:.1f}"
        f" = {http_100 + batch:.1f} µs an event  [goal <= {GOAL_CPU_US:g} µs]"
    )
    # What those floors allow against the naive peer, measured on the same core in the run.
    most_100 = 1e6 / (http_100 + batch)
    for size, bound, unit in [(1, most, "req/s"), (100, most_100, "events/s")]:
        naive = _median(figures[("naive_fastapi", size, True)], "events_s")
        print(
            f"    => {size}-event: at most {bound:,.0f} {unit} on one core, the naive peer"
            f" {naive:,.0f}: at most {bound / naive:.2f}x it  [goal >= {GOAL_NAIVE[size]:g}]"
        )
