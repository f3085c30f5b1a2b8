"""voxloop's benchmarks: figures printed as ratios against baselines measured in the same run.

Run with ``make bench``. Sections:

- ``core``: the hot path on the same realistic batches (100 events, mixed metrics, multilingual
  comments of 0-500 characters): msgspec decode alone, the pure reference pipeline and the
  compiled pipeline (decode + validate + dedup + aggregate), and their ratios; also the twins'
  own stages alone, on events decoded beforehand.
- ``sdk``: what the SDK's ``capture()`` costs the calling thread, and how fast it enqueues.
- ``http``: the gateway, in two configurations, and its peers under wrk, the server's CPU time
  per event, and the gateway offered twice its peak rate (see ``http_bench`` and ``overload``).
- ``read``: a year of stored events read over HTTP: responses, search, deep pages, the
  dashboard, stats and the whole export, beside the naive peer (see ``read_bench``).
- ``privacy``: ingest with comments scrubbed of personal data, beside ingest without, on the
  core section's batches (see ``privacy_bench``).
- ``integrations``: ingest with five rules and two webhook endpoints at work, beside ingest
  without them, and how far the background workers got (see ``integrations_bench``).

Machines are noisy: every figure is the median of several rounds, and the goals are ratios of
figures taken side by side.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from voxloop_core import DEFAULT_POLICY, HOUR_MS, METRIC_RANGES, Batch, decode_batch
from voxloop_core import _pipeline_py as reference

from .http_bench import DEFAULT_PEERS, http_section
from .integrations_bench import integrations_section
from .sdk_bench import print_sdk, sdk_section

NOW_MS = int(time.time() * 1000)
SECRET = b"bench-secret-0123456789abcdef!!!"
PHRASES = [
    "Fast checkout, thanks! ",
    "The delivery was late and nobody answered the phone. ",
    "شكراً، الدفع كان سريعاً وسهلاً. ",
    "خیلی ممنون، پرداخت سریع بود و می\u200cخواهم دوباره خرید کنم. ",
    "Terima kasih, prosesnya cepat sekali. ",
    "配送がとても速かったです。 ",
    "Très bien, mais le site est un peu lent. ",
]
FORMS = ["checkout", "onboarding", "support-ticket", "search", "delivery"]


def uuid7(ms: int, rng: random.Random) -> str:
    """A UUIDv7 string for the millisecond ``ms``, as the SDK and widgets make them."""
    rand = rng.getrandbits(74)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & (2**62 - 1))
    return str(uuid.UUID(int=value))


def realistic_batch(size: int, rng: random.Random, start_ms: int) -> bytes:
    """One request body of ``size`` events as widgets and SDKs send them."""
    events: list[dict[str, Any]] = []
    for i in range(size):
        metric = rng.choice(list(METRIC_RANGES))
        low, high = METRIC_RANGES[metric]
        length = rng.randint(0, 500)
        comment = ""
        while len(comment) < length:
            comment += rng.choice(PHRASES)
        event: dict[str, Any] = {
            "id": uuid7(start_ms + i, rng),
            "channel": rng.choice(["web", "app", "email"]),
            "form": rng.choice(FORMS),
            "metric": metric,
            "score": rng.randint(low, high),
            "ts": start_ms + i,
            "locale": rng.choice(["en", "ar", "fa-IR", "id", "ja"]),
        }
        if comment[:length]:
            event["comment"] = comment[:length]
        if rng.random() < 0.5:
            event["respondent"] = f"user-{rng.randint(1, 10**6)}"
        if rng.random() < 0.3:
            event["tags"] = ["mobile"]
            event["meta"] = {"plan": "pro", "cart_value": 129.5}
        events.append(event)
    return msgspec.json.encode({"events": events})


def rate(run: Callable[[], int]) -> float:
    """Events/s of one run of ``run`` (which returns how many events it did)."""
    started = time.perf_counter()
    done = run()
    return done / (time.perf_counter() - started)


def side_by_side(runs: dict[str, Callable[[], int]], rounds: int) -> dict[str, list[float]]:
    """Rates of every run in each round, measured back to back so noise hits them alike."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            rates[name].append(rate(run))
    return rates


def median_ratio(rates: dict[str, list[float]], top: str, bottom: str) -> float:
    """Median over rounds of ``top``'s rate divided by ``bottom``'s in the same round."""
    return statistics.median(t / b for t, b in zip(rates[top], rates[bottom], strict=True))


def pipeline(
    impl: Any, bodies: list[bytes], scrub: Callable[[list[Any]], list[Any]] | None = None
) -> Callable[[], int]:
    """One ingest of ``bodies`` by ``impl`` (decode + validate + dedup + aggregate); ``scrub``,
    when given, runs on each batch's records after validation, as the gateway's scrubber does."""

    def run() -> int:
        window = impl.DedupWindow()
        total = 0
        for body in bodies:
            events, _ = decode_batch(body)
            records, _ = impl.validate(events, DEFAULT_POLICY, NOW_MS, SECRET)
            if scrub is not None:
                records = scrub(records)
            fresh, _ = window.split(records, NOW_MS)
            impl.aggregate(fresh)
            window.remember(fresh, NOW_MS)
            total += len(events)
        return total

    return run


