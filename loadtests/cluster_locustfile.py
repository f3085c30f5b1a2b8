"""The Locust suite of ``locustfile.py`` as clients of a cluster see it: retries, and a record.

``python -m loadtests.cluster`` runs this file through nginx in front of several gateway replicas
and kills one of them mid-run. The actors, their weights, the ramp, the ledger of acknowledged
ids, the final re-send of unanswered events (``settle``) and the stats comparison (``reconcile``)
are ``locustfile.py``'s own, imported. What differs is what a client of a cluster does and what
the run must prove:

- A client retries, with the same ids, a request answered 503, 502 or 504 (nginx found no
  replica to answer), 429, or not answered at all, as the SDK does: up to ``MAX_TRIES`` times
  with a short backoff, ``Retry-After`` as a floor. Any other answer is final.
- A 202 is right when every event is accepted or already known, none rejected, and at least the
  events sent before are known. More duplicates than that on a first try means nginx re-sent the
  request to another replica after the first one had committed it and died before answering:
  correct (ingest is idempotent by id), and recorded as a replay with its time.
- Every request is recorded with its end time and outcome (Locust's ``request`` event), every
  id sent is recorded, and at the end the gate writes it all to ``VOXLOOP_CLUSTER_RECORD`` as
  JSON. It does not judge failures: ``loadtests/cluster.py`` does, against the time of the kill,
  the stores and ``/v1/stats``. The gate's own exit status is 1 only when the final re-send or
  the stats comparison failed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from locust import events
from locust.contrib.fasthttp import ResponseContextManager
from locust.env import Environment

from loadtests import locustfile as base
from loadtests.locustfile import Ramp  # noqa: F401  (the same ramp; Locust finds it here)

log = logging.getLogger("voxloop.cluster")

#: tries of one request in all, the first included
MAX_TRIES: Final = 6
#: the longest pause between two tries, whatever ``Retry-After`` says
MAX_BACKOFF_S: Final = 2.0
#: answers a client sends again (the SDK's rule: no answer, 408, 429, 5xx); 500 is left out on
#: purpose: the gateway never answers it, so one must fail the run rather than be papered over
RETRIED: Final = frozenset({0, 408, 429, 502, 503, 504})


@dataclass
class Record:
    """Everything the cluster check needs, beyond the ledger: what was sent, and when what failed.

    Attributes:
        sent: every event id sent, first tries and retries alike.
        outcomes: (end time, name, status, problem or "") of every request that failed.
        replays: (end time, duplicates beyond those expected) of first tries that nginx re-sent.
        per_second: epoch second -> [requests answered as expected, requests failed].
        retry_tries: tries it took, 0-based -> POSTs answered as expected at that try.
        gave_up: POSTs still unanswered after ``MAX_TRIES``, left to the gate's final re-send.
    """

    sent: set[str] = field(default_factory=set)
    outcomes: list[tuple[float, str, int, str]] = field(default_factory=list)
    replays: list[tuple[float, int]] = field(default_factory=list)
    per_second: dict[int, list[int]] = field(default_factory=dict)
    retry_tries: Counter[int] = field(default_factory=Counter)
    gave_up: int = 0


_records: dict[int, Record] = {}


def current_record(environment: Environment) -> Record:
    """The record of ``environment``'s run, made on first use."""
    return _records.setdefault(id(environment), Record())


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response: Any,
    exception: BaseException | None,
    start_time: float,
    context: dict[str, Any],
    **_: Any,
) -> None:
    environment = context.get("environment")
    if environment is None:
        return
    record = current_record(environment)
    end = start_time + (response_time or 0.0) / 1000
    tally = record.per_second.setdefault(int(end), [0, 0])
    if exception is None:
        tally[0] += 1
        return
    tally[1] += 1
    status = int(getattr(response, "status_code", 0) or 0)
    record.outcomes.append((end, f"{request_type} {name}", status, str(exception)[:300]))


