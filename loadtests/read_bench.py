"""The read benchmark: a year of stored feedback read over HTTP, the gateway beside the naive peer.

Run with ``python -m loadtests.bench --section read`` (part of ``make bench``). It seeds
``--read-events`` events (1,000,000 by default) across the web, app and email channels
(``read_seed``), serves them with ``voxloop-gateway serve`` and with the naive peer (each pinned
to CPU 0), and times sequential requests from this process (on CPU 1) over loopback,
``--read-requests`` of each after a few warm-ups (``read_http``):

- the gateway's ``/v1/responses`` filtered, searched (English, Arabic, Persian; a common word
  and a rare one in each) and 200,000 rows deep (cursors followed there); the dashboard's
  overview page and its data call, with a person's session; ``/v1/stats`` over a year by day
  with a server key. Goal: p95 <= 200 ms;
- the naive peer's scanning stats, LIKE search and OFFSET page on the same rows. Goals, naive
  p50 ÷ gateway p50: stats >= 10, search for a rare word and deep pages >= 5. A common word
  (one comment in 500) fills the naive scan's page after about 25,000 rows, about as soon as
  the gateway has merged three channels' pages: its ratio is printed, without a goal;
- the whole CSV export, streamed: rows/s, and the gateway's resident memory before and at its
  peak during the export, which must stay flat.

Every answer timed must be a 200, and the answers are held to each other and to what was
stored: the same histogram, the same page of search results, the same deep page, every row in
the export. A wrong answer fails the section (exit status 1) rather than giving a figure; a
goal missed is printed as FAIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx

from voxloop_core import HOUR_MS
from voxloop_gateway.control.registry import Registry

from .http_bench import App, gateway_env
from .read_http import (
    APP_CPU,
    CASE_SECONDS,
    CLIENT_CPU,
    WARMUPS,
    Disagreement,
    Gateway,
    RssSampler,
    Timing,
    answer_ok,
    attribute,
    cpu_seconds,
    ids,
    log_in,
    must_equal,
    on_cpu,
    status_kb,
    timed,
)
from .read_seed import CHANNELS, RARE_EVERY, RARE_TOPICS, TOPIC_EVERY, TOPICS, Seeded, seed

DEFAULT_EVENTS: Final = 1_000_000
DEFAULT_REQUESTS: Final = 30
PAGE: Final = 50
#: The deep page starts after this many rows (page 4,001, about ten weeks back in a year of a
#: million): the gateway follows cursors there, the naive peer skips them with OFFSET.
DEEP_ROWS: Final = 200_000
#: Rows per page on the way to the deep page (the API's most).
WALK_ROWS: Final = 500
GOAL_P95_MS: Final = 200.0
#: naive p50 ÷ gateway p50, at least (None: printed without a goal).
GOAL_RATIOS: Final[dict[str, float | None]] = {
    "stats": 10.0,
    "search": 5.0,
    "common search": None,
    "deep": 5.0,
}
#: The export's growth of resident memory that still counts as flat.
GOAL_GROWTH_MB: Final = 64.0
#: Longest the whole export may take.
EXPORT_SECONDS: Final = 900.0
PROJECT: Final = "bench"
METRIC: Final = "nps"
#: The person who opens the dashboard, and the password they choose at their first login.
OWNER: Final = "owner@bench.example"
OWNER_PASSWORD: Final = "bench-owner-password-1"
#: The overview's trend chart, whose ``data-stats`` is the URL its script reads.
TREND: Final = "trend"

_T = TypeVar("_T")


@dataclass
class Export:
    """The whole CSV export: rows, bytes, time, and the gateway's memory around it (kB)."""

    rows: int
    size: int
    seconds: float
    rss_before_kb: int
    rss_peak_kb: int
    hwm_before_kb: int
    hwm_after_kb: int
    #: CPU time the gateway spent meanwhile: near ``seconds``, the gateway is the bottleneck.
    cpu_seconds: float

    @property
    def growth_mb(self) -> float:
        return (self.rss_peak_kb - self.rss_before_kb) / 1024


