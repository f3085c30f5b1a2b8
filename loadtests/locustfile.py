"""Locust load test of a running gateway: widget visitors, SDK backends, stats readers, and a gate.

Three actors, one ``FastHttpUser`` each, weighted as a site sees them:

- ``WidgetVisitor``: a page's widget; one rating a request with the site key and an allowed
  ``Origin``, sometimes as ``navigator.sendBeacon`` does it (``?key=`` instead of a header).
- ``SdkBackend``: a server flushing the SDK's queue; batches of 20-100 events on ``web`` or ``app``
  with the server key, and retries: a batch already answered 202 sent again with the same ids,
  which must come back as duplicates, and one that mixes known events with new ones.
- ``StatsReader``: a dashboard reading ``GET /v1/stats``, which must already count every event
  answered 202 before the read began.

Every request counts as failed unless it is answered 202 (200 for stats) with a body that says
what the contract says. Every event id answered 202 is recorded. When Locust quits, the gate
first sends again, with the same ids, the events whose request never got an answer (Locust stops
a user wherever it is, even mid-request), as the contract asks of any client; then it reads
``/v1/stats`` for every metric and channel of this run's forms and compares each histogram with
the distinct ids acknowledged. Any failed request, any mismatch, or no event acknowledged at all
makes Locust exit with status 1.

Run it against a gateway whose rate limits are raised for the load (``VOXLOOP_KEY_RATE``,
``VOXLOOP_KEY_BURST``, ``VOXLOOP_ADDRESS_RATE``, ``VOXLOOP_ADDRESS_BURST``), in one process (the
ledger of acknowledged ids lives in memory, so no ``--processes``, ``--master`` or ``--worker``)::

    VOXLOOP_SITE_KEY=pk_... VOXLOOP_SERVER_KEY=sk_... VOXLOOP_ORIGIN=https://shop.example \\
        locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8080 \\
        --run-time 30s --users 12 --spawn-rate 12

``python -m loadtests.loadtest`` (``make loadtest``) does all of it against a fresh local gateway.
Every event goes to forms named ``<prefix>.<touchpoint>``, the prefix unique per run
(``--form-prefix``, default ``load-<random>``), so the gate only sees this run's events.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from locust import LoadTestShape, between, events, task
from locust.argument_parser import LocustArgumentParser
from locust.contrib.fasthttp import FastHttpUser, ResponseContextManager
from locust.env import Environment
from locust.runners import MasterRunner, Runner, WorkerRunner
from locust.util.timespan import parse_timespan

log = logging.getLogger("voxloop.loadtest")

#: metric -> (lowest score, highest score), from the wire contract
METRICS: Final = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7), "likert": (1, 5), "thumbs": (0, 1)}
CHANNELS: Final = ("web", "app")
#: the touchpoints; the run's forms are ``<prefix>.<touchpoint>``
TOUCHPOINTS: Final = ("checkout", "onboarding", "support-ticket")
BATCH_SIZES: Final = (20, 100)
DEFAULT_SECONDS: Final = 20.0
DEFAULT_USERS: Final = 12
MIN_USERS: Final = 3
#: users get this long to finish the request in hand when the shape stops them
DEFAULT_STOP_TIMEOUT: Final = 10.0
COMMENTS: Final = (
    "Fast checkout, thanks!",
    "The delivery was late and nobody answered the phone.",
    "شكراً، الدفع كان سريعاً وسهلاً.",
    "خیلی ممنون، پرداخت سریع بود.",
    "Terima kasih, prosesnya cepat sekali.",
    "配送がとても速かったです。",
)

Event = dict[str, Any]
Combo = tuple[str, str, str]  # (metric, channel, form)


def uuid7(ms: int | None = None) -> str:
    """A UUIDv7 string, as the SDK and the widgets make event ids.

    Args:
        ms: the Unix time in milliseconds to stamp it with; now if None.

    Returns:
        48 bits of milliseconds, version 7, 12 random bits, variant ``10``, 62 random bits.
    """
    if ms is None:
        ms = time.time_ns() // 1_000_000
    rand = secrets.randbits(74)
    value = (
        (ms & (2**48 - 1)) << 80
        | 0x7 << 76
        | (rand >> 62) << 64
        | 0b10 << 62
        | (rand & (2**62 - 1))
    )
    return str(uuid.UUID(int=value))


def make_event(rng: random.Random, channel: str, form: str, metric: str) -> Event:
    """One event as a widget or the SDK sends it, with an id and a score in the metric's range."""
    low, high = METRICS[metric]
    event: Event = {
        "id": uuid7(),
        "channel": channel,
        "form": form,
        "metric": metric,
        "score": rng.randint(low, high),
    }
    if rng.random() < 0.3:
        event["comment"] = rng.choice(COMMENTS)
        event["locale"] = rng.choice(["en", "ar", "fa-IR", "id", "ja"])
    return event


