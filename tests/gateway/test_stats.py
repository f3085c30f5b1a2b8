"""``GET /v1/stats`` and ``voxloop-gateway stats``: always equal to a scan of the stored events."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import voxloop_core
from voxloop_core import DAY_MS
from voxloop_gateway.reading import stats
from voxloop_gateway.reading.stats import bucket as _bucket
from voxloop_gateway.stores import SqliteStore

from .conftest import Gateway, make_project, start_gateway

NOW_MS = voxloop_core.bucket_start(int(__import__("time").time() * 1000), "hour")


def rating(metric: str, score: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "channel": "web",
        "form": "checkout",
        "metric": metric,
        "score": score,
        **fields,
    }


def scan(data_dir: Path, channel: str, metric: str) -> list[int]:
    """The histogram of ``metric`` computed from the stored events of ``channel``."""

    async def run() -> list[int]:
        store = SqliteStore(data_dir / "stores" / f"{channel}.sqlite3", channel)
        await store.open()
        try:
            rows = await store.scan("shop", metric)
        finally:
            await store.close()
        total = voxloop_core.empty_histogram(metric)
        for counts in rows.values():
            total = [a + b for a, b in zip(total, counts, strict=True)]
        return total

    return asyncio.run(run())


def random_ratings(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        metric = rng.choice(list(voxloop_core.METRIC_RANGES))
        low, high = voxloop_core.METRIC_RANGES[metric]
        out.append(
            rating(
                metric,
                rng.randint(low, high),
                channel=rng.choice(["web", "app", "email"]),
                form=rng.choice(["checkout", "support-ticket"]),
                ts=NOW_MS - rng.randint(0, 20 * DAY_MS),
            )
        )
    return out


def test_stats_equal_a_scan_of_the_stored_events(tmp_path: Path) -> None:
    site, server = make_project(tmp_path)
    gw = start_gateway(tmp_path, site, server)
    rng = random.Random(5)
    sent = random_ratings(rng, 400)
    for start in range(0, len(sent), 50):
        batch = sent[start : start + 50]
        assert gw.post(batch + batch[:5]).status_code == 202  # with retries mixed in
    answers = {m: gw.stats(metric=m, interval="day") for m in voxloop_core.METRIC_RANGES}
    gw.stop()
    for metric, answer in answers.items():
        scanned = [scan(tmp_path, c, metric) for c in ("web", "app", "email")]
        expected = [sum(column) for column in zip(*scanned, strict=True)]
        assert answer["total"]["histogram"] == expected
        direct = voxloop_core.empty_histogram(metric)
        low = voxloop_core.METRIC_RANGES[metric][0]
        for e in sent:
            if e["metric"] == metric:
                direct[e["score"] - low] += 1
        assert expected == direct
        assert sum(b["count"] for b in answer["series"]) == answer["total"]["count"]


def test_stats_filter_by_channel_form_and_window(gateway: Gateway) -> None:
    day = DAY_MS
    gateway.post(
        [
            rating("csat", 5, channel="web", ts=NOW_MS - 3 * day),
            rating("csat", 1, channel="app", ts=NOW_MS - 2 * day),
            rating("csat", 4, channel="app", form="search", ts=NOW_MS - day),
        ]
    )
    assert gateway.stats(metric="csat")["total"]["count"] == 3
    assert gateway.stats(metric="csat", channel="app")["total"]["histogram"] == [1, 0, 0, 1, 0]
    assert gateway.stats(metric="csat", form="search")["total"]["score"] == 100.0
    iso = "%Y-%m-%dT%H:%M:%SZ"
    import datetime as dt

    since = dt.datetime.fromtimestamp((NOW_MS - 2 * day) / 1000, dt.UTC).strftime(iso)
    windowed = gateway.stats(metric="csat", **{"from": since}, interval="day")
    assert windowed["total"]["histogram"] == [1, 0, 0, 1, 0]
    assert [b["count"] for b in windowed["series"]] == [1, 1]


@pytest.mark.parametrize("seed", range(4), ids=lambda s: f"order-{s}")
def test_vote_key_answers_in_any_order_give_the_same_stats(tmp_path: Path, seed: int) -> None:
    site, server = make_project(tmp_path)
    gw = start_gateway(tmp_path, site, server)
    votes = [
        rating("nps", score, vote_key=voter, ts=NOW_MS - 60_000 * minute)
        for voter in ("ana", "bo", "cy")
        for minute, score in enumerate([10, 2, 7, 9])
    ]
    random.Random(seed).shuffle(votes)
    for vote in votes:
        assert gw.post([vote]).status_code == 202
    total = gw.stats(metric="nps")["total"]
    gw.stop()
    # minute 0 is the latest ts: score 10 counts for each voter, the others stay as history
    assert total["histogram"] == [0] * 10 + [3]
    assert scan(tmp_path, "web", "nps") == total["histogram"]


def test_three_nps_answers_give_an_interval_on_the_scale(gateway: Gateway) -> None:
    """One promoter and two detractors: -33.3, whose normal-approximation margin was 130.7."""
    gateway.post([rating("nps", 10), rating("nps", 0), rating("nps", 3)])
    answer = gateway.stats(metric="nps", interval="day")
    for bucket in (answer["total"], *answer["series"]):
        keys = list(bucket)
        fields = ["count", "histogram", "score", "low", "high", "margin"]
        assert keys[keys.index("count") : keys.index("count") + 6] == fields
        assert (bucket["count"], bucket["score"]) == (3, -33.3)
        # adjusted Wald: -84.6665 .. 51.3332, rounded outward; margin 67.9998
        assert (bucket["low"], bucket["high"], bucket["margin"]) == (-84.7, 51.4, 68.0)
        assert -100 <= bucket["low"] <= bucket["score"] <= bucket["high"] <= 100
    with gateway.client() as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"low", "high", "margin"} <= set(schemas["Bucket"]["properties"])


def test_without_answers_the_interval_is_null(gateway: Gateway) -> None:
    total = gateway.stats(metric="ces")["total"]
    assert (total["score"], total["low"], total["high"], total["margin"]) == (None,) * 4
    gateway.post([rating("ces", 5)])
    total = gateway.stats(metric="ces")["total"]
    assert (total["score"], total["low"], total["high"], total["margin"]) == (5.0, None, None, None)


@st.composite
def metric_histograms(draw: st.DrawFn) -> tuple[str, list[int]]:
    metric = draw(st.sampled_from(list(voxloop_core.METRIC_RANGES)))
    size = voxloop_core.histogram_size(metric)
    cells = draw(st.sampled_from([st.integers(0, 3), st.sampled_from([0, 0, 1, 10**5])]))
    return metric, draw(st.lists(cells, min_size=size, max_size=size))


SCALES = {"nps": (-100, 100), "csat": (0, 100), "thumbs": (0, 100), "ces": (1, 7)}
SCALES["likert"] = (20, 100)


@given(metric_histograms())
def test_rounded_intervals_cover_the_exact_ones_and_keep_to_the_scale(
    case: tuple[str, list[int]],
) -> None:
    metric, histogram = case
    exact = voxloop_core.score(metric, histogram)
    bucket = _bucket(metric, histogram)
    if exact.low is None or exact.high is None:
        assert (bucket.low, bucket.high, bucket.margin) == (None, None, None)
        return
    assert bucket.low is not None and bucket.high is not None and bucket.score is not None
    bottom, top = SCALES[metric]
    assert bottom <= bucket.low <= exact.low and exact.high <= bucket.high <= top
    assert bucket.high - bucket.low < exact.high - exact.low + 0.2 + 1e-9
    assert [round(b, 1) for b in (bucket.low, bucket.high)] == [bucket.low, bucket.high]
    assert bucket.margin == round((exact.high - exact.low) / 2, 1)
    if exact.value is not None and exact.low <= exact.value <= exact.high:
        assert bucket.low <= bucket.score <= bucket.high


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, "metric is required"),
        ({"metric": "nps", "interval": "year"}, 400, "interval must be one of"),
        ({"metric": "nps", "channel": "fax"}, 400, "channel 'fax' is not one of"),
        ({"metric": "nps", "from": "yesterday"}, 400, "from must be an RFC 3339 time"),
        ({"metric": "nps", "form": "a b"}, 400, "form 'a b' must be"),
    ],
    ids=["no-metric", "bad-interval", "unknown-channel", "bad-from", "bad-form"],
)
def test_bad_stats_queries_are_400(
    gateway: Gateway, params: dict[str, str], status: int, message: str
) -> None:
    with gateway.client(gateway.server_key) as client:
        answer = client.get("/v1/stats", params=params)
    assert answer.status_code == status
    assert message in answer.json()["error"]


def test_stats_need_a_server_key(gateway: Gateway) -> None:
    with gateway.client(gateway.site_key) as client:
        answer = client.get("/v1/stats", params={"metric": "nps"})
    assert answer.status_code == 403


def test_the_cli_prints_the_same_stats_as_a_table(gateway: Gateway) -> None:
    gateway.post([rating("nps", 10), rating("nps", 0), rating("nps", 9)])
    expected = gateway.stats(metric="nps")["total"]
    printed = subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(gateway.data_dir)]
        + ["stats", "shop", "--metric", "nps"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = next(line for line in printed.splitlines() if line.startswith("total"))
    assert total.split()[1:5] == [
        str(expected["count"]),
        f"{expected['score']:.1f}",
        f"[{expected['low']:.1f},",
        f"{expected['high']:.1f}]",
    ]


def test_an_answer_refuses_readings_too_coarse_for_it() -> None:
    day = {("*", 0): [0] * 10 + [2]}
    window = stats.Readings(
        metric="nps", step="window", per_form=False, counted={"web": day}, held={"web": {}}
    )
    assert stats.answer(window).total.count == 2
    for interval in ("hour", "day", "week", "month"):
        with pytest.raises(ValueError, match=f"a series by {interval} needs readings by"):
            stats.answer(window, interval=interval)  # type: ignore[arg-type]
    by_day = stats.Readings(
        metric="nps", step="day", per_form=False, counted={"web": day}, held={"web": {}}
    )
    assert stats.answer(by_day, interval="month").series is not None
    with pytest.raises(ValueError, match="a series by hour needs readings by hour"):
        stats.answer(by_day, interval="hour")
    with pytest.raises(ValueError, match="a breakdown by form needs readings per form"):
        stats.answer(by_day, forms=("checkout",))
