"""The HTTP benchmark: a tiny run of the section end to end, and wrk's count of answers by status.

The run is ``python -m loadtests.bench --section http`` as a process of its own, one round of one
second per app and scenario and overload runs of two seconds, with stand-ins for the peer apps: it
proves the machinery (both gateway configurations, the server's CPU time per event, the overload run
with its counts and RSS, every goal line and every floor), not the figures, which a run this short
can't give. The count is checked against a small server of this module's that answers each kind of
status in turn, and the store's floors (``loadtests.floors``) are measured alone on a few events.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from loadtests.floors import store_floors, validated
from loadtests.http_bench import WRK_SCRIPT, App, wrk

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"([+-]?[\d,]+(?:\.\d+)?)"

#: What :func:`turns` answers, request after request: a status and its headers, the
#: Retry-After header spelled as HTTP allows (any case).
TURNS: list[tuple[int, list[tuple[bytes, bytes]]]] = [
    (202, []),
    (503, [(b"Retry-After", b"1")]),
    (503, [(b"retry-after", b"2")]),
    (429, [(b"retry-after", b"1")]),
    (503, []),  # no Retry-After: not shedding as the contract says
    (500, []),
    (400, []),
]


class Turns:
    """An ASGI app answering the :data:`TURNS` in turn, whatever it is sent."""

    def __init__(self) -> None:
        self.served = 0

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        status, headers = (
            TURNS[self.served % len(TURNS)] if scope["method"] == "POST" else (200, [])
        )
        self.served += scope["method"] == "POST"
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})


turns = Turns()


def _figures(pattern: str, output: str) -> list[float]:
    """The numbers of the first line ``pattern`` matches, one per group (thousands commas
    dropped)."""
    found = re.search(pattern, output, re.M)
    assert found is not None, f"no match for {pattern!r} in:\n{output}"
    return [float(group.replace(",", "")) for group in found.groups()]


def _figure(pattern: str, output: str) -> float:
    return _figures(pattern, output)[0]


#: A stand-in for each peer app: the run proves the section's machinery wherever the checkout
#: is, the peers themselves (kept beside it, not in it) being what ``make bench`` runs.
STAND_IN = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b'{"accepted": 1}'})
"""