def core_section(batches: int, rounds: int) -> dict[str, list[float]]:
    """Measure decode-only, reference and compiled pipelines on the same bodies."""
    rng = random.Random(7)
    bodies = [realistic_batch(100, rng, NOW_MS - HOUR_MS + i * 100) for i in range(batches)]
    decoder = msgspec.json.Decoder(Batch)

    def decode_only() -> int:
        return sum(len(decoder.decode(b).events) for b in bodies)

    decoded = [decode_batch(body)[0] for body in bodies]

    def stages_of(impl: Any) -> Callable[[], int]:
        """validate + dedup + aggregate alone, on events decoded beforehand."""

        def run() -> int:
            window = impl.DedupWindow()
            for events in decoded:
                records, _ = impl.validate(events, DEFAULT_POLICY, NOW_MS, SECRET)
                fresh, _ = window.split(records, NOW_MS)
                impl.aggregate(fresh)
                window.remember(fresh, NOW_MS)
            return sum(map(len, decoded))

        return run

    runs = {
        "decode-only": decode_only,
        "reference": pipeline(reference, bodies),
        "reference stages": stages_of(reference),
    }
    try:
        from voxloop_core import _pipeline_c  # type: ignore[attr-defined]
    except ImportError as exc:
        print(f"compiled core not available ({exc}); build it with `make test`", file=sys.stderr)
    else:
        runs["compiled"] = pipeline(_pipeline_c, bodies)
        runs["compiled stages"] = stages_of(_pipeline_c)
    return side_by_side(runs, rounds)


def print_core(rates: dict[str, list[float]]) -> None:
    print("\ncore: 100-event batches, mixed metrics, comments 0-500 chars in 7 languages")
    print(f"  medians of {len(rates['decode-only'])} rounds, each measuring all side by side")
    for name, figures in rates.items():
        print(f"  {name:<17} {statistics.median(figures):>12,.0f} events/s")
    if "compiled" in rates:
        decode_ratio = median_ratio(rates, "compiled", "decode-only")
        speedup = median_ratio(rates, "compiled", "reference")
        print(f"  compiled / decode-only = {decode_ratio:.2f}   (goal >= 0.5)")
        stages = median_ratio(rates, "compiled stages", "reference stages")
        print(f"  compiled / reference   = {speedup:.1f}   (both with the shared decode)")
        # The twins' own stages (validate + dedup + aggregate) on events decoded beforehand.
        print(f"  compiled stages / reference stages = {stages:.1f}   (goal >= 8)")


def main(argv: list[str] | None = None) -> int:
    # Imported here: the read section's data is made by realistic_batch, from this module.
    from .privacy_bench import print_privacy, privacy_section
    from .read_bench import DEFAULT_EVENTS, DEFAULT_REQUESTS, read_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="request bodies per round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per figure (median)")
    parser.add_argument(
        "--section",
        choices=["all", "core", "privacy", "sdk", "http", "read", "integrations"],
        default="all",
    )
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--http-rounds", type=int, default=3, help="interleaved rounds of wrk runs")
    parser.add_argument(
        "--overload-seconds",
        type=int,
        default=30,
        help="length of the http section's overload run of each gateway (2x its peak); 0: none",
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("VOXLOOP_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server for the gateway's PostgreSQL mode (fresh databases are made"
        " there and dropped); '' to leave the mode out. VOXLOOP_BENCH_PG",
    )
    parser.add_argument(
        "--peers",
        type=Path,
        default=Path(os.environ.get("VOXLOOP_BENCH_PEERS", DEFAULT_PEERS)),
        help="folder of the peer apps (bare_asgi.py, bare_starlette.py, naive_fastapi.py)",
    )
    parser.add_argument(
        "--read-events", type=int, default=DEFAULT_EVENTS, help="events stored for the read section"
    )
    parser.add_argument(
        "--read-requests",
        type=int,
        default=DEFAULT_REQUESTS,
        help="timed requests of each read (after a few warm-ups)",
    )
    parser.add_argument(
        "--integrations-seconds", type=int, default=10, help="length of each integrations run"
    )
    parser.add_argument(
        "--integrations-rounds", type=int, default=3, help="interleaved rounds of (a) and (b)"
    )
    parser.add_argument(
        "--catchup-seconds",
        type=float,
        default=120.0,
        help="longest wait for the last (b)'s workers to catch up after its load",
    )
    args = parser.parse_args(argv)
    if args.section in ("all", "core"):
        print_core(core_section(args.batches, args.rounds))
    if args.section in ("all", "privacy"):
        print_privacy(privacy_section(args.batches, args.rounds, args.seconds, args.http_rounds))
    if args.section in ("all", "sdk"):
        print_sdk(sdk_section())
    status = 0
    if args.section in ("all", "http"):
        status = http_section(
            args.seconds, args.http_rounds, args.peers.resolve(), args.pg, args.overload_seconds
        )
    if args.section in ("all", "read"):
        status = max(
            status, read_section(args.read_events, args.read_requests, args.peers.resolve())
        )
    if args.section in ("all", "integrations"):
        status = max(
            status,
            integrations_section(
                args.integrations_seconds, args.integrations_rounds, args.catchup_seconds
            ),
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
