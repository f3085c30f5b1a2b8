"""The SDK's hot path: what ``capture()`` costs the calling thread, and how fast it enqueues.

Run alone with ``python -m loadtests.sdk_bench``; ``sdk_section()`` and ``print_sdk()`` are the
pieces ``loadtests.bench`` calls. The client's worker is running, as in an app, but points at a
transport that discards every batch (answering 202), so the figures are the SDK's own cost:
validation, the UUIDv7 id, the queue, and the worker's share of the interpreter, never the
network's.

Goals: median cost per call <= 5 us; >= 200,000 events/s enqueued by one thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Final

import voxloop

GOAL_MEDIAN_NS: Final = 5_000
GOAL_RATE: Final = 200_000
_ACCEPTED: Final = voxloop.Response(202, {}, b'{"accepted":0,"duplicates":0,"rejected":[]}')


def _client(calls: int) -> voxloop.Client:
    """A client whose worker sends to nowhere, with room for every call (no queue_full path)."""
    config = voxloop.Config(queue_size=calls + 1, flush_at_exit=False)
    transport = voxloop.MockTransport(lambda body: _ACCEPTED)
    return voxloop.Client("http://127.0.0.1:1", "sk_bench", config=config, transport=transport)


def capture_costs(calls: int) -> list[int]:
    """Nanoseconds of each of ``calls`` captures of a typical event (the required fields)."""
    client = _client(calls)
    capture = client.capture
    clock = time.perf_counter_ns
    costs = [0] * calls
    try:
        for i in range(calls):
            started = clock()
            capture(channel="web", form="checkout", metric="nps", score=9)
            costs[i] = clock() - started
    finally:
        client.close(timeout=30)
    return costs


def enqueue_rate(calls: int) -> float:
    """Events per second one thread enqueues, the worker draining alongside."""
    client = _client(calls)
    capture = client.capture
    try:
        started = time.perf_counter()
        for _ in range(calls):
            capture(channel="web", form="checkout", metric="nps", score=9)
        elapsed = time.perf_counter() - started
    finally:
        client.close(timeout=30)
    return calls / elapsed


def sdk_section(calls: int = 200_000, rounds: int = 3) -> dict[str, list[float]]:
    """Median capture cost (ns) and enqueue rate (events/s), one figure per round."""
    medians: list[float] = []
    p99s: list[float] = []
    rates: list[float] = []
    for _ in range(rounds):
        costs = sorted(capture_costs(calls))
        medians.append(statistics.median(costs))
        p99s.append(costs[int(len(costs) * 0.99)])
        rates.append(enqueue_rate(calls))
    return {"median_ns": medians, "p99_ns": p99s, "events_per_s": rates}


def print_sdk(figures: dict[str, list[float]]) -> bool:
    """Print the figures against the goals; whether both goals are met."""
    median = statistics.median(figures["median_ns"])
    p99 = statistics.median(figures["p99_ns"])
    rate = statistics.median(figures["events_per_s"])
    median_ok = median <= GOAL_MEDIAN_NS
    rate_ok = rate >= GOAL_RATE
    print("\nsdk: capture() of a typical event, worker running, transport discarding")
    print(f"  medians of {len(figures['median_ns'])} rounds")
    print(f"  capture() median {median / 1000:>9.2f} us  (goal: median <= 5 us) {_ok(median_ok)}")
    print(f"  capture() p99    {p99 / 1000:>9.2f} us")
    print(f"  enqueued {rate:>17,.0f} events/s  (goal: >= 200k events/s) {_ok(rate_ok)}")
    return median_ok and rate_ok


def _ok(met: bool) -> str:
    return "ok" if met else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="captures per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure (median)")
    args = parser.parse_args(argv)
    return 0 if print_sdk(sdk_section(args.calls, args.rounds)) else 1


if __name__ == "__main__":
    sys.exit(main())
