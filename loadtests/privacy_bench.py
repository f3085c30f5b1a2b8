"""The privacy benchmark: ingest with comments scrubbed of personal data, beside ingest without.

Run with ``python -m loadtests.bench --section privacy`` (part of ``make bench``). Scrubbing runs
on the ingest path, between validation and the dedup window, so it is measured where it weighs
most: the core's compiled pipeline (decode + validate + dedup + aggregate, the ``core``
section's "compiled") on the ``core`` section's realistic batches (100 events, comments of
0-500 characters in 7 languages), without scrubbing and with a new project's policy
(:data:`~voxloop_gateway.privacy.scrub.DEFAULT_SCRUBBER`), measured side by side in each round.
Over HTTP the store's commit makes the same cost a smaller share.

Two sets of batches: the core section's own, whose comments hold no personal data (as most
comments don't: the prefilter sends them past the detectors), and the same with one comment in
:data:`PII_SHARE` given an email address, a phone number, a card number or an IBAN, so that the
detectors themselves are part of what is measured. Printed: the median events/s of each, the
ratio scrubbed / plain against the goal (:data:`GOAL`: scrubbing costs at most 20%), and the hits
the scrubbed runs replaced.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import msgspec

from voxloop_core import HOUR_MS, decode_batch
from voxloop_core import _pipeline_py as reference
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.privacy.audit import CLI_ACTOR
from voxloop_gateway.privacy.policy import DEFAULT, write_policy
from voxloop_gateway.privacy.scrub import DEFAULT_SCRUBBER, Scrubber, scrub_records

from .bench import NOW_MS, median_ratio, pipeline, realistic_batch, side_by_side
from .http_bench import WRK_SCRIPT, App, gateway_env, wrk

PROJECT: Final = "bench"
CHANNELS: Final = ("web", "app", "email")
#: The batches of the runs into stores: each commit waits for the disk.
STORED_BATCHES: Final = 100
#: Scrubbed ingest's events/s at least this share of plain ingest's.
GOAL: Final = 0.8
#: The share of comments given personal data in the second set of batches.
PII_SHARE: Final = 0.05
#: What those comments get, one of each in turn, in the languages of the core's batches.
PERSONAL: Final = (
    " Write to me at jane.doe@example.com please.",
    " با ۰۹۱۲ ۳۴۵ ۶۷۸۹ تماس بگیرید.",
    " Hubungi saya di 0812-3456-7890.",
    " Charged twice on 4111 1111 1111 1111!",
    " رقم الآيبان DE89 3704 0044 0532 0130 00",
)


def with_personal_data(body: bytes, rng: random.Random) -> bytes:
    """``body`` with :data:`PII_SHARE` of its events given a comment holding personal data."""
    batch = msgspec.json.decode(body)
    for event in batch["events"]:
        if rng.random() < PII_SHARE:
            event["comment"] = event.get("comment", "")[:400] + rng.choice(PERSONAL)
    return msgspec.json.encode(batch)


def scrubbing(scrubber: Scrubber, hits: Counter[str]) -> Callable[[list[Any]], list[Any]]:
    """The ``scrub`` step of :func:`.bench.pipeline` for ``scrubber``, counting its hits."""

    def scrub(records: list[Any]) -> list[Any]:
        scrubbed, found = scrub_records(scrubber, records)
        hits.update(found)
        return scrubbed

    return scrub


def comments_script() -> str:
    """wrk's script of the ``http`` section, its events given comments from the file named by
    ``VX_COMMENTS`` (one JSON string a line), each event the next one in turn."""
    script = WRK_SCRIPT.replace(
        "local threads = {}\n",
        "local threads = {}\nlocal comments = {}\n"
        'for line in io.lines(os.getenv("VX_COMMENTS")) do table.insert(comments, line) end\n',
    )
    script = script.replace(
        """'"comment":"Fast checkout, thanks!"}',""", """'"comment":%s}',"""
    ).replace(
        "m[2] + counter % (m[3] - m[2] + 1))",
        "m[2] + counter % (m[3] - m[2] + 1), comments[(counter % #comments) + 1])",
    )
    assert script.count("comments[") == 1, "the http section's script changed: update this"
    return script


def http_runs(bodies: list[bytes], seconds: int, rounds: int) -> dict[str, list[float]] | None:
    """Events/s of the gateway under wrk (as the ``http`` section runs it: 100-event unique
    batches, the gateway pinned to CPU 0 and wrk to CPU 1, a fresh data dir each run), its
    project scrubbing (a new project's policy) or not, alternated ``rounds`` times; None when
    wrk or taskset is missing."""
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("privacy: over HTTP needs wrk and taskset; left out", file=sys.stderr)
        return None
    rates: dict[str, list[float]] = {"http": [], "http, scrubbed": []}
    with tempfile.TemporaryDirectory(prefix="voxloop-privacy-http-") as tmp:
        folder = Path(tmp)
        script = folder / "events.lua"
        script.write_text(comments_script())
        comments = folder / "comments.txt"
        texts = [e.comment for body in bodies for e in decode_batch(body)[0] if e.comment]
        comments.write_bytes(b"\n".join(msgspec.json.encode(t) for t in texts) + b"\n")
        os.environ["VX_COMMENTS"] = str(comments)  # wrk's environment is this process's
        try:
            for round_no in range(rounds):
                for name in rates:
                    data = folder / f"{round_no}-{name.replace(', ', '-')}"
                    env, key = gateway_env(data)
                    if name == "http":
                        keep_comments(data)
                    app = App("gateway", "voxloop_gateway.asgi:app", env, None)
                    app.start()
                    try:
                        run = wrk(app, script, 100, True, key, seconds)
                    finally:
                        app.stop()
                    if run.errors:
                        raise RuntimeError(f"privacy: {run.errors} requests failed under wrk")
                    rates[name].append(run.events_s)
        finally:
            del os.environ["VX_COMMENTS"]
    return rates


def keep_comments(data_dir: Path) -> None:
    """Turn scrubbing off for the bench's project, as an operator would."""
    registry = Registry(data_dir)
    try:
        policy = msgspec.structs.replace(DEFAULT, scrub=False)
        asyncio.run(write_policy(registry.db, PROJECT, policy, CLI_ACTOR))
    finally:
        registry.close()


class Figures(msgspec.Struct):
    """What the section measured: events/s of each run, a figure a round (over HTTP, None
    without wrk), and the hits each scrubbed run of the pipeline replaced."""

    pipeline: dict[str, list[float]]
    http: dict[str, list[float]] | None
    hits: dict[str, Counter[str]]


def privacy_section(batches: int, rounds: int, seconds: int, http_rounds: int) -> Figures:
    """Plain and scrubbed ingest: the pipeline on both sets of batches, ``rounds`` times; the
    gateway under wrk for ``seconds`` a run, ``http_rounds`` times."""
    rng = random.Random(7)
    plain = [realistic_batch(100, rng, NOW_MS - HOUR_MS + i * 100) for i in range(batches)]
    personal = [with_personal_data(body, rng) for body in plain]
    try:
        from voxloop_core import _pipeline_c as impl  # type: ignore[attr-defined]
    except ImportError as exc:
        print(f"compiled core not available ({exc}); measuring the reference", file=sys.stderr)
        impl = reference
    hits: dict[str, Counter[str]] = {"scrubbed": Counter(), "scrubbed, some PII": Counter()}
    runs = {
        "plain": pipeline(impl, plain),
        "scrubbed": pipeline(impl, plain, scrubbing(DEFAULT_SCRUBBER, hits["scrubbed"])),
        "plain, some PII": pipeline(impl, personal),
        "scrubbed, some PII": pipeline(
            impl, personal, scrubbing(DEFAULT_SCRUBBER, hits["scrubbed, some PII"])
        ),
    }
    rates = side_by_side(runs, rounds)
    per_run = {
        name: Counter({kind: count // rounds for kind, count in found.items()})
        for name, found in hits.items()
    }
    return Figures(rates, http_runs(plain, seconds, http_rounds), per_run)


def print_privacy(figures: Figures) -> None:
    rates = figures.pipeline
    print("\nprivacy: ingest with comments scrubbed of personal data, and without")
    print("  the core section's batches (100 events, comments of 0-500 chars in 7 languages)")
    print("  the pipeline (decode + validate + dedup + aggregate, no store), medians of")
    print(f"  {len(rates['plain'])} rounds; then with personal data in {PII_SHARE:.0%} of comments")
    for name, found in rates.items():
        print(f"  {name:<19} {statistics.median(found):>12,.0f} events/s")
    ratio = median_ratio(rates, "scrubbed", "plain")
    print(f"  scrubbed / plain             = {ratio:.2f}")
    ratio = median_ratio(rates, "scrubbed, some PII", "plain, some PII")
    print(f"  scrubbed / plain, some PII   = {ratio:.2f}")
    for name, found in figures.hits.items():
        replaced = ", ".join(f"{kind} {count:,}" for kind, count in sorted(found.items()))
        print(f"  replaced by a run {name + ':':<20} {replaced or 'nothing'}")
    http = figures.http
    if http is None:
        return
    print(
        f"  the gateway under wrk (100-event unique batches), medians of {len(http['http'])} rounds"
    )
    for name, found in http.items():
        print(f"  {name:<19} {statistics.median(found):>12,.0f} events/s")
    ratio = median_ratio(http, "http, scrubbed", "http")
    print(f"  ingest: scrubbed / plain     = {ratio:.2f}   (goal >= {GOAL})")