@dataclass
class Ledger:
    """What this run sent and the gateway acknowledged: distinct event ids, by metric/channel/form.

    Attributes:
        acked: (metric, channel, form) -> event id -> score, for every event answered 202.
        pending: the events of each request begun and not answered for sure yet: in flight, cut
            off when Locust stopped its user, or answered with no answer, 408, 429 or 5xx. Their
            fate is unknown until they are sent again, as the contract asks of a client.
        unanswered: requests answered with no answer, 408, 429 or 5xx.
        retried, retries_confirmed: events sent again and answered; those answered as known.
    """

    acked: dict[Combo, dict[str, int]] = field(default_factory=dict)
    pending: dict[int, list[Event]] = field(default_factory=dict)
    unanswered: int = 0
    retried: int = 0
    retries_confirmed: int = 0
    _tokens: Iterator[int] = field(default_factory=itertools.count)

    def begin(self, sent: list[Event]) -> int:
        """Note ``sent`` as pending before its request; returns a token for ``answered``."""
        token = next(self._tokens)
        self.pending[token] = sent
        return token

    def answered(self, token: int, status: int) -> None:
        """Record the answer ``status`` (0: none) to the request ``token`` began."""
        if status == 202:
            self.ack(self.pending[token])
        if status in (0, 408, 429) or status >= 500:
            self.unanswered += 1
        else:
            del self.pending[token]

    def ack(self, sent: list[Event]) -> None:
        """Record ``sent`` as acknowledged (a 202 makes every non-rejected event durable)."""
        for event in sent:
            combo = (event["metric"], event["channel"], event["form"])
            self.acked.setdefault(combo, {})[event["id"]] = event["score"]

    def histogram(self, metric: str, channel: str, forms: tuple[str, ...]) -> list[int]:
        """The histogram ``/v1/stats`` must give for ``metric`` on ``channel`` over ``forms``."""
        low, high = METRICS[metric]
        counts = [0] * (high - low + 1)
        for form in forms:
            for score in self.acked.get((metric, channel, form), {}).values():
                counts[score - low] += 1
        return counts

    def count(self, metric: str, forms: tuple[str, ...]) -> int:
        """Distinct ids acknowledged for ``metric`` over ``forms``, on every channel."""
        return sum(len(self.acked.get((metric, c, f), ())) for c in CHANNELS for f in forms)

    @property
    def total(self) -> int:
        """Distinct ids acknowledged in all."""
        return sum(len(ids) for ids in self.acked.values())


@dataclass
class LoadRun:
    """This run's parameters (from the command line or ``VOXLOOP_*``) and its ledger."""

    site_key: str
    server_key: str
    origin: str
    forms: tuple[str, ...]
    summary_file: str | None
    ledger: Ledger = field(default_factory=Ledger)


_runs: dict[int, LoadRun] = {}


def current_run(environment: Environment) -> LoadRun:
    """The run set up for ``environment`` when Locust started."""
    return _runs[id(environment)]


@events.init_command_line_parser.add_listener
def _options(parser: LocustArgumentParser) -> None:
    parser.add_argument(
        "--site-key", env_var="VOXLOOP_SITE_KEY", default="", is_secret=True,
        help="site key (pk_...) that names the web channel",
    )  # fmt: skip
    parser.add_argument(
        "--server-key", env_var="VOXLOOP_SERVER_KEY", default="", is_secret=True,
        help="server key (sk_...) of the same project",
    )  # fmt: skip
    parser.add_argument(
        "--origin", env_var="VOXLOOP_ORIGIN", default="",
        help="an origin the site key allows, sent as Origin by the widget (default: the host)",
    )  # fmt: skip
    parser.add_argument(
        "--form-prefix", env_var="VOXLOOP_LOAD_FORM_PREFIX", default="",
        help="forms are <prefix>.<touchpoint>; unique per run (default load-<random>)",
    )  # fmt: skip
    parser.add_argument(
        "--summary-file", env_var="VOXLOOP_LOAD_SUMMARY", default="",
        help="write the run's figures and the gate's verdict there as JSON",
    )  # fmt: skip


