"""The HTTP benchmark: the gateway and its peers under wrk, side by side, in one run.

Each app runs under the same uvicorn settings, pinned to CPU 0; wrk runs pinned to CPU 1 and
speaks only the wire contract. Scenarios: 1-event and 100-event batches, each as a stream of
unique events and as a stream of 100% duplicates (the same body again and again). Then the
gateway alone at about half its peak rate, paced by wrk's ``delay()``, for p99 latency.
"""

from __future__ import annotations

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

import httpx

#: the peer apps, kept beside the project (``--peers`` or VOXLOOP_BENCH_PEERS to point elsewhere)
DEFAULT_PEERS = Path(__file__).resolve().parents[1] / ".." / "shared" / "bench" / "peers"
UVICORN_FLAGS = ["--no-access-log", "--log-level", "warning", "--host", "127.0.0.1"]
_RESULT = re.compile(r"VXRESULT (\d+) (\d+) (\d+) (\d+) (\d+)")

# wrk script: builds contract bodies with UUIDv7 ids unique per thread and request; prints one
# machine-readable line at the end. VX_DELAY_MS paces each connection for the latency run.
WRK_SCRIPT = r"""
local n = tonumber(os.getenv("VX_BATCH")) or 1
local unique = os.getenv("VX_UNIQUE") == "1"
local key = os.getenv("VX_KEY") or ""
local pace = tonumber(os.getenv("VX_DELAY_MS")) or 0
local counter, tid, fixed = 0, 0, nil
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
  local ms = os.time() * 1000
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
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("VXRESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


@dataclass
class Run:
    """One wrk run's figures."""

    requests_s: float
    events_s: float
    p50_ms: float
    p99_ms: float
    errors: int


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

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def wrk(
    app: App, script: Path, batch: int, unique: bool, key: str, seconds: int, delay_ms: int = 0
) -> Run:
    """One bounded wrk run against ``app``."""
    env = {
        **os.environ,
        "VX_BATCH": str(batch),
        "VX_UNIQUE": "1" if unique else "0",
        "VX_KEY": key,
        "VX_DELAY_MS": str(delay_ms),
    }
    connections = "8" if delay_ms else "32"
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c", connections, "-d", f"{seconds}s", "--latency"]
        + ["-s", str(script), f"http://127.0.0.1:{app.port}/v1/events"],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    found = _RESULT.search(out)
    if found is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    requests, duration_us, p50, p99, errors = map(int, found.groups())
    rate = requests / (duration_us / 1e6)
    return Run(rate, rate * batch, p50 / 1000, p99 / 1000, errors)


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


def http_section(seconds: int, rounds: int, peers: Path, pg_url: str | None = None) -> int:
    """Run every app in every scenario ``rounds`` times, interleaved; print medians and ratios."""
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
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "events.lua"
        script.write_text(WRK_SCRIPT)
        for round_no in range(rounds):
            for batch, unique in scenarios:
                data = Path(tmp) / f"gw-{round_no}-{batch}-{unique}"
                env, key = gateway_env(data)
                apps = [
                    App("gateway", "voxloop_gateway.asgi:app", env, None),
                    App("bare_starlette", "bare_starlette:app", {}, peers),
                    App(
                        "naive_fastapi",
                        "naive_fastapi:app",
                        {"NAIVE_DB": str(Path(tmp) / f"naive-{round_no}-{batch}-{unique}.db")},
                        peers,
                    ),
                ]
                if databases is not None and unique:  # the PostgreSQL mode: one replica
                    pg_env, pg_key = gateway_env(data / "pg", databases.fresh())
                    apps.insert(1, App("gateway_pg", "voxloop_gateway.asgi:app", pg_env, None))
                for app in apps:
                    app.start()
                    try:
                        if not unique:  # the duplicate stream: its one body is stored first
                            wrk(app, script, batch, False, key, 1)
                        app_key = pg_key if app.name == "gateway_pg" else key
                        run = wrk(app, script, batch, unique, app_key, seconds)
                    finally:
                        app.stop()
                    figures.setdefault((app.name, batch, unique), []).append(run)
                    print(
                        f"  round {round_no + 1} {app.name:<15} batch={batch:<3}"
                        f" {'unique' if unique else 'dupes':<6} {run.requests_s:>9,.0f} req/s"
                        f" p99 {run.p99_ms:.1f} ms errors {run.errors}",
                        file=sys.stderr,
                        flush=True,
                    )
        half = _half_rate_latency(Path(tmp), script, figures, seconds)
    if databases is not None:
        databases.drop_all()
    _print_http(figures, half)
    return 0


def _half_rate_latency(
    tmp: Path, script: Path, figures: dict[tuple[str, int, bool], list[Run]], seconds: int
) -> Run:
    peak = statistics.median(r.requests_s for r in figures[("gateway", 1, True)])
    connections = 8
    delay_ms = max(1, int(1000 * connections / (peak / 2)))
    env, key = gateway_env(tmp / "gw-half")
    app = App("gateway", "voxloop_gateway.asgi:app", env, None)
    app.start()
    try:
        return wrk(app, script, 1, True, key, seconds, delay_ms)
    finally:
        app.stop()


def _median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(r, field) for r in runs)


def _print_http(figures: dict[tuple[str, int, bool], list[Run]], half: Run) -> None:
    print("\nhttp: uvicorn on CPU 0, wrk on CPU 1, medians of interleaved rounds")
    header = f"{'app':<15} {'batch':>5} {'stream':<7} {'req/s':>9} {'events/s':>10}"
    print(f"  {header} {'p50':>7} {'p99':>7}")
    for (name, batch, unique), runs in sorted(figures.items()):
        print(
            f"  {name:<15} {batch:>5} {'unique' if unique else 'dupes':<7}"
            f" {_median(runs, 'requests_s'):>9,.0f} {_median(runs, 'events_s'):>10,.0f}"
            f" {_median(runs, 'p50_ms'):>6.1f}ms {_median(runs, 'p99_ms'):>6.1f}ms"
            + (f"  errors {sum(r.errors for r in runs)}" if any(r.errors for r in runs) else "")
        )

    def rate(name: str, batch: int, unique: bool = True, field: str = "events_s") -> float:
        return _median(figures[(name, batch, unique)], field)

    goals = [
        (
            "gateway 1-event / bare starlette",
            rate("gateway", 1) / rate("bare_starlette", 1),
            ">= 0.6",
        ),
        (
            "gateway 100-event / bare starlette",
            rate("gateway", 100) / rate("bare_starlette", 100),
            ">= 0.25",
        ),
        ("gateway / naive peer, 1-event", rate("gateway", 1) / rate("naive_fastapi", 1), ">= 5"),
        (
            "gateway / naive peer, 100-event",
            rate("gateway", 100) / rate("naive_fastapi", 100),
            ">= 4",
        ),
    ]
    print("  ratios (goals in brackets):")
    for label, value, goal in goals:
        print(f"    {label:<38} {value:6.2f}  [{goal}]")
    if ("gateway_pg", 1, True) in figures:
        for batch in (1, 100):
            pg = rate("gateway_pg", batch) / rate("gateway", batch)
            print(f"    {f'PostgreSQL / SQLite, {batch}-event':<38} {pg:6.2f}  [>= 0.6]")
    for batch in (1, 100):
        dup = rate("gateway", batch, False) / rate("gateway", batch)
        print(f"    {f'gateway duplicates / unique, {batch}-event':<38} {dup:6.2f}  [>= 1]")
    print(
        f"    gateway at ~half peak ({half.requests_s:,.0f} req/s): p99 {half.p99_ms:.1f} ms"
        f"  [<= 10 ms]"
    )
