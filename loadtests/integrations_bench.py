"""The integrations benchmark: ingest while the rules and webhooks work, beside ingest without.

Run with ``python -m loadtests.bench --section integrations`` (part of ``make bench``). The rules,
alerts and webhooks are not on the write path: every gateway's background workers read what the
stores committed (``followups.feed``), make follow-up items, alerts and outbox messages in the
control plane, and deliver the webhooks. What they cost ingest is their share of the CPU the
gateway runs on, so the gateway (SQLite, a fresh data dir each run) is measured under wrk as the
``http`` section measures it (uvicorn on CPU 0, wrk on CPU 1, unique 100-event batches, the same
script) in two setups, alternated for several rounds:

- (a) no rules (the default rule is there but disabled, as a project that wants no follow-ups
  has it) and no webhook endpoints;
- (b) five rules (:data:`RULES`: the default detractor rule, three more follow-up rules and an
  alert rule, narrowed by channel, form, metric, score and words) and two endpoints
  (:data:`ENDPOINTS`) on a real receiver, a process of its own on 127.0.0.1 pinned to CPU 1 with
  wrk, that answers 200 and counts what it gets.

Both runs start the feed's cursor at the start of the log, so the workers have every event to
read (a new channel's feed would otherwise skip all but its last ``BACKFILL``). Printed: the
median events/s of each setup, b / a against the goal (within 15%: >= 0.85), the gateway's CPU
time during the load (a share of its one CPU), and how far the workers got: the events the feed
had read when the load stopped in each run, and after the last round's (b) how long the feed
and the deliveries took to catch up (a bounded wait), with the items, alerts, messages and
deliveries made and what the receiver got.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec

from .http_bench import WRK_SCRIPT, App, Run, free_port, gateway_env, wrk
from .read_http import cpu_seconds

PROJECT: Final = "bench"
#: The channel wrk's script sends to: the one store the feed reads.
CHANNEL: Final = "web"
BATCH: Final = 100
#: Ingest goal: (b)'s events/s at least this share of (a)'s.
GOAL: Final = 0.85
#: The CPUs of the gateway, and of wrk and the receiver.
GATEWAY_CPU: Final = 0
CLIENT_CPU: Final = 1
#: How often the wait for the workers to catch up looks at the control plane.
POLL_SECONDS: Final = 0.25
#: Tries of one run whose gateway did not take the load (its port taken meanwhile by another).
TRIES: Final = 2
LOOPBACK: Final = "127.0.0.0/8"
ROOT: Final = Path(__file__).resolve().parents[1]

#: The rules of (b), besides the default one, as ``POST /v1/rules`` takes them. wrk's events are
#: all web/checkout with a comment ("Fast checkout, thanks!"), NPS, CSAT and CES in turn, their
#: scores spread over each scale: the default rule makes items of NPS 0-6, CSAT 1-2 and CES 1-2,
#: the CSAT rule takes its items over (a shorter SLA wins), the passives rule makes items of NPS
#: 7-8, the words rule matches nothing (its cost is the comparison on every event), and the
#: alert rule fires on every NPS 0 (one alert per response and day: each response is new).
RULES: Final[tuple[dict[str, Any], ...]] = (
    {
        "name": "Checkout CSAT 1-2 within a day",
        "forms": ["checkout"],
        "metrics": ["csat"],
        "score_max": 2,
        "sla_hours": 24,
    },
    {
        "name": "Web NPS passives with a comment",
        "channels": [CHANNEL],
        "metrics": ["nps"],
        "score_min": 7,
        "score_max": 8,
        "has_comment": True,
        "sla_hours": 72,
    },
    {"name": "Refund or cancel mentioned", "words": ["refund", "cancel"], "sla_hours": 8},
    {
        "name": "NPS 0 at checkout",
        "kind": "alert",
        "forms": ["checkout"],
        "metrics": ["nps"],
        "score_max": 0,
        "words": ["checkout"],
    },
)
#: The receiver's paths in (b), and the event types each endpoint takes.
ENDPOINTS: Final[dict[str, tuple[str, ...]]] = {
    "/followups": ("followup.created", "followup.updated", "followup.breached", "alert.fired"),
    "/everything": (
        "response.created",
        "followup.created",
        "followup.updated",
        "followup.breached",
        "alert.fired",
    ),
}


def ensure_wrk() -> str | None:
    """wrk's path, installed from Debian's packages first when it is missing (as ``make bench``
    does); None when it can't be had."""
    found = shutil.which("wrk")
    if found or shutil.which("apt-get") is None:
        return found
    print("installing wrk for the integrations benchmark", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, capture_output=True, env=env, timeout=600).returncode:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=600)
        subprocess.run(install, capture_output=True, env=env, timeout=600)
    return shutil.which("wrk")