@events.init.add_listener
def _setup(environment: Environment, runner: Runner | None = None, **_: Any) -> None:
    if isinstance(runner, MasterRunner | WorkerRunner):
        raise SystemExit("voxloop load test: one process only (no --processes, --master, --worker)")
    options = environment.parsed_options
    if options is None:  # used as a library, without a command line
        return
    missing = [n for n in ("site_key", "server_key") if not getattr(options, n)]
    if missing:
        flags = ", ".join(f"--{n.replace('_', '-')} (VOXLOOP_{n.upper()})" for n in missing)
        raise SystemExit(f"voxloop load test: {flags} required")
    prefix = options.form_prefix or f"load-{secrets.token_hex(4)}"
    if len(prefix) > 40 or not all(c.isalnum() or c in "._-" for c in prefix):
        raise SystemExit(f"voxloop load test: form prefix {prefix!r}: 1-40 of A-Z a-z 0-9 . _ -")
    if not environment.stop_timeout:
        # let a stopped user finish the request in hand: fewer events to send again at the end
        environment.stop_timeout = DEFAULT_STOP_TIMEOUT
    _runs[id(environment)] = LoadRun(
        site_key=options.site_key,
        server_key=options.server_key,
        origin=(options.origin or environment.host or "").rstrip("/"),
        forms=tuple(f"{prefix}.{t}" for t in TOUCHPOINTS),
        summary_file=options.summary_file or None,
    )
    log.info("voxloop load test: forms %s", ", ".join(_runs[id(environment)].forms))


class VoxloopUser(FastHttpUser):
    """Shared by every actor: the run's keys and forms, posting events and checking answers."""

    abstract = True
    network_timeout = 10.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        """Pick up the run's parameters and a random source of this user's own."""
        self.load_run = current_run(self.environment)
        self.rng = random.Random()

    def form(self) -> str:
        """One of this run's forms."""
        return self.rng.choice(self.load_run.forms)

    def post_events(
        self,
        sent: list[Event],
        *,
        key: str,
        name: str,
        known: int = 0,
        origin: bool = False,
        beacon: bool = False,
    ) -> bool:
        """POST ``sent`` to ``/v1/events``; a failure unless 202 with the counts expected.

        Args:
            sent: the events; the first ``known`` were acknowledged before (a retry).
            key: the key to send, as ``Authorization: Bearer`` or, for ``beacon``, as ``?key=``.
            name: the request's name in Locust's statistics.
            known: how many of ``sent`` must come back as duplicates.
            origin: send the run's ``Origin``, as a browser does.
            beacon: send the key in the query string, as ``navigator.sendBeacon`` must.

        Returns:
            Whether the answer was 202 with ``accepted``, ``duplicates`` and ``rejected`` right.
        """
        headers = {} if beacon else {"Authorization": f"Bearer {key}"}
        if origin:
            headers["Origin"] = self.load_run.origin
        path = f"/v1/events?key={urllib.parse.quote(key)}" if beacon else "/v1/events"
        ledger = self.load_run.ledger
        token = ledger.begin(sent)
        with self.client.post(
            path, json={"events": sent}, headers=headers, name=name, catch_response=True
        ) as response:
            ledger.answered(token, response.status_code)
            problem = _check_ingest(response, len(sent) - known, known)
            if problem is None:
                response.success()
            else:
                response.failure(problem)
        if known:
            ledger.retried += known
            ledger.retries_confirmed += known if problem is None else 0
        return problem is None


