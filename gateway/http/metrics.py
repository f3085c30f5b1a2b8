"""Prometheus metrics of one gateway process, served at ``GET /metrics``.

Each app gets its own ``CollectorRegistry`` (no module-level state), so tests and several apps in
one process don't mix their counts.

Every label takes its values from a set the gateway knows, never from what a client sent: each
distinct value is a time series of its own, so a client naming a new channel in every request
would otherwise grow ``/metrics`` (and the memory behind it) without bound. Channels are the
built-in ones and those of the registry's projects; any other is counted as ``_other``, which
no channel can be named (names start with a letter or a digit). Routes, outcomes and statuses
are the code's own, and are held to their sets all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from voxloop_core import BUILTIN_CHANNELS

from ..privacy.scrub import TYPES as PII_TYPES

__all__ = ["CONTENT_TYPE_LATEST", "OTHER", "Metrics"]

#: The label value of whatever is outside a label's known set.
OTHER: Final = "_other"
ROUTES: Final = frozenset(
    {
        "events",
        "stats",
        "rating",
        "responses",
        "response",
        "respondents",
        "erasures",
        "privacy",
        "exports",
        "followups",
        "followup",
        "rules",
        "alert_rules",
        "webhooks",
        "audit",
    }
)
OUTCOMES: Final = frozenset({"accepted", "duplicate", "rejected"})
#: The most commit times kept waiting for their histogram: at that many they are added at once.
WAITING_TIMES: Final = 4096
#: The label of every hit of an operator's own pattern: their names are many and the
#: operators', so they share one series.
CUSTOM_PII: Final = "custom"


class Metrics:
    """Requests, events per channel and outcome, commit latency and queue depth."""

    def __init__(
        self,
        queue_depth: Callable[[], float],
        channels: Callable[[], Collection[str]] = lambda: BUILTIN_CHANNELS,
    ) -> None:
        """``queue_depth`` says how many records wait; ``channels``, the channels known now."""
        self._channels = channels
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "voxloop_requests",
            "HTTP requests answered, by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.events = Counter(
            "voxloop_events",
            "Events by channel and outcome (accepted, duplicate, rejected)",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "voxloop_commit_seconds",
            "Time from handing events to a store until their commit",
            ["channel"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.pii_scrubbed = Counter(
            "voxloop_pii_scrubbed",
            "Personal data replaced in comments before they were stored, by type (never values)",
            ["type"],
            registry=self.registry,
        )
        depth = Gauge(
            "voxloop_queue_depth", "Records waiting for commit, all stores", registry=self.registry
        )
        depth.set_function(queue_depth)
        # Counted here, and added to the series when they are read (:meth:`render`): a labelled
        # series costs a lookup under a lock to find, and a lock to count, which the ingest path
        # would pay several times a request. Commit times wait in a list, bounded by
        # ``WAITING_TIMES``.
        self._counts: dict[tuple[Counter, tuple[str, ...]], float] = {}
        self._times: list[tuple[str, float]] = []

    def _count(self, amount: float, metric: Counter, *labels: str) -> None:
        key = (metric, labels)
        self._counts[key] = self._counts.get(key, 0) + amount

    def request(self, route: str, status: int) -> None:
        """Count one answered request of ``route`` with ``status``."""
        route = route if route in ROUTES else OTHER
        code = str(status) if 100 <= status <= 599 else OTHER
        self._count(1, self.requests, route, code)

    def outcome(self, channel: str, outcome: str, count: int) -> None:
        """Count ``count`` events of ``channel`` as accepted, duplicate or rejected."""
        if count:
            outcome = outcome if outcome in OUTCOMES else OTHER
            self._count(count, self.events, self.channel(channel), outcome)

    def commit(self, channel: str, seconds: float) -> None:
        """Record how long a store of ``channel`` took to commit a write."""
        self._times.append((self.channel(channel), seconds))
        if len(self._times) >= WAITING_TIMES:
            self._fold()

    def scrubbed(self, counts: Mapping[str, int]) -> None:
        """Count the hits a scrubber replaced: ``email``, ``phone``, ``card``, ``iban``, and
        ``custom`` for every operator's pattern."""
        for kind, count in counts.items():
            label = kind if kind in PII_TYPES else CUSTOM_PII
            self._count(count, self.pii_scrubbed, label)

    def channel(self, channel: str) -> str:
        """``channel`` as a label: itself if the gateway knows it, else ``_other``."""
        return channel if channel in self._channels() else OTHER

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        self._fold()
        return generate_latest(self.registry)

    def _fold(self) -> None:
        """Add what was counted since the last call to the series."""
        counts, self._counts = self._counts, {}
        times, self._times = self._times, []
        for (metric, labels), amount in counts.items():
            metric.labels(*labels).inc(amount)
        for channel, seconds in times:
            self.commit_seconds.labels(channel).observe(seconds)