# --- the receiver: a process of its own -------------------------------------------------------


class Receiver:
    """A webhook receiver as an ASGI app: answers every POST 200 and counts it, by path and by
    the message's type, and the distinct messages each path got (a repeat carries the same
    ``webhook-id``); ``GET /counts`` tells them."""

    def __init__(self) -> None:
        self.by_path: Counter[str] = Counter()
        self.by_type: Counter[str] = Counter()
        self.ids: set[str] = set()
        self._types = msgspec.json.Decoder(dict[str, Any])

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender went away (a gateway stopped mid-delivery): nothing came
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET":
            answer = msgspec.json.encode(
                {
                    "by_path": self.by_path,
                    "by_type": self.by_type,
                    "ids": len(self.ids),
                }
            )
        else:
            path = scope["path"]
            self.by_path[path] += 1
            self.by_type[f"{path} {self._types.decode(body).get('type')}"] += 1
            headers = dict(scope["headers"])
            self.ids.add(f"{path} {headers.get(b'webhook-id', b'').decode()}")
            answer = b"ok"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})


def receiver_app() -> Receiver:
    """The receiver, made by uvicorn's ``--factory`` in the receiver's process."""
    return Receiver()


@contextlib.contextmanager
def receiver_process() -> Iterator[str]:
    """A receiver under uvicorn on 127.0.0.1, pinned to :data:`CLIENT_CPU`; its base URL."""
    port = free_port()
    command = ["taskset", "-c", str(CLIENT_CPU), sys.executable, "-m", "uvicorn"]
    command += ["loadtests.integrations_bench:receiver_app", "--factory", "--lifespan", "off"]
    command += ["--no-access-log", "--log-level", "warning", "--host", "127.0.0.1"]
    process = subprocess.Popen([*command, "--port", str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/counts", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the webhook receiver did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the setups ---------------------------------------------------------------------------------


def prepare(data_dir: Path, receiver: str | None) -> None:
    """Set the project up before its gateway starts: with a ``receiver`` (b), the five rules and
    :data:`ENDPOINTS` on it; without (a), only the default rule, disabled. In both, the feed's
    cursor at the start of the log."""
    from voxloop_gateway.control import tables
    from voxloop_gateway.control.registry import Registry
    from voxloop_gateway.followups.rules import (
        Rule,
        RuleFields,
        check_rule,
        default_rule,
        insert_rule,
    )
    from voxloop_gateway.integrations import webhooks
    from voxloop_gateway.integrations.outbox import new_id

    now_ms = int(time.time() * 1000)
    registry = Registry(data_dir)
    channels = registry.project(PROJECT, reload=True).channels
    made = [msgspec.structs.replace(default_rule(PROJECT, now_ms), enabled=receiver is not None)]
    for n, given in enumerate(RULES if receiver is not None else ()):
        checked = check_rule(msgspec.convert(given, RuleFields), channels)
        made.append(
            Rule(
                id=new_id("rule_"),
                project=PROJECT,
                created_ms=now_ms + n + 1,
                **msgspec.structs.asdict(checked),
            )
        )

    async def write(conn: Any) -> None:
        for rule in made:
            await insert_rule(conn, rule)
        await conn.execute(
            tables.feed_cursors.insert().values(
                channel=CHANNEL, event_seq=0, revision_seq=0, updated_ms=now_ms
            )
        )

    async def add_endpoints() -> None:
        allow = [ipaddress.ip_network(LOOPBACK)]
        for path, events in ENDPOINTS.items():
            url = f"{receiver}{path}"
            await webhooks.add(registry.db, allow, PROJECT, url, list(events), path, now_ms)

    try:
        registry.db.run(write, write=True)
        if receiver is not None:
            asyncio.run(add_endpoints())
    finally:
        registry.close()


# --- what the workers did ---------------------------------------------------------------------


@dataclass
class Progress:
    """Where the workers were at one moment, from the data dir's files."""

    stored: int
    read: int
    pending: int
    delivered: int = 0
    failed: int = 0
    items: int = 0
    alerts: int = 0
    messages: dict[str, int] = field(default_factory=dict)

    @property
    def unread(self) -> int:
        return self.stored - self.read


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the SQLite file ``path``, in one read transaction: what it
    reads is one moment's, though the gateway goes on writing."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN")
        yield conn
    finally:
        conn.close()


def progress(data_dir: Path, *, whole: bool = False) -> Progress:
    """The events stored and read by the feed, and the deliveries pending; with ``whole``, the
    items, alerts, messages and deliveries made too (longer reads of the control plane)."""
    store = data_dir / "stores" / f"{CHANNEL}.sqlite3"
    stored = 0
    if store.exists():
        with _read_only(store) as conn:
            stored = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    with _read_only(data_dir / "registry.sqlite3") as conn:
        one = functools.partial(_scalar, conn)
        found = Progress(
            stored=stored,
            read=one("SELECT event_seq FROM feed_cursors WHERE channel = ?", CHANNEL),
            pending=one("SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'"),
        )
        if whole:
            found.delivered = one(
                "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'"
            )
            found.failed = one("SELECT count(*) FROM webhook_deliveries WHERE state = 'failed'")
            found.items = one("SELECT count(*) FROM followups")
            found.alerts = one("SELECT count(*) FROM alerts_fired")
            rows = conn.execute("SELECT event_type, count(*) FROM outbox GROUP BY event_type")
            found.messages = dict(sorted(rows.fetchall()))
    return found


def _scalar(conn: sqlite3.Connection, sql: str, *params: object) -> int:
    row = conn.execute(sql, params).fetchone()
    return 0 if row is None else int(row[0])


@dataclass
class CatchUp:
    """How long after the load the feed and the deliveries took to catch up (None: not within
    the wait), and where they were when the wait ended."""

    waited_s: float
    feed_s: float | None
    deliveries_s: float | None
    last: Progress


def catch_up(data_dir: Path, stopped: float, wait_s: float) -> CatchUp:
    """Wait until the feed has read every stored event and no delivery is pending, at most
    ``wait_s`` from ``stopped`` (the load's end, ``time.monotonic()``)."""
    feed_s: float | None = None
    deliveries_s: float | None = None
    deadline = stopped + wait_s
    while True:
        now = progress(data_dir)
        elapsed = time.monotonic() - stopped
        if feed_s is None and now.unread <= 0:
            feed_s = elapsed
        if feed_s is not None and now.pending == 0:
            deliveries_s = elapsed
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    return CatchUp(wait_s, feed_s, deliveries_s, progress(data_dir, whole=True))


# --- the runs -----------------------------------------------------------------------------------


@dataclass
class Measured:
    """One run of one setup: wrk's figures, the workers' progress when the load stopped, and
    (the last round's (b)) the catch-up after it and what the receiver got."""

    setup: str
    run: Run
    at_stop: Progress
    #: The gateway's CPU time during the load, as a share of one CPU.
    cpu_share: float
    catchup: CatchUp | None = None
    received: dict[str, Any] | None = None


@dataclass
class Results:
    """The whole section: every run, in order, and how long it took."""

    seconds: int
    runs: list[Measured] = field(default_factory=list)
    seconds_taken: float = 0.0

    def of(self, setup: str) -> list[Measured]:
        return [m for m in self.runs if m.setup == setup]

    def median_events_s(self, setup: str) -> float:
        return statistics.median(m.run.events_s for m in self.of(setup))


class NoLoad(Exception):
    """The gateway did not take the load: it stopped, or another server had its port."""


def measure(
    tmp: Path, name: str, script: Path, setup: str, seconds: int, catchup_s: float | None
) -> Measured:
    """:func:`measure_once` in ``tmp/name``, tried again in a new folder if it got no load.

    Raises:
        NoLoad: the last of :data:`TRIES` got none either.
    """
    attempt = 1
    while True:
        try:
            return measure_once(tmp / f"{name}-{attempt}", script, setup, seconds, catchup_s)
        except NoLoad as exc:
            if attempt == TRIES:
                raise
            print(f"  {exc}; running it again", file=sys.stderr)
            attempt += 1


def measure_once(
    data_dir: Path, script: Path, setup: str, seconds: int, catchup_s: float | None
) -> Measured:
    """Run setup ``a`` or ``b`` once in a fresh ``data_dir``: the gateway under wrk for
    ``seconds``, then (given ``catchup_s``) the wait for its workers to catch up."""
    env, key = gateway_env(data_dir)
    env["VOXLOOP_WEBHOOK_ALLOW"] = LOOPBACK
    with contextlib.ExitStack() as stack:
        receiver = stack.enter_context(receiver_process()) if setup == "b" else None
        prepare(data_dir, receiver)
        gateway = App("gateway", "voxloop_gateway.asgi:app", env, None)
        gateway.start()
        assert gateway.process is not None
        # Killed rather than stopped: its data dir is thrown away, and a gateway stopped while
        # its feed is in a batch's transaction takes seconds to close its control plane.
        stack.callback(_kill, gateway.process)
        pid = gateway.process.pid
        cpu, started = cpu_seconds(pid), time.monotonic()
        run = wrk(gateway, script, BATCH, True, key, seconds)
        stopped = time.monotonic()
        if gateway.process.poll() is not None:
            raise NoLoad(
                f"the gateway of ({setup}) stopped (exit status {gateway.process.returncode})"
            )
        share = (cpu_seconds(pid) - cpu) / (stopped - started)
        measured = Measured(setup, run, progress(data_dir), share)
        if measured.at_stop.stored == 0:
            raise NoLoad(f"the gateway of ({setup}) stored nothing: another server had its port")
        if catchup_s is not None:
            measured.catchup = catch_up(data_dir, stopped, catchup_s)
        if receiver is not None:
            measured.received = httpx.get(f"{receiver}/counts", timeout=10).json()
    return measured


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


def integrations_section(seconds: int, rounds: int, catchup_s: float) -> int:
    """Measure (a) and (b) in ``rounds`` interleaved rounds of ``seconds`` each, wait up to
    ``catchup_s`` for the last (b)'s workers, and print; 1 if something failed to run."""
    if ensure_wrk() is None or shutil.which("taskset") is None:
        print(
            "integrations: needs wrk and taskset (Debian: apt-get install wrk util-linux)",
            file=sys.stderr,
        )
        return 1
    started = time.perf_counter()
    results = Results(seconds)
    with tempfile.TemporaryDirectory(prefix="voxloop-integrations-") as tmp:
        script = Path(tmp) / "events.lua"
        script.write_text(WRK_SCRIPT)
        for round_no in range(rounds):
            for setup in ("a", "b"):
                last = round_no == rounds - 1 and setup == "b"
                name = f"{setup}-{round_no}"
                wait = catchup_s if last else None
                try:
                    measured = measure(Path(tmp), name, script, setup, seconds, wait)
                except NoLoad as exc:
                    print(f"integrations: {exc}", file=sys.stderr)
                    return 1
                results.runs.append(measured)
                print(
                    f"  round {round_no + 1} ({setup}) {measured.run.events_s:>10,.0f} events/s,"
                    f" feed read {measured.at_stop.read:,} of {measured.at_stop.stored:,}"
                    f" gateway CPU {measured.cpu_share:.0%} errors {measured.run.errors}",
                    file=sys.stderr,
                    flush=True,
                )
    results.seconds_taken = time.perf_counter() - started
    print_integrations(results)
    return 1 if any(m.run.errors for m in results.runs) else 0


# --- the report ---------------------------------------------------------------------------------


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _after(seconds: float | None, wait_s: float) -> str:
    return f"{seconds:.1f} s" if seconds is not None else f"not within {wait_s:g} s"


def print_integrations(results: Results) -> None:
    """Print the medians, the ratio against its goal, and how far (b)'s workers got."""
    a, b = results.median_events_s("a"), results.median_events_s("b")
    rounds = len(results.of("a"))
    print(
        f"\nintegrations: the gateway (SQLite) on CPU {GATEWAY_CPU}, wrk and the webhook"
        f" receiver on CPU {CLIENT_CPU},"
        f" unique {BATCH}-event batches, medians of {rounds} interleaved rounds of"
        f" {results.seconds} s"
    )
    print("  (b)'s rules: the default (detractors with a comment, 48 h), and")
    for rule in RULES:
        narrowed = ", ".join(f"{k}={v}" for k, v in rule.items() if k not in ("name", "kind"))
        print(f"    {rule.get('kind', 'followup'):<8} {rule['name']!r}: {narrowed}")
    print("  (b)'s endpoints, on the receiver:")
    for path, events in ENDPOINTS.items():
        print(f"    {path:<12} {', '.join(events)}")
    print(f"  (a) no rules, no endpoints     {a:>10,.0f} events/s")
    print(f"  (b) 5 rules, 2 endpoints       {b:>10,.0f} events/s")
    ratio = b / a if a else 0.0
    verdict = "holds" if ratio >= GOAL else "MISSED"
    print(f"  b / a = {ratio:.2f}   [>= {GOAL} (within 15%)] {verdict}")
    for setup in ("a", "b"):
        cpu = statistics.median(m.cpu_share for m in results.of(setup))
        print(f"  ({setup}) the gateway's CPU time during the load: {cpu:.0%} of one CPU")
    for setup in ("a", "b"):
        shares = [
            f"{p.read:,} of {p.stored:,} ({_share(p.read, p.stored)})"
            for p in (m.at_stop for m in results.of(setup))
        ]
        print(f"  ({setup}) events read by the feed when the load stopped: {'; '.join(shares)}")
    last = results.of("b")[-1]
    if last.catchup is None:
        return
    caught, end = last.catchup, last.catchup.last
    print(f"  (b) after the last round's load (waited at most {caught.waited_s:g} s):")
    print(f"    feed caught up after        {_after(caught.feed_s, caught.waited_s)}")
    print(f"    deliveries caught up after  {_after(caught.deliveries_s, caught.waited_s)}")
    print(
        f"    at the end: {end.read:,} of {end.stored:,} events read, {end.items:,} items,"
        f" {end.alerts:,} alerts"
    )
    messages = ", ".join(f"{kind} {n:,}" for kind, n in end.messages.items()) or "none"
    print(f"    messages: {sum(end.messages.values()):,} ({messages})")
    print(
        f"    deliveries: {end.delivered:,} delivered, {end.pending:,} pending,"
        f" {end.failed:,} failed"
    )
    if last.received is not None:
        got = ", ".join(f"{key} {n:,}" for key, n in sorted(last.received["by_type"].items()))
        print(f"    the receiver got: {got or 'nothing'} ({last.received['ids']:,} distinct ids)")
    print(f"  the section took {results.seconds_taken:.0f} s")


__all__ = [
    "ENDPOINTS",
    "GOAL",
    "RULES",
    "Receiver",
    "integrations_section",
    "print_integrations",
    "receiver_app",
]