def _check_ingest(response: ResponseContextManager, accepted: int, duplicates: int) -> str | None:
    """What is wrong with an answer to ``POST /v1/events``, or None."""
    if response.status_code != 202:
        return f"{response.status_code or 'no answer'}: {excerpt(response)}"
    try:
        body = response.json()
        got = (body["accepted"], body["duplicates"], body["rejected"])
    except (ValueError, TypeError, KeyError):
        return f"202 with a body that is not the contract's: {excerpt(response)}"
    if got != (accepted, duplicates, []):
        return f"expected accepted={accepted} duplicates={duplicates} rejected=[], got {body}"
    return None


def excerpt(response: ResponseContextManager) -> str:
    error = getattr(response, "error", None)  # set when there was no answer, or a failed one
    if error is not None and not response.status_code:
        return repr(error)
    return (response.text or "")[:200]


class WidgetVisitor(VoxloopUser):
    """A visitor answering a page's widget: one rating a request, with the site key."""

    weight = 6
    wait_time = between(0.02, 0.2)

    def rate(self, metric: str, *, beacon: bool = False) -> None:
        """Send one rating from the web channel, from an allowed origin."""
        event = make_event(self.rng, "web", self.form(), metric)
        name = "/v1/events?key=[site key]" if beacon else "/v1/events [widget]"
        self.post_events([event], key=self.load_run.site_key, name=name, origin=True, beacon=beacon)

    @task(6)
    def nps(self) -> None:
        """The usual NPS question."""
        self.rate("nps")

    @task(3)
    def csat(self) -> None:
        """A satisfaction rating after support."""
        self.rate("csat")

    @task(1)
    def thumbs_on_leave(self) -> None:
        """A thumbs vote sent as the page unloads, by ``navigator.sendBeacon``."""
        self.rate("thumbs", beacon=True)


class SdkBackend(VoxloopUser):
    """A server using the SDK: batches on ``web`` or ``app`` with the server key, and retries."""

    weight = 3
    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        """Start with no batch to retry; keep the last few acknowledged ones."""
        super().on_start()
        self.acked_batches: deque[list[Event]] = deque(maxlen=8)

    def new_events(self, count: int) -> list[Event]:
        """``count`` new events, as one flush of the SDK's queue holds them."""
        channel = self.rng.choice(CHANNELS)
        return [
            make_event(self.rng, channel, self.form(), self.rng.choice(list(METRICS)))
            for _ in range(count)
        ]

    def send(self, batch: list[Event], name: str, known: int = 0) -> bool:
        """Send ``batch``; remember it for a retry once it is acknowledged as expected."""
        ok = self.post_events(batch, key=self.load_run.server_key, name=name, known=known)
        if ok and not known:
            self.acked_batches.append(batch)
        return ok

    @task(6)
    def flush(self) -> None:
        """A batch of new events."""
        self.send(self.new_events(self.rng.randint(*BATCH_SIZES)), "/v1/events [sdk batch]")

    @task(2)
    def retry(self) -> None:
        """A batch sent again whose 202 was lost on the way: every event is a duplicate."""
        if not self.acked_batches:
            return self.flush()
        batch = self.rng.choice(self.acked_batches)
        self.send(batch, "/v1/events [sdk retry]", known=len(batch))

    @task(1)
    def retry_with_new(self) -> None:
        """Part of an acknowledged batch again, with new events behind it in the same request."""
        if not self.acked_batches:
            return self.flush()
        old = self.rng.choice(self.acked_batches)
        old = old[: self.rng.randint(1, len(old))]
        batch = old + self.new_events(self.rng.randint(1, BATCH_SIZES[0]))
        self.send(batch, "/v1/events [sdk retry+new]", known=len(old))


class StatsReader(VoxloopUser):
    """A dashboard reading ``/v1/stats`` over this run's forms, with the server key."""

    fixed_count = 1
    wait_time = between(0.2, 0.5)

    def read(self, metric: str, interval: str | None) -> None:
        """Read a metric's stats; a failure unless 200 and at least what was acknowledged."""
        params = [("metric", metric)] + [("form", f) for f in self.load_run.forms]
        name = "/v1/stats?metric=[metric]&form=[run forms]"
        if interval:
            params.append(("interval", interval))
            name += "&interval=hour"
        floor = self.load_run.ledger.count(metric, self.load_run.forms)
        with self.client.get(
            f"/v1/stats?{urllib.parse.urlencode(params)}",
            headers={"Authorization": f"Bearer {self.load_run.server_key}"},
            name=name,
            catch_response=True,
        ) as response:
            problem = _check_stats(response, metric, floor)
            if problem is None:
                response.success()
            else:
                response.failure(problem)

    @task(3)
    def total(self) -> None:
        """The headline figure of one metric."""
        self.read(self.rng.choice(list(METRICS)), None)

    @task(1)
    def hourly(self) -> None:
        """A metric's hourly series, which must add up to its total."""
        self.read(self.rng.choice(list(METRICS)), "hour")