@dataclass
class ReadResults:
    """Everything the section measured and found."""

    events: int
    requests: int
    seeded: Seeded
    gateway: list[Timing] = field(default_factory=list)
    naive: list[Timing] = field(default_factory=list)
    #: (what, naive p50 ÷ gateway p50, goal or None)
    ratios: list[tuple[str, float, float | None]] = field(default_factory=list)
    export: Export | None = None
    #: What went wrong: an answer that disagreed, a request that failed.
    failures: list[str] = field(default_factory=list)
    #: What was checked and agreed.
    checks: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: The end of the gateway's log, when something failed.
    log: str = ""


class ReadBench:
    """The seeded data dir, both apps serving it, and the readers' clients.

    Use as a context manager: entering seeds and starts everything (``seed`` runs in this
    process), leaving stops the apps. Each method measures one kind of read and checks it.
    """

    def __init__(self, workdir: Path, peers: Path, events: int, requests: int) -> None:
        self.workdir, self.peers = workdir, peers
        self.events, self.requests = events, requests
        self.data_dir = workdir / "gateway"
        self.naive_db = workdir / "naive.sqlite3"
        self.now_ms = int(time.time() * 1000)
        self.seeded = Seeded()
        self.gateway: Gateway | None = None
        self.naive = App(
            "naive_fastapi", "naive_fastapi:app", {"NAIVE_DB": str(self.naive_db)}, peers
        )
        self._stack = contextlib.ExitStack()
        self.server: httpx.Client | None = None  # the gateway with its server key
        self.session: httpx.Client | None = None  # the gateway with a person's session
        self._one_time: str | None = None  # the person's first password
        self._logged_in = False
        self.peer: httpx.Client | None = None  # the naive peer

    def __enter__(self) -> ReadBench:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        env, key = gateway_env(self.data_dir)
        registry = Registry(self.data_dir)
        try:
            secret = registry.project(PROJECT, reload=True).secret
        finally:
            registry.close()
        self.naive.start()  # it makes its table on its first read
        self._stack.callback(self.naive.stop)
        peer = httpx.Client(base_url=f"http://127.0.0.1:{self.naive.port}", timeout=120)
        self.peer = self._stack.enter_context(peer)
        answer_ok(self.peer.get("/v1/stats", params={"metric": METRIC}))
        self.seeded = asyncio.run(
            seed(self.data_dir, PROJECT, secret, self.naive_db, self.events, self.now_ms)
        )
        self.gateway = Gateway(self.data_dir, env, self.workdir / "gateway.log")
        self.gateway.start()
        self._stack.callback(self.gateway.stop)
        headers = {"Authorization": f"Bearer {key}"}
        server = httpx.Client(base_url=self.gateway.url, headers=headers, timeout=120)
        self.server = self._stack.enter_context(server)
        session = httpx.Client(base_url=self.gateway.url, follow_redirects=True, timeout=120)
        self.session = self._stack.enter_context(session)

    # --- the reads ---------------------------------------------------------------------

    def _clients(self) -> tuple[httpx.Client, httpx.Client]:
        if self.server is None or self.peer is None:
            raise RuntimeError("the bench is not started")
        return self.server, self.peer

    def year(self) -> dict[str, str]:
        """``from`` and ``to`` of a year that holds every stored event."""
        start = self.seeded.oldest_ms - self.seeded.oldest_ms % HOUR_MS
        return {"from": _rfc3339(start), "to": _rfc3339(self.seeded.newest_ms + HOUR_MS)}

    def stats(self) -> tuple[Timing, Timing]:
        """``/v1/stats`` over the year by day (server key) and the naive peer's scan.

        Both must give the histogram of every stored event of the metric.
        """
        server, peer = self._clients()
        params = {"metric": METRIC, "interval": "day", **self.year()}
        ours, answer = timed(server, "/v1/stats year by day", "/v1/stats", params, self.requests)
        expected = self.seeded.histograms[METRIC]
        body = answer.json()
        must_equal(f"{METRIC} stats", body["total"]["histogram"], expected, "the stored events")
        days = sum(bucket["count"] for bucket in body.get("series") or [])
        must_equal(f"{METRIC} stats by day, summed", days, sum(expected), "the stored events")
        theirs, answer = timed(
            peer, "/v1/stats (scan)", "/v1/stats", {"metric": METRIC}, self.requests
        )
        naive = answer.json()["histogram"]
        must_equal(f"{METRIC} stats", naive, expected, "the stored events", "the naive peer")
        return ours, theirs

    def search(self, language: str, rare: bool = False) -> tuple[Timing, Timing]:
        """A search of comments for the common (or ``rare``) topic's word of ``language``, the
        first page in both apps."""
        server, peer = self._clients()
        word = (RARE_TOPICS if rare else TOPICS)[language][0]
        params = {"q": word, "limit": PAGE}
        ours, answer = timed(
            server, f"search {language} {word!r}", "/v1/responses", params, self.requests
        )
        found = ids(answer)
        theirs, naive = timed(
            peer, f"search {language} {word!r} (LIKE)", "/v1/responses", params, self.requests
        )
        must_equal(f"search {word!r}", found, ids(naive), "the naive peer")
        must_equal(
            f"search {word!r}, rows",
            len(found),
            min(PAGE, self.seeded.matches[word]),
            "the stored comments",
        )
        return ours, theirs

    def deep_rows(self) -> int:
        """The rows before the deep page: ``DEEP_ROWS``, or as many whole walks as fewer
        events leave room for, with a full page after them."""
        room = max(0, min(DEEP_ROWS, self.seeded.events - PAGE))
        return room - room % WALK_ROWS

    def deep_page(self) -> int:
        """The number of the deep page, of ``PAGE`` rows each."""
        return self.deep_rows() // PAGE + 1

    def deep(self) -> tuple[Timing, Timing]:
        """The deep page: the gateway's by following cursors there, the naive peer's by OFFSET.

        The gateway walks there ``WALK_ROWS`` at a time (a cursor holds for any limit), then
        the page of ``PAGE`` is timed. Both must hold the same rows: the same newest-first
        order, no row lost or repeated on the way.
        """
        server, peer = self._clients()
        depth = self.deep_page()
        walks = self.deep_rows() // WALK_ROWS
        params: dict[str, Any] = {"limit": PAGE}
        deadline = time.monotonic() + 5 * CASE_SECONDS
        seen: set[str] = set()
        for walk in range(1, walks + 1):
            answer = server.get("/v1/responses", params={**params, "limit": WALK_ROWS})
            answer_ok(answer)
            rows = ids(answer)
            if seen.intersection(rows) or len(rows) != WALK_ROWS:
                raise Disagreement(f"walk {walk} repeats rows or is short: {len(rows)} rows")
            seen.update(rows)
            following = answer.json()["next"]
            if following is None or time.monotonic() > deadline:
                raise Disagreement(f"the cursors stopped at walk {walk} of {walks}")
            params = {"limit": PAGE, "cursor": following}
        ours, answer = timed(
            server, f"page {depth} (cursor)", "/v1/responses", params, self.requests
        )
        offset = {"limit": PAGE, "offset": (depth - 1) * PAGE}
        theirs, naive = timed(
            peer,
            f"page {depth} (OFFSET {offset['offset']:,})",
            "/v1/responses",
            offset,
            self.requests,
        )
        must_equal(f"page {depth}", ids(answer), ids(naive), "the naive peer")
        return ours, theirs

    def filtered(self) -> Timing:
        """Web detractors (NPS 0-6) with a comment; the same rows as the naive peer's table."""
        server, _ = self._clients()
        params = {
            "channel": "web",
            "metric": METRIC,
            "score_min": 0,
            "score_max": 6,
            "has_comment": "true",
            "limit": PAGE,
        }
        ours, answer = timed(
            server, "filtered: web, nps 0-6, comment", "/v1/responses", params, self.requests
        )
        with contextlib.closing(sqlite3.connect(self.naive_db)) as naive:
            expected = [
                row[0]
                for row in naive.execute(
                    "SELECT id FROM events WHERE channel = 'web' AND metric = ? AND score <= 6"
                    " AND comment IS NOT NULL ORDER BY rowid DESC LIMIT ?",
                    (METRIC, PAGE),
                )
            ]
        must_equal("filtered page", ids(answer), expected, "the naive peer's table")
        return ours

    def export(self) -> Export:
        """Stream the whole CSV export, count its rows, and watch the gateway's memory."""
        server, _ = self._clients()
        if self.gateway is None:
            raise RuntimeError("the bench is not started")
        pid = self.gateway.pid
        before = status_kb(pid)
        rows = size = 0
        cpu = cpu_seconds(pid)
        started = time.perf_counter()
        with (
            RssSampler(pid) as sampler,
            server.stream("GET", "/v1/exports/responses.csv") as answer,
        ):
            if answer.status_code != 200:
                answer.read()
                answer_ok(answer)
            reader = csv.reader(_lines(answer.iter_text(), time.monotonic() + EXPORT_SECONDS))
            header = next(reader, [])
            if "id" not in header:
                raise Disagreement(f"the CSV export's header has no id column: {header[:20]}")
            for _ in reader:
                rows += 1
            size = answer.num_bytes_downloaded
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu
        after = status_kb(pid)
        must_equal("rows in the CSV export", rows, self.seeded.events, "the stored events")
        return Export(
            rows,
            size,
            seconds,
            before["VmRSS"],
            sampler.peak_kb,
            before["VmHWM"],
            after["VmHWM"],
            cpu,
        )

    def dashboard(self) -> tuple[Timing, Timing]:
        """The dashboard's overview over a year by day, as a person sees it: the page, then the
        data call its script makes for the trend (the URL the page gives it).

        The data call must count every stored event of the metric.
        """
        if self.session is None or self.gateway is None:
            raise RuntimeError("the bench is not started")
        if self._one_time is None:
            self._one_time = self.gateway.cli("users", "create", OWNER, "--group", "owner").strip()
        if not self._logged_in:
            log_in(self.session, OWNER, self._one_time, OWNER_PASSWORD)
            self._logged_in = True
        path = f"/app/{PROJECT}/"
        year = {"period": "365d", "metric": METRIC, "interval": "day"}
        page, shown = timed(self.session, f"dashboard page {path}", path, year, self.requests)
        url = httpx.URL(attribute(shown.text, TREND, "data-stats"))
        params = {**dict(url.params), "interval": "day"}
        data, answer = timed(
            self.session, f"dashboard data {url.path} by day", url.path, params, self.requests
        )
        must_equal(
            "the dashboard's stats",
            answer.json()["total"]["histogram"],
            self.seeded.histograms[METRIC],
            "the stored events",
        )
        return page, data

    def run(self) -> ReadResults:
        """Every read, measured and checked, then the export; what failed is collected."""
        results = ReadResults(self.events, self.requests, self.seeded)

        def attempt(name: str, work: Callable[[], _T]) -> _T | None:
            try:
                done = work()
            except (Disagreement, httpx.HTTPError, RuntimeError) as exc:
                results.failures.append(f"{name}: {type(exc).__name__}: {exc}")
                return None
            results.checks.append(name)
            return done

        def compare(name: str, kind: str, work: Callable[[], tuple[Timing, Timing]]) -> None:
            pair = attempt(name, work)
            if pair is not None:
                ours, theirs = pair
                results.gateway.append(ours)
                results.naive.append(theirs)
                results.ratios.append((name, theirs.p50 / ours.p50, GOAL_RATIOS[kind]))

        with on_cpu(CLIENT_CPU):
            filtered = attempt("filtered", self.filtered)
            if filtered is not None:
                results.gateway.append(filtered)
            for language in TOPICS:
                compare(
                    f"search {language}",
                    "common search",
                    functools.partial(self.search, language),
                )
            for language in RARE_TOPICS:
                compare(
                    f"search {language}, rare",
                    "search",
                    functools.partial(self.search, language, rare=True),
                )
            compare("deep page", "deep", self.deep)
            compare("stats", "stats", self.stats)
            dashboard = attempt("dashboard", self.dashboard)
            if dashboard is not None:
                results.gateway.extend(dashboard)
            results.export = attempt("export", self.export)
        if results.failures and self.gateway is not None:
            results.log = self.gateway.log()
        return results


