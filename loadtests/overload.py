"""The overload run of the ``http`` section: a gateway offered twice its peak rate.

A gateway past its peak must keep serving what it can and refuse the rest as the wire contract
says: a 503 with ``Retry-After`` (or a 429 from the rate limits), never an error of another kind,
a dropped connection or an answer that comes too late, and its memory must not grow with the
queue. So after the section's rounds each gateway configuration gets wrk, paced by its
``delay()`` as the half-peak latency run is, at :data:`FACTOR` times the median peak 1-event rate
of the same run, 1-event unique batches, for ``--overload-seconds``. wrk's script counts the
answers by status (``VX_COUNT``); from /proc, the server's resident memory before the run and its
peak during it (:class:`~.read_http.RssSampler`).

wrk holds a fixed number of connections, each sending its next request ``delay_ms`` after the
last answer: the rate offered is at most ``connections / delay``, reached while answers are
quick. :func:`pacing` gives each connection about :data:`THINK_MS` between its requests, and as
many connections as then offer the target. Printed: the rate offered and sent, the answers by
status and the socket errors, goodput (2xx answers a second) ÷ the peak against :data:`GOAL`,
whether every answer past the 2xx was a 503 with ``Retry-After`` or a 429 with no socket error,
and the RSS.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .http_bench import App, Counts, Run, wrk
from .read_http import RssSampler, status_kb

#: The rate offered, as a multiple of the peak.
FACTOR: Final = 2
#: Goodput at least this share of the peak.
GOAL: Final = 0.9
#: Each connection's wait between its answer and its next request: long beside the answer's own
#: time, so the rate offered hardly falls as answers slow down (wrk is a closed loop: a slow
#: answer delays its connection's next request). At the peak a gateway then holds hundreds of
#: requests at once, as it would behind a busy site.
THINK_MS: Final = 100
MAX_CONNECTIONS: Final = 2048


@dataclass
class Overload:
    """One overload run: how it was paced, wrk's figures and counts, and the server's RSS."""

    name: str
    #: The median peak 1-event req/s of the same section run: the max goodput can reach.
    peak: float
    connections: int
    delay_ms: int
    run: Run
    rss_before_kb: int
    rss_peak_kb: int
    rss_end_kb: int

    @property
    def counts(self) -> Counts:
        if self.run.counts is None:
            raise ValueError("the overload run was not counted")
        return self.run.counts

    @property
    def offered(self) -> float:
        """The rate wrk offers while answers are quick: one request a connection a delay."""
        return self.connections * 1000 / self.delay_ms

    @property
    def goodput(self) -> float:
        """2xx answers a second."""
        return self.counts.ok / self.run.duration_s if self.run.duration_s else 0.0

    @property
    def ratio(self) -> float:
        return self.goodput / self.peak

    @property
    def clean(self) -> bool:
        """Every answer past the 2xx a 503 with Retry-After or a 429, and no socket error."""
        return self.counts.bad == 0 and self.counts.socket_errors == 0


def pacing(target: float) -> tuple[int, int]:
    """wrk's connections and delay (whole ms) offering at least ``target`` req/s.

    Raises:
        ValueError: ``target`` is not a positive rate.
    """
    if not target > 0:
        raise ValueError(f"no rate to offer: {target}")
    connections = min(MAX_CONNECTIONS, math.ceil(target * THINK_MS / 1000))
    return connections, max(1, int(1000 * connections / target))


def overload_run(app: App, key: str, script: Path, peak: float, seconds: int) -> Overload:
    """Start ``app``, offer it :data:`FACTOR` × ``peak`` 1-event requests a second for
    ``seconds`` with the answers counted and its RSS sampled, and stop it."""
    connections, delay_ms = pacing(FACTOR * peak)
    app.start()
    try:
        before = status_kb(app.pid)["VmRSS"]
        with RssSampler(app.pid) as rss:
            run = wrk(
                app, script, 1, True, key, seconds, delay_ms, connections=connections, count=True
            )
        end = status_kb(app.pid)["VmRSS"]
    finally:
        app.stop()
    done = Overload(app.name, peak, connections, delay_ms, run, before, rss.peak_kb, end)
    print(
        f"  overload {app.name:<12} {run.requests_s:>9,.0f} req/s sent,"
        f" {done.goodput:,.0f} 2xx/s, bad {done.counts.bad}"
        f" socket errors {done.counts.socket_errors}",
        file=sys.stderr,
        flush=True,
    )
    return done


def _mb(kb: int) -> float:
    return kb / 1024


def print_overload(runs: list[Overload], seconds: int) -> None:
    """Print each overload run: pacing, answers, goodput ÷ max against the goal, RSS."""
    print(
        f"\noverload: wrk at {FACTOR}x the median peak 1-event req/s of the rounds, for"
        f" {seconds} s, unique 1-event batches, answers counted by status"
    )
    for one in runs:
        c, run = one.counts, one.run
        print(
            f"  {one.name}: offered {one.offered:,.0f} req/s ({one.connections} connections,"
            f" a request each every {one.delay_ms} ms), sent {run.requests_s:,.0f} req/s,"
            f" p99 {run.p99_ms:.1f} ms"
        )
        print(
            f"    answers: 2xx {c.ok:,}, 503+Retry-After {c.shed:,}, 429 {c.limited:,},"
            f" other {c.bad:,}; socket errors {c.socket_errors:,} (connect {c.connect},"
            f" read {c.read}, write {c.write}, timeout {c.timeout})"
        )
        print(
            f"    goodput {one.goodput:,.0f} req/s / max {one.peak:,.0f} req/s"
            f" = {one.ratio:.2f}  [>= {GOAL}]"
        )
        print(
            "    every non-2xx answer a 503 with Retry-After or a 429, no socket error:"
            f" {'yes' if one.clean else 'NO'}  [required]"
        )
        print(
            f"    RSS before {_mb(one.rss_before_kb):.1f} MB, peak {_mb(one.rss_peak_kb):.1f} MB,"
            f" at the end {_mb(one.rss_end_kb):.1f} MB:"
            f" growth {_mb(one.rss_peak_kb - one.rss_before_kb):+.1f} MB"
        )


__all__ = ["FACTOR", "GOAL", "Overload", "overload_run", "pacing", "print_overload"]