def _check_stats(response: ResponseContextManager, metric: str, floor: int) -> str | None:
    """What is wrong with an answer to ``GET /v1/stats``, or None."""
    if response.status_code != 200:
        return f"{response.status_code or 'no answer'}: {excerpt(response)}"
    try:
        body = response.json()
        count, histogram = body["total"]["count"], body["total"]["histogram"]
        series = body.get("series")
    except (ValueError, TypeError, KeyError):
        return f"200 with a body that is not the contract's: {excerpt(response)}"
    low, high = METRICS[metric]
    if body.get("metric") != metric or len(histogram) != high - low + 1:
        return f"asked for {metric}, got metric={body.get('metric')!r} histogram={histogram}"
    if count != sum(histogram):
        return f"total count {count} is not the sum of its histogram {histogram}"
    if count < floor:
        return f"{metric}: counts {count} events, {floor} were acknowledged before the read"
    if series is not None and sum(b["count"] for b in series) != count:
        return f"{metric}: the hourly series does not add up to the total {count}"
    return None


class Ramp(LoadTestShape):
    """Half the users for the first quarter, all of them until 85%, half again, then stop.

    Reads ``--run-time`` (default 20 s), ``--users`` and ``--spawn-rate`` (Locust's headless
    defaults are 1 and 1: pass both); never fewer than 3 users, one of each actor. The run always
    ends by itself.
    """

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        """The users wanted now, or None when the run is over."""
        options = self.runner.environment.parsed_options if self.runner else None
        seconds, users, rate = DEFAULT_SECONDS, DEFAULT_USERS, 0.0
        if options is not None:
            run_time = options.run_time
            if isinstance(run_time, str):
                run_time = parse_timespan(run_time)
            seconds = float(run_time or DEFAULT_SECONDS)
            users = options.num_users or DEFAULT_USERS
            rate = float(options.spawn_rate or 0)
        users = max(users, MIN_USERS)
        rate = rate or float(users)
        now = self.get_run_time()
        if now >= seconds:
            return None
        if seconds * 0.25 <= now < seconds * 0.85:
            return users, rate
        return max(MIN_USERS, users // 2), rate


def _call(run: LoadRun, host: str, path: str, body: object = None) -> Any:
    """One request with the server key outside Locust's statistics; its JSON answer.

    A 429 or 503 is tried again after its ``Retry-After`` (at most 5 s, 4 tries in all).

    Raises:
        OSError: no answer, or an answer other than 200 or 202 (``urllib.error.HTTPError``).
        ValueError: an answer that is not JSON.
    """
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{host.rstrip('/')}{path}",
        data=data,
        headers={"Authorization": f"Bearer {run.server_key}", "Content-Type": "application/json"},
    )
    for attempt in range(4):
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            if exc.code not in (429, 503) or attempt == 3:
                raise
            time.sleep(min(float(exc.headers.get("Retry-After") or 1), 5))
    raise AssertionError("unreachable")


def settle(run: LoadRun, host: str) -> tuple[int, list[str]]:
    """Send the pending events again with the same ids, as a client must when it got no answer.

    Events that reached the store before their request was cut off come back as duplicates, the
    others are accepted now; either way they are acknowledged after this, and counted once.

    Returns:
        How many events were sent again, and one line per batch that was not answered 202 with
        every event accepted or known.
    """
    unique = {e["id"]: e for batch in run.ledger.pending.values() for e in batch}
    pending = list(unique.values())
    problems: list[str] = []
    for start in range(0, len(pending), 1000):
        chunk = pending[start : start + 1000]
        try:
            body = _call(run, host, "/v1/events", {"events": chunk})
            answered = body["accepted"] + body["duplicates"]
            rejected = body["rejected"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"sending {len(chunk)} pending events again failed: {exc}")
            continue
        if answered != len(chunk) or rejected:
            problems.append(f"{len(chunk)} pending events sent again, answered {body}")
        run.ledger.ack(chunk)
    run.ledger.pending.clear()
    return len(pending), problems