def _lines(chunks: Iterator[str], deadline: float) -> Iterator[str]:
    """The lines of a text stream, each with its line break, for ``csv.reader``; Disagreement
    once ``deadline`` (monotonic) has passed."""
    rest = ""
    for chunk in chunks:
        if time.monotonic() > deadline:
            raise Disagreement(f"the export took longer than {EXPORT_SECONDS:.0f} s")
        rest += chunk
        *done, rest = rest.split("\n")
        for line in done:
            yield line + "\n"
    if rest:
        yield rest


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_read(results: ReadResults) -> None:
    """The section's table: latencies against the goal, the ratios, the export, the checks."""
    seeded = results.seeded
    print(f"\nread: {seeded.events:,} events across {', '.join(CHANNELS)}, over a year")
    print(f"  seeded in {seeded.seconds:.1f} s ({seeded.rate:,.0f} events/s, both apps)")
    found = ", ".join(f"{word!r} {n:,}" for word, n in seeded.matches.items())
    print(
        f"  comments holding each search word: {found}"
        f" (common 1 in {TOPIC_EVERY:,} events, rare 1 in {RARE_EVERY:,})"
    )
    print(
        f"  sequential requests over loopback, {results.requests} timed after {WARMUPS}"
        f" warm-ups; apps on CPU {APP_CPU}, this client on CPU {CLIENT_CPU}"
    )
    print(f"  {'gateway':<44} {'p50':>8} {'p95':>8}   goal: p95 <= {GOAL_P95_MS:.0f} ms")
    for timing in results.gateway:
        verdict = "PASS" if timing.p95 <= GOAL_P95_MS else "FAIL"
        print(f"  {_label(timing):<44} {timing.p50:>6.1f}ms {timing.p95:>6.1f}ms   {verdict}")
    print(f"  {'naive peer':<44} {'p50':>8} {'p95':>8}")
    for timing in results.naive:
        print(f"  {_label(timing):<44} {timing.p50:>6.1f}ms {timing.p95:>6.1f}ms")
    print("  naive p50 / gateway p50:")
    for what, ratio, goal in results.ratios:
        if goal is None:
            print(f"    {what:<24} {ratio:>8.1f}x  (a common word: no goal)")
            continue
        verdict = "PASS" if ratio >= goal else "FAIL"
        print(f"    {what:<24} {ratio:>8.1f}x  [>= {goal:g}x]  {verdict}")
    export = results.export
    if export is not None:
        rate = export.rows / export.seconds if export.seconds else 0.0
        verdict = "PASS" if export.growth_mb <= GOAL_GROWTH_MB else "FAIL"
        print(
            f"  export CSV: {export.rows:,} rows, {export.size / 2**20:,.0f} MB in"
            f" {export.seconds:.1f} s: {rate:,.0f} rows/s (gateway CPU {export.cpu_seconds:.1f} s)"
        )
        print(
            f"    gateway RSS {export.rss_before_kb / 1024:.0f} MB before, peak"
            f" {export.rss_peak_kb / 1024:.0f} MB during: {export.growth_mb:+.1f} MB"
            f"  [flat: <= {GOAL_GROWTH_MB:g} MB]  {verdict}"
        )
        print(
            f"    VmHWM (the kernel's peak) {export.hwm_before_kb / 1024:.0f} MB before,"
            f" {export.hwm_after_kb / 1024:.0f} MB after"
        )
    for failure in results.failures:
        print(f"  FAILED {failure}")
    print(f"  checked and agreed: {', '.join(results.checks) or 'nothing'}")
    minutes, seconds = divmod(round(results.seconds), 60)
    print(f"  section took {minutes} min {seconds} s")


def _label(timing: Timing) -> str:
    return timing.label + (" (cut short)" if timing.cut_short else "")


def read_section(events: int, requests: int, peers: Path) -> int:
    """Seed, serve, measure, print; 1 if an answer disagreed or something failed to run."""
    if shutil.which("taskset") is None:
        print("read: needs taskset (Debian: apt-get install util-linux)", file=sys.stderr)
        return 1
    if not (peers / "naive_fastapi.py").is_file():
        print(f"read: no naive peer at {peers}; pass --peers DIR", file=sys.stderr)
        return 1
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="voxloop-read-") as tmp,
        ReadBench(Path(tmp), peers, events, requests) as bench,
    ):
        results = bench.run()
    results.seconds = time.perf_counter() - started
    print_read(results)
    if results.log:
        print(f"  the gateway's log ended:\n{results.log}", file=sys.stderr)
    return 1 if results.failures else 0
