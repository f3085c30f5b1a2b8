"""``/metrics``: every label takes its values from a set the gateway knows, whatever is sent."""

from __future__ import annotations

import random
import string
import subprocess
import sys
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from voxloop import new_id
from voxloop_gateway.http.metrics import OTHER, WAITING_TIMES, Metrics

from .conftest import Gateway, clean_environ


def label_values(text: str) -> dict[tuple[str, str], set[str]]:
    """(metric, label) -> the distinct values /metrics shows."""
    found: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label not in ("le", "quantile"):  # buckets: fixed by the code
                    found[(family.name, label)].add(value)
    return found


def scrape(gateway: Gateway) -> dict[tuple[str, str], set[str]]:
    with gateway.client() as client:
        return label_values(client.get("/metrics").text)


def random_channel(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase + "-_") for _ in range(rng.randint(1, 40)))


def test_channels_named_by_clients_never_become_label_values(gateway: Gateway) -> None:
    rng = random.Random(7)
    for _ in range(20):
        events = [
            {"channel": random_channel(rng), "form": "probe", "metric": "nps", "score": 9}
            for _ in range(50)
        ]
        events.append({"channel": "kiosk", "form": "probe", "metric": "nps", "score": 9})
        events.append({"channel": "web", "form": "probe", "metric": "nps", "score": 99})
        events.append({"channel": 7, "form": "probe", "metric": "nps", "score": 9})
        answer = gateway.post(events)
        assert answer.status_code == 202, answer.text
    with gateway.client(gateway.server_key) as client:  # a few other answers and routes
        client.get("/v1/stats", params={"metric": "nps", "channel": random_channel(rng)})
        client.get("/v1/stats", params={"metric": "nps"})
        client.get(f"/r/{random_channel(rng)}")
    values = scrape(gateway)

    known = {"web", "app", "email", "kiosk"}  # the built-in ones and the project's own
    assert values[("voxloop_events", "channel")] == {"kiosk", "web", OTHER}
    assert values[("voxloop_commit_seconds", "channel")] <= known
    assert values[("voxloop_events", "outcome")] <= {"accepted", "duplicate", "rejected"}
    assert values[("voxloop_requests", "route")] <= {"events", "stats", "rating"}
    assert all(v.isdigit() and len(v) == 3 for v in values[("voxloop_requests", "status")])
    every = set().union(*values.values())
    assert len(every) < 30, sorted(every)


def test_a_channel_the_registry_adds_is_reported_by_name(gateway: Gateway) -> None:
    event = {"channel": "lobby", "form": "f", "metric": "thumbs", "score": 1}
    gateway.post([event])
    assert values_of(gateway) == {OTHER}  # no project has it yet

    subprocess.run(
        [sys.executable, "-m", "voxloop_gateway.cli", "--data-dir", str(gateway.data_dir)]
        + ["projects", "create", "hotel", "--channel", "lobby"],
        check=True,
        capture_output=True,
        env=clean_environ(),
    )
    gateway.post([{**event, "id": new_id()}])  # shop has no lobby: rejected, but a known name
    assert values_of(gateway) == {OTHER, "lobby"}


def values_of(gateway: Gateway) -> set[str]:
    return scrape(gateway)[("voxloop_events", "channel")]


def test_every_label_is_held_to_its_set() -> None:
    metrics = Metrics(lambda: 0.0, lambda: {"web"})
    metrics.request("events", 202)
    metrics.request("/anything/a/client/asked", 202)
    metrics.request("stats", 1234)
    metrics.outcome("web", "accepted", 1)
    metrics.outcome("zz-probe", "accepted", 1)
    metrics.outcome("web", "whatever", 1)
    metrics.commit("zz-probe", 0.01)
    values = label_values(metrics.render().decode())
    assert values[("voxloop_requests", "route")] == {"events", "stats", OTHER}
    assert values[("voxloop_requests", "status")] == {"202", OTHER}
    assert values[("voxloop_events", "channel")] == {"web", OTHER}
    assert values[("voxloop_events", "outcome")] == {"accepted", OTHER}
    assert values[("voxloop_commit_seconds", "channel")] == {OTHER}


def test_counts_are_the_same_however_often_a_series_is_counted() -> None:
    known = {"web"}
    metrics = Metrics(lambda: 0.0, lambda: known)
    for _ in range(3):
        metrics.request("events", 202)
        metrics.outcome("lobby", "accepted", 2)  # not known yet: _other
    known.add("lobby")  # the registry learns it: counted by name from now on
    metrics.outcome("lobby", "accepted", 5)
    metrics.commit("lobby", 0.01)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }
    assert samples[("voxloop_requests_total", (("route", "events"), ("status", "202")))] == 3
    assert samples[("voxloop_events_total", (("channel", OTHER), ("outcome", "accepted")))] == 6
    assert samples[("voxloop_events_total", (("channel", "lobby"), ("outcome", "accepted")))] == 5
    assert samples[("voxloop_commit_seconds_count", (("channel", "lobby"),))] == 1


def test_commit_times_past_the_waiting_bound_are_all_counted() -> None:
    metrics = Metrics(lambda: 0.0, lambda: {"web"})
    for _ in range(WAITING_TIMES + 10):  # folded into the histogram once, the rest at render
        metrics.commit("web", 0.002)
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.labels.get("channel") == "web" and sample.labels.get("le") in (None, "0.0025")
    }
    assert samples["voxloop_commit_seconds_count"] == WAITING_TIMES + 10
    assert samples["voxloop_commit_seconds_bucket"] == WAITING_TIMES + 10
    assert samples["voxloop_commit_seconds_sum"] == pytest.approx(0.002 * (WAITING_TIMES + 10))
