"""The SDK's hot path: what ``capture()`` costs the calling thread, and how fast it enqueues.

Run alone with ``python -m loadtests.sdk_bench``; ``sdk_section()`` and ``print_sdk()`` are the
pieces ``loadtests.bench`` calls. The client's worker is running, as in an app, but points at a
transport that discards every batch (answering 202), so the figures are the SDK's own cost:
validation, the UUIDv7 id, the queue, and the worker's share of the interpreter, never the
network's. Then the end-to-end rate: events captured by one client until a real local gateway
has committed them all, checked against its stats.

Goals: median cost per call <= 5 us; >= 200,000 events/s enqueued by one thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import httpx

import voxloop

from .http_bench import App, gateway_env

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


def end_to_end_rate(events: int) -> float:
    """Events/s from the first ``capture()`` until a real local gateway has committed them all.

    The gateway runs as its own process (``voxloop-gateway``'s ASGI app under uvicorn, on a
    temporary data dir); the figure counts only after its stats show exactly ``events``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        env, key = gateway_env(Path(tmp))
        gateway = App("gateway", "voxloop_gateway.asgi:app", env, None)
        gateway.start()
        url = f"http://127.0.0.1:{gateway.port}"
        form = f"sdk-bench-{time.time_ns()}"
        try:
            config = voxloop.Config(queue_size=events + 1, flush_at_exit=False)
            with voxloop.Client(url, key, config=config) as client:
                started = time.perf_counter()
                for i in range(events):
                    client.capture(channel="app", form=form, metric="csat", score=1 + i % 5)
                if not client.flush(timeout=300):
                    raise RuntimeError(f"end to end: not delivered in time: {client.stats()}")
                elapsed = time.perf_counter() - started
            answer = httpx.get(
                f"{url}/v1/stats",
                params={"metric": "csat", "form": form},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            ).json()
        finally:
            gateway.stop()
    counted = answer["total"]["count"]
    if counted != events:
        raise RuntimeError(f"end to end: the gateway counted {counted} of {events} events")
    return events / elapsed


def sdk_section(
    calls: int = 200_000, rounds: int = 3, end_to_end: int = 50_000
) -> dict[str, list[float]]:
    """Median capture cost (ns), enqueue rate and end-to-end rate (events/s), one a round."""
    medians: list[float] = []
    p99s: list[float] = []
    rates: list[float] = []
    delivered: list[float] = []
    for _ in range(rounds):
        costs = sorted(capture_costs(calls))
        medians.append(statistics.median(costs))
        p99s.append(costs[int(len(costs) * 0.99)])
        rates.append(enqueue_rate(calls))
        if end_to_end:
            delivered.append(end_to_end_rate(end_to_end))
    return {"median_ns": medians, "p99_ns": p99s, "events_per_s": rates, "end_to_end": delivered}


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
    if figures["end_to_end"]:
        delivered = statistics.median(figures["end_to_end"])
        print(f"  end to end {delivered:>15,.0f} events/s  (capture to commit, stats checked)")
    return median_ok and rate_ok


def _ok(met: bool) -> str:
    return "ok" if met else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="captures per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure (median)")
    parser.add_argument(
        "--end-to-end", type=int, default=50_000, help="events sent to a real gateway (0: skip)"
    )
    args = parser.parse_args(argv)
    figures = sdk_section(args.calls, args.rounds, args.end_to_end)
    return 0 if print_sdk(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