def reconcile(run: LoadRun, host: str) -> tuple[list[str], int]:
    """Compare ``/v1/stats`` with what was acknowledged, for every metric and channel.

    Returns:
        One line per mismatch (empty when every histogram equals the ledger's), and the number
        of (metric, channel) histograms compared; it stops at the first read that fails.
    """
    problems: list[str] = []
    compared = 0
    for metric in METRICS:
        for channel in CHANNELS:
            expected = run.ledger.histogram(metric, channel, run.forms)
            params = [("metric", metric), ("channel", channel)] + [("form", f) for f in run.forms]
            try:
                body = _call(run, host, f"/v1/stats?{urllib.parse.urlencode(params)}")
                got = body["total"]["histogram"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                problems.append(f"{metric}/{channel}: could not read stats ({exc}); gave up")
                return problems, compared
            compared += 1
            if got != expected:
                problems.append(
                    f"{metric}/{channel}: stats count {sum(got)} {got},"
                    f" acknowledged {sum(expected)} distinct ids {expected}"
                )
    return problems, compared


@dataclass
class Verdict:
    """What the gate found: why the run fails (nothing when it passes), and its figures."""

    reasons: list[str]
    settled: int
    compared: int
    mismatches: list[str]


@events.quitting.add_listener
def gate(environment: Environment, **_: Any) -> None:
    """The pass/fail gate: exit status 1 on any failed request or any stats mismatch.

    A variant of this suite with a gate of its own removes this one
    (``events.quitting.remove_listener(locustfile.gate)``).
    """
    run = _runs.get(id(environment))
    runner = environment.runner
    if run is None or runner is None:
        return
    host = environment.host or ""
    total = runner.stats.total
    reasons: list[str] = []
    if total.num_failures:
        reasons.append(f"{total.num_failures} of {total.num_requests} requests failed")
    if runner.exceptions:
        reasons.append(f"{len(runner.exceptions)} kinds of errors raised in the users")
    settled, problems = settle(run, host)
    reasons += problems
    if not run.ledger.total:
        reasons.append("no event was acknowledged")
    mismatches, compared = reconcile(run, host)
    reasons += mismatches
    for reason in reasons:
        log.error("voxloop gate: %s", reason)
    if reasons:
        environment.process_exit_code = 1
    else:
        log.info(
            "voxloop gate: pass: %d requests, %d events acked, stats equal them (%d compared)",
            total.num_requests,
            run.ledger.total,
            compared,
        )
    if run.summary_file:
        _write_summary(environment, run, Verdict(reasons, settled, compared, mismatches))


def _write_summary(environment: Environment, run: LoadRun, verdict: Verdict) -> None:
    assert environment.runner is not None
    stats = environment.runner.stats
    total = stats.total
    summary = {
        "ok": not verdict.reasons,
        "reasons": verdict.reasons,
        "forms": list(run.forms),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "requests_per_s": round(total.total_rps, 1),
        "p50_ms": total.get_response_time_percentile(0.5),
        "p95_ms": total.get_response_time_percentile(0.95),
        "p99_ms": total.get_response_time_percentile(0.99),
        "by_name": [
            [f"{method} {name}", entry.num_requests, entry.num_failures]
            for (name, method), entry in sorted(stats.entries.items())
        ],
        "events_acked": run.ledger.total,
        "retried_events": run.ledger.retried,
        "retries_confirmed": run.ledger.retries_confirmed,
        "unanswered_requests": run.ledger.unanswered,
        "settled_events": verdict.settled,
        "stats_histograms": len(METRICS) * len(CHANNELS),
        "stats_compared": verdict.compared,
        "stats_ok": not verdict.mismatches and verdict.compared > 0,
        "stats_mismatches": verdict.mismatches,
    }
    with open(run.summary_file or "", "w", encoding="utf-8") as out:
        json.dump(summary, out, indent=2, ensure_ascii=False)