def test_one_short_round_prints_every_goal_line_with_its_figure(tmp_path: Path) -> None:
    for peer in ("bare_asgi", "bare_starlette", "naive_fastapi"):
        (tmp_path / f"{peer}.py").write_text(STAND_IN)
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--section", "http", "--seconds", "1"]
        + ["--http-rounds", "1", "--overload-seconds", "2", "--pg", "", "--peers", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout
    assert done.returncode == 0, output + done.stderr
    # Every app's row in every scenario, with its CPU time per event.
    for app, scenarios in [
        ("gateway", ("1 unique", "1 dupes", "100 unique", "100 dupes")),
        ("gateway_real", ("1 unique", "100 unique")),
        ("bare_asgi", ("1 unique", "1 dupes", "100 unique", "100 dupes")),
        ("bare_starlette", ("1 unique", "100 dupes")),
        ("naive_fastapi", ("1 unique", "100 unique")),
    ]:
        for scenario in scenarios:
            batch, stream = scenario.split()
            row = rf"^  {app} +{batch} {stream} +[\d,]+ +[\d,]+ +[\d.]+ms +[\d.]+ms +([\d.]+)"
            assert _figure(row, output) > 0, f"{app} {scenario}"
    for gw in ("gateway", "gateway_real"):
        assert _figure(rf"{gw} 1-event / bare starlette +{NUMBER}  \[>= 0\.45\]", output) > 0
        cpu = rf"{gw} CPU µs per stored event, 100-event +{NUMBER}  \[<= 10 µs\]"
        assert _figure(cpu, output) > 0
        assert _figure(rf"{gw} / naive peer, 1-event +{NUMBER}  \[>= 4\]", output) > 0
        assert _figure(rf"{gw} / naive peer, 100-event +{NUMBER}  \[>= 3\.5\]", output) > 0
    assert re.search(r"gateway duplicates / unique, 100-event +\d+\.\d\d  \[>= 1\]", output)
    assert re.search(r"gateway at ~half peak \([\d,]+ req/s\): p99 [\d.]+ ms", output)
    # The floors, each with its figure, and the sums made of them.
    floors = output[output.index("  floors (measured in this run, one core):") :]
    http_1 = _figure(rf"bare ASGI under uvicorn, 1-event +{NUMBER} µs CPU a request", floors)
    assert http_1 > 0
    assert 0 < _figure(r"\(its core busy (\d+)%\)", floors) <= 120
    http_100 = _figure(rf"bare ASGI under uvicorn, 100-event +{NUMBER} µs CPU an event", floors)
    assert 0 < http_100 < http_1
    one_by_one = rf"the store alone, 100-event writes one by one +{NUMBER} µs CPU an event"
    assert _figure(one_by_one, floors) > 0
    assert _figure(rf"\({NUMBER} without fsync\)", floors) > 0
    writes_100, single = (
        _figure(rf"the store alone, {size}-event writes x32 +{NUMBER} µs CPU an event", floors)
        for size in (100, 1)
    )
    assert writes_100 > 0 and single > 0
    asgi, store, total, most, share = _figures(
        rf"=> a durable 1-event request costs at least {NUMBER} \+ {NUMBER} = {NUMBER} µs:"
        rf" at most {NUMBER} req/s on one core, {NUMBER} of bare Starlette  \[goal >= 0\.45\]",
        floors,
    )
    assert (asgi, store) == (round(http_1, 1), round(single, 1))
    assert abs(total - (asgi + store)) <= 0.15 and abs(most - 1e6 / total) <= 0.01 * most
    assert share > 0
    asgi, store, total = _figures(
        rf"=> a durable 100-event batch costs at least {NUMBER} \+ {NUMBER} = {NUMBER} µs an event"
        r"  \[goal <= 10 µs\]",
        floors,
    )
    assert (asgi, store) == (round(http_100, 1), round(writes_100, 1))
    assert abs(total - (asgi + store)) <= 0.15
    # Against the naive peer: each bound is the floor's rate over the peer's in the run.
    for size, unit, goal, per_event in [
        (1, "req/s", "4", 1.0 / most),
        (100, "events/s", "3.5", total / 1e6),
    ]:
        bound, naive, ratio = _figures(
            rf"=> {size}-event: at most {NUMBER} {unit} on one core, the naive peer {NUMBER}:"
            rf" at most {NUMBER}x it  \[goal >= {re.escape(goal)}\]",
            floors,
        )
        assert abs(bound - 1 / per_event) <= 0.01 * bound
        assert naive > 0 and abs(ratio - bound / naive) <= 0.01 * ratio + 0.005
    # The overload run of each configuration: its pacing, counts, goodput ratio and RSS.
    for gw in ("gateway", "gateway_real"):
        part = output[output.index(f"  {gw}: offered") :]
        offered = _figure(r"offered ([\d,]+) req/s", part)
        peak = _figure(r"/ max ([\d,]+) req/s", part)
        assert offered >= 2 * peak * 0.99  # at least twice the peak while answers are quick
        ok = _figure(r"answers: 2xx ([\d,]+)", part)
        assert ok > 0
        for kind in (r"503\+Retry-After", "429", "other", "socket errors"):
            assert _figure(rf"{kind} ([\d,]+)", part) >= 0
        goodput = _figure(r"goodput ([\d,]+) req/s", part)
        assert goodput > 0
        assert _figure(rf"= {NUMBER}  \[>= 0\.9\]", part) > 0
        assert re.search(r"or a 429, no socket error: (yes|NO)  \[required\]", part)
        before = _figure(rf"RSS before {NUMBER} MB", part)
        peak_mb = _figure(rf"peak {NUMBER} MB", part)
        assert 0 < before <= peak_mb
        assert _figure(rf"at the end {NUMBER} MB", part) > 0
        # Each figure is rounded to 0.1 MB on its own.
        assert abs(_figure(rf"growth {NUMBER} MB", part) - (peak_mb - before)) < 0.15


def test_wrk_counts_answers_by_status_and_retry_after_in_any_case() -> None:
    app = App("turns", "tests.loadtests.test_http_bench:turns", {}, ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "events.lua"
        script.write_text(WRK_SCRIPT)
        app.start()
        try:
            run = wrk(app, script, 1, True, "", 1, connections=1, count=True)
        finally:
            app.stop()
    counts = run.counts
    assert counts is not None
    answered = round(run.requests_s * run.duration_s)
    assert counts.ok + counts.shed + counts.limited + counts.bad == answered
    assert answered >= 10 * len(TURNS)
    # One connection: the answers come in the order of TURNS, each kind its share of them.
    rounds = answered / len(TURNS)
    for got, turns_of_kind in [(counts.ok, 1), (counts.shed, 2), (counts.limited, 1)]:
        assert abs(got - turns_of_kind * rounds) <= turns_of_kind + 1, counts
    assert abs(counts.bad - 3 * rounds) <= 4, counts
    assert counts.socket_errors == 0
    assert run.cpu_s > 0


def test_store_floors_measure_stored_events_on_a_few_writes() -> None:
    writes = validated(3, 100)
    assert [len(w) for w in writes] == [100, 100, 100]
    assert {r.channel for w in writes for r in w} == {"web"}
    assert len({r.key for w in writes for r in w}) == 300  # every event a new one
    floors = store_floors(batch_events=200, single_events=64, repetitions=1)
    for figure in (
        floors.batch_us,
        floors.batch_nosync_us,
        floors.batch_concurrent_us,
        floors.single_us,
    ):
        assert math.isfinite(figure) and figure > 0