class FailoverClient(base.VoxloopUser):
    """A ``VoxloopUser`` that sends a request again, with the same ids, while it may succeed."""

    abstract = True

    def context(self) -> dict[str, Any]:
        """Tag each request with its environment, for the ``request`` listener."""
        return {"environment": self.environment}

    def post_events(
        self,
        sent: list[base.Event],
        *,
        key: str,
        name: str,
        known: int = 0,
        origin: bool = False,
        beacon: bool = False,
    ) -> bool:
        """POST ``sent`` until it is answered 202 as expected, or finally; see the module doc.

        Args:
            sent: the events; the first ``known`` were acknowledged before (a retry).
            key: the key to send, as ``Authorization: Bearer`` or, for ``beacon``, as ``?key=``.
            name: the request's name in Locust's statistics (tries after the first: ``(retry)``).
            known: how many of ``sent`` must at least come back as duplicates.
            origin: send the run's ``Origin``, as a browser does.
            beacon: send the key in the query string, as ``navigator.sendBeacon`` must.

        Returns:
            Whether a try was answered 202 with every event accepted or known.
        """
        headers = {} if beacon else {"Authorization": f"Bearer {key}"}
        if origin:
            headers["Origin"] = self.load_run.origin
        path = f"/v1/events?key={urllib.parse.quote(key)}" if beacon else "/v1/events"
        ledger = self.load_run.ledger
        record = current_record(self.environment)
        record.sent.update(event["id"] for event in sent)
        tokens: list[int] = []
        for attempt in range(MAX_TRIES):
            token = ledger.begin(sent)
            tokens.append(token)
            label = name if attempt == 0 else f"{name} (retry)"
            with self.client.post(
                path, json={"events": sent}, headers=headers, name=label, catch_response=True
            ) as response:
                ledger.answered(token, response.status_code)
                problem, extra = _check_ingest(response, len(sent), known)
                if problem is None:
                    response.success()
                else:
                    response.failure(problem)
            if problem is None:
                for earlier in tokens:  # their events are acknowledged now: nothing to settle
                    ledger.pending.pop(earlier, None)
                if extra and attempt == 0:
                    record.replays.append((time.time(), extra))
                record.retry_tries[attempt] += 1
                if known:
                    ledger.retried += known
                    ledger.retries_confirmed += known
                return True
            if response.status_code not in RETRIED:
                return False
            time.sleep(_backoff(attempt, response))  # gevent's sleep: Locust patched time
        record.gave_up += 1
        return False  # still pending in the ledger: the gate's settle sends them again


def _backoff(attempt: int, response: ResponseContextManager) -> float:
    """Exponential from 50 ms with full jitter, ``Retry-After`` as a floor, at most 2 s."""
    wait = random.uniform(0, 0.05 * 2**attempt)
    retry_after = response.headers.get("Retry-After") if response.headers else None
    try:
        wait = max(wait, float(str(retry_after or 0)))
    except ValueError:
        pass
    return min(wait, MAX_BACKOFF_S)


def _check_ingest(
    response: ResponseContextManager, count: int, known: int
) -> tuple[str | None, int]:
    """What is wrong with an answer to ``POST /v1/events`` in a cluster (or None), and the
    duplicates beyond the ``known`` expected (events a replica committed before it died)."""
    if response.status_code != 202:
        return f"{response.status_code or 'no answer'}: {base.excerpt(response)}", 0
    try:
        body = response.json()
        accepted, duplicates, rejected = body["accepted"], body["duplicates"], body["rejected"]
    except (ValueError, TypeError, KeyError):
        return f"202 with a body that is not the contract's: {base.excerpt(response)}", 0
    if accepted + duplicates != count or duplicates < known or rejected:
        return f"sent {count} events ({known} known before), answered {body}", 0
    return None, duplicates - known


class WidgetVisitor(FailoverClient, base.WidgetVisitor):
    """``locustfile.WidgetVisitor``, retrying as a client of a cluster."""


class SdkBackend(FailoverClient, base.SdkBackend):
    """``locustfile.SdkBackend``, retrying as the SDK does against a cluster."""


class StatsReader(FailoverClient, base.StatsReader):
    """``locustfile.StatsReader``; a failed read is simply read again at its next turn."""


# Failed requests are judged by the cluster check against the time of the kill, not here.
events.quitting.remove_listener(base.gate)


@events.quitting.add_listener
def _gate(environment: Environment, **_: Any) -> None:
    """Send the unanswered events again, compare the stats, and write the record."""
    runner = environment.runner
    try:
        run = base.current_run(environment)
    except KeyError:  # Locust quit before the run was set up
        return
    if runner is None:
        return
    host = environment.host or ""
    record = current_record(environment)
    pending = sum(len(batch) for batch in run.ledger.pending.values())
    settled, problems = base.settle(run, host)
    mismatches, compared = base.reconcile(run, host)
    for reason in problems + mismatches:
        log.error("voxloop cluster gate: %s", reason)
    environment.process_exit_code = 1 if problems or mismatches or not compared else 0
    path = os.environ.get("VOXLOOP_CLUSTER_RECORD")
    if not path:
        return
    total = runner.stats.total
    document = {
        "forms": list(run.forms),
        "metrics": base.METRICS,
        "channels": list(base.CHANNELS),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "p50_ms": total.get_response_time_percentile(0.5),
        "p99_ms": total.get_response_time_percentile(0.99),
        "exceptions": [str(e.get("msg", e))[:300] for e in runner.exceptions.values()],
        "acked": {"|".join(combo): ids for combo, ids in run.ledger.acked.items()},
        "sent": sorted(record.sent),
        "outcomes": record.outcomes,
        "replays": record.replays,
        "per_second": record.per_second,
        "tries_to_success": dict(record.retry_tries),
        "gave_up": record.gave_up,
        "max_tries": MAX_TRIES,
        "pending_at_end": pending,
        "settled": settled,
        "settle_problems": problems,
        "stats_compared": compared,
        "stats_mismatches": mismatches,
    }
    with open(path, "w", encoding="utf-8") as out:
        json.dump(document, out)
