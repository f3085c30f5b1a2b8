"""Erasure at the gateway: a respondent's answers on web, app and email, erased, and every stats
series checked against a recount of what was sent and not erased; a kill in mid-erasure.

The recount is the test's own: from the events it posted and the clicks it made, with the
vote rule written out here (in a vote group, the latest answer counts; ties by id), never from
what the gateway says. Runs on SQLite files and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import voxloop_core
from voxloop import new_id
from voxloop.email import rating_links
from voxloop_core import DAY_MS, HOUR_MS
from voxloop_gateway import Settings, migrate
from voxloop_gateway.control.registry import Registry
from voxloop_gateway.privacy import erasure
from voxloop_gateway.privacy.erasure import Receipt
from voxloop_gateway.service import Service
from voxloop_gateway.stores import Selection

from ..gateway.conftest import (
    ORIGIN,
    Command,
    Gateway,
    Spawn,
    command,  # noqa: F401  (fixtures of the gateway tests, used here)
    make_project,
    spawn,  # noqa: F401
    start_gateway,
)
from ..gateway.readers import database

NOW_MS = int(time.time() * 1000)
FAST = {"key_rate": 1e6, "key_burst": 1e6, "address_rate": 1e6, "address_burst": 1e6}
METRICS = ("nps", "csat")
FORMS = ("checkout", "search")
PEOPLE = ("ana", "bo", "cy")


@contextlib.contextmanager
def shop(tmp_path: Path, backend: str, **settings: Any) -> Iterator[tuple[Gateway, bytes]]:
    """A gateway of project ``shop`` on ``backend``, and the secret of its email links."""
    with shop_on(tmp_path, backend, **settings) as (running, secret, _):
        yield running, secret


@contextlib.contextmanager
def shop_on(tmp_path: Path, backend: str, **settings: Any) -> Iterator[tuple[Gateway, bytes, str]]:
    """:func:`shop`, and the store it is on (``sqlite`` or a PostgreSQL URL)."""
    with database(backend) as store:
        if store != "sqlite":
            migrate.migrate(Settings(store=store, data_dir=tmp_path))
        registry = Registry(tmp_path, store)
        try:
            registry.create_project("shop", ["kiosk"])
            site, _ = registry.create_key("shop", "site", ["web", "app"], [ORIGIN])
            server, _ = registry.create_key("shop", "server")
            secret = registry.create_email_secret("shop").secret
        finally:
            registry.close()
        running = start_gateway(tmp_path, site, server, store=store, **FAST, **settings)
        try:
            yield running, secret, store
        finally:
            running.stop()


def answers(rng: random.Random) -> list[dict[str, Any]]:
    """Web and app answers of three people and of nobody, with vote changes: each person's
    own, and two groups shared by ana and bo (ana's counts in one, bo's in the other)."""
    made: list[dict[str, Any]] = []
    for i in range(160):
        metric = METRICS[i % 2]
        low, high = voxloop_core.METRIC_RANGES[metric]
        event: dict[str, Any] = {
            "id": new_id(),
            "channel": ("web", "app")[i % 2 if i % 3 else 1 - i % 2],
            "form": FORMS[(i // 2) % 2],
            "metric": metric,
            "score": rng.randint(low, high),
            "ts": NOW_MS - rng.randint(1, 6 * DAY_MS),
        }
        person = (*PEOPLE, None)[i % 4]
        if person is not None:
            event["respondent"] = person
        if i % 5 == 0:
            event["comment"] = f"answer {i}"
        made.append(event)
    for channel in ("web", "app"):
        for person in PEOPLE:  # each changes their answer twice
            for step, score in enumerate((1, 6, 10)):
                made.append(
                    {
                        "id": new_id(),
                        "channel": channel,
                        "form": "checkout",
                        "metric": "nps",
                        "score": score,
                        "respondent": person,
                        "vote_key": f"{channel}-order-{person}",
                        "comment": f"{person} changed to {score}",
                        "ts": NOW_MS - 2 * DAY_MS + step * 3_600_000,
                    }
                )
        for n, order in enumerate((("bo", "ana"), ("ana", "bo"))):  # the later one counts
            for step, person in enumerate(order):
                made.append(
                    {
                        "id": new_id(),
                        "channel": channel,
                        "form": "search",
                        "metric": "nps",
                        "score": 0 if person == "ana" else 8,
                        "respondent": person,
                        "vote_key": f"{channel}-shared-{n}",
                        "ts": NOW_MS - DAY_MS + step * 60_000,
                    }
                )
    return made


def click(client: httpx.Client, url: str, base: str) -> None:
    """Vote through an email rating link: its page, then the page's confirmation."""
    path = url.removeprefix(base)
    page = client.get(path)
    deadline = time.monotonic() + 10  # a new secret reaches a gateway on PostgreSQL in a second
    while page.status_code == 403 and time.monotonic() < deadline:
        time.sleep(0.1)
        page = client.get(path)
    assert page.status_code == 200, page.text
    view = page.text.split('data-view="', 1)[1].split('"', 1)[0]
    assert client.post(path, json={"view": view}).status_code == 200


def email_votes(gateway: Gateway, secret: bytes) -> list[dict[str, Any]]:
    """ana votes 3 and then 9, bo 7 and cy 10 by email; the votes as the recount sees them
    (``ts``: when the click was made, in the same hour as its answer is stored)."""
    while HOUR_MS - time.time() * 1000 % HOUR_MS < 30_000:  # no hour boundary in between
        time.sleep(1)
    made: list[dict[str, Any]] = []
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        for n, (person, score) in enumerate((("ana", 3), ("bo", 7), ("cy", 10), ("ana", 9))):
            links = rating_links(
                gateway.url,
                secret,
                project="shop",
                campaign="2026-11-nps",
                form="checkout",
                metric="nps",
                recipient=person,
            )
            chosen = next(link for link in links if link.score == score)
            click(client, chosen.url, gateway.url)
            made.append(
                {
                    "id": f"click-{n}",
                    "channel": "email",
                    "form": "checkout",
                    "metric": "nps",
                    "score": score,
                    "respondent": person,
                    "vote_key": f"email-{person}",
                    "ts": int(time.time() * 1000),
                }
            )
            time.sleep(0.05)  # clicks far enough apart to be in order
    return made


def counted(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answers that count: each without a vote key, and the latest of each vote group."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    alone = []
    for event in events:
        if "vote_key" not in event:
            alone.append(event)
            continue
        group = (event["channel"], event["form"], event["vote_key"])
        best = groups.get(group)
        if best is None or (event["ts"], event["id"]) > (best["ts"], best["id"]):
            groups[group] = event
    return alone + list(groups.values())


def recount(
    events: list[dict[str, Any]], metric: str, interval: str, channel: str | None, form: str | None
) -> tuple[list[int], dict[int, list[int]]]:
    """The total histogram and the non-empty buckets (by start) of the answers that count."""
    low, _ = voxloop_core.METRIC_RANGES[metric]
    total = voxloop_core.empty_histogram(metric)
    series: dict[int, list[int]] = {}
    step = HOUR_MS if interval == "hour" else DAY_MS
    for event in counted(events):
        if event["metric"] != metric or channel not in (None, event["channel"]):
            continue
        if form not in (None, event["form"]):
            continue
        total[event["score"] - low] += 1
        start = event["ts"] - event["ts"] % step
        series.setdefault(start, voxloop_core.empty_histogram(metric))[event["score"] - low] += 1
    return total, series


def check_every_series(gateway: Gateway, events: list[dict[str, Any]]) -> int:
    """Every stats series (metric, interval, channel or all, form or all) equals the recount;
    how many series were compared."""
    compared = 0
    for metric in METRICS:
        for interval in ("hour", "day"):
            for channel in (None, "web", "app", "email"):
                for form in (None, *FORMS):
                    params = {"metric": metric, "interval": interval}
                    params |= {"channel": channel} if channel else {}
                    params |= {"form": form} if form else {}
                    answer = gateway.stats(**params)
                    total, series = recount(events, metric, interval, channel, form)
                    where = f"{metric} by {interval}, channel {channel}, form {form}"
                    assert answer["total"]["histogram"] == total, where
                    shown = {
                        _ms(b["start"]): b["histogram"] for b in answer["series"] if b["count"]
                    }
                    assert shown == series, where
                    compared += 1
    return compared


def _ms(start: str) -> int:
    return int(datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp() * 1000)


def respondent(gateway: Gateway, who: str) -> dict[str, Any]:
    with gateway.client(gateway.server_key) as client:
        answer = client.get(f"/v1/respondents/{who}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_erased_respondent_leaves_every_series_equal_to_a_recount(
    tmp_path: Path, backend: str
) -> None:
    with shop(tmp_path, backend) as (gateway, secret):
        sent = answers(random.Random(15))
        random.Random(16).shuffle(sent)  # vote changes arrive in any order
        for start in range(0, len(sent), 50):
            answer = gateway.post(sent[start : start + 50])
            assert answer.status_code == 202 and not answer.json()["rejected"], answer.text
        clicked = email_votes(gateway, secret)
        everything = sent + clicked
        assert check_every_series(gateway, everything) == 2 * 2 * 4 * 3

        held = respondent(gateway, "ana")
        mine = [e for e in everything if e.get("respondent") == "ana"]
        assert len(held["responses"]) == len(mine)
        deadline = time.monotonic() + 30  # the rules read the stores in the background
        while not held["followups"] and time.monotonic() < deadline:
            time.sleep(0.2)
            held = respondent(gateway, "ana")
        assert held["followups"], "ana's detractor answers made no follow-up item"

        with gateway.client(gateway.server_key) as client:
            erased = client.delete("/v1/respondents/ana")
        assert erased.status_code == 200, erased.text
        receipt = erased.json()
        expected = Counter(e["channel"] for e in mine)
        assert {c: n for c, n in receipt["counts"].items() if n} == dict(expected)
        assert receipt["events"] == len(mine) and receipt["finished"] is not None
        assert receipt["scope"] == {"respondent": held["respondent"]}

        left = [e for e in everything if e.get("respondent") != "ana"]
        check_every_series(gateway, left)
        gone = respondent(gateway, "ana")
        assert gone["responses"] == [] and gone["followups"] == []
        assert len(respondent(gateway, "bo")["responses"]) == sum(
            e.get("respondent") == "bo" for e in everything
        )
        with gateway.client(gateway.server_key) as client:
            again = client.get(f"/v1/erasures/{receipt['id']}")
        assert again.status_code == 200 and again.json() == receipt

        # A late retry of an erased answer is refused by its tombstone: stats don't move.
        retried = gateway.post([e for e in mine if e["channel"] != "email"][:5])
        assert retried.status_code == 202, retried.text
        assert retried.json()["accepted"] == 0
        check_every_series(gateway, left)

        # Erasing again finds nothing: a new receipt of none.
        with gateway.client(gateway.server_key) as client:
            twice = client.delete("/v1/respondents/ana").json()
        assert twice["events"] == 0 and twice["id"] != receipt["id"]


def test_an_erasure_needs_privacy_edit_and_a_valid_body(tmp_path: Path) -> None:
    with shop(tmp_path, "sqlite") as (gateway, _):
        registry = Registry(tmp_path)
        try:
            read_key, _ = registry.create_key("shop", "read")
        finally:
            registry.close()
        with gateway.client(read_key) as client:
            refused = client.delete("/v1/respondents/ana")
            assert refused.status_code == 403, refused.text
            assert client.get("/v1/respondents/ana").status_code == 403
        with gateway.client(gateway.site_key) as client:
            assert client.delete("/v1/respondents/ana").status_code == 403
        with gateway.client() as client:
            assert client.delete("/v1/respondents/ana").status_code == 401
        with gateway.client(gateway.server_key) as client:
            for body, field in [
                ({}, "name what to erase"),
                ({"all": True, "form": "checkout"}, "all erases the whole project"),
                ({"form": "no spaces allowed"}, "form must be"),
                ({"from": "yesterday"}, "from must be an RFC 3339 time"),
                ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to must be"),
                ({"everything": True}, "unknown field 'everything'"),
                ({"all": 1}, "all must be true"),
            ]:
                answer = client.post("/v1/erasures", json=body)
                assert answer.status_code == 422, (body, answer.text)
                assert field in answer.json()["error"], answer.text
            assert client.get("/v1/erasures/era_nothing").status_code == 404
            assert client.delete("/v1/respondents/" + "x" * 129).status_code == 400


def test_erasure_by_form_time_range_and_whole_project(tmp_path: Path) -> None:
    with shop(tmp_path, "sqlite") as (gateway, _):
        sent = answers(random.Random(17))
        for start in range(0, len(sent), 50):
            assert gateway.post(sent[start : start + 50]).status_code == 202
        with gateway.client(gateway.server_key) as client:
            started = client.post("/v1/erasures", json={"form": "search"})
            assert started.status_code == 202, started.text
            receipt = _finished(client, started.json()["id"])
        left = [e for e in sent if e["form"] != "search"]
        assert receipt["events"] == len(sent) - len(left)
        check_every_series(gateway, left)

        start, end = NOW_MS - 4 * DAY_MS, NOW_MS - 2 * DAY_MS
        window = {"from": _rfc3339(start), "to": _rfc3339(end)}
        with gateway.client(gateway.server_key) as client:
            started = client.post("/v1/erasures", json=window)
            assert started.status_code == 202, started.text
            receipt = _finished(client, started.json()["id"])
        kept = [e for e in left if not start <= e["ts"] < end]
        assert receipt["events"] == len(left) - len(kept)
        check_every_series(gateway, kept)

        with gateway.client(gateway.server_key) as client:
            started = client.post("/v1/erasures", json={"all": True})
            receipt = _finished(client, started.json()["id"])
        assert receipt["events"] == len(kept)
        check_every_series(gateway, [])


def _finished(client: httpx.Client, erasure: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        found = client.get(f"/v1/erasures/{erasure}")
        assert found.status_code == 200, found.text
        body: dict[str, Any] = found.json()
        if body["finished"] is not None:
            return body
        assert time.monotonic() < deadline, "the erasure did not finish"
        time.sleep(0.1)


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


# --- a kill in mid-erasure ---------------------------------------------------------------------

BULK = 15_000
BULK_CHANNELS = ("web", "app", "kiosk")


async def _store_states(data_dir: Path, store: str) -> dict[str, tuple[int, int, bool]]:
    """Each store's bulk events, its other events, and whether its aggregates equal a scan."""
    service = Service(Settings(data_dir=data_dir, store=store))
    await service.connect()
    try:
        found = {}
        for channel in BULK_CHANNELS:
            opened = await service.store(channel)
            bulk = await opened.count("shop", Selection(form="bulk"))
            everything = await opened.count("shop", Selection())
            same = True
            for metric in METRICS:
                hourly = await opened.hourly("shop", metric)
                scanned = await opened.scan("shop", metric)
                same = same and {k: v for k, v in hourly.items() if any(v)} == scanned
            found[channel] = (bulk, everything - bulk, same)
        return found
    finally:
        await service.close()


def store_states(data_dir: Path, store: str) -> dict[str, tuple[int, int, bool]]:
    return asyncio.run(_store_states(data_dir, store))


async def _resume(data_dir: Path, store: str) -> list[Receipt]:
    """What the gateway's background work does with an erasure left unfinished (without the
    ten minutes it leaves one that may still be running); the receipts before and after."""
    service = Service(Settings(data_dir=data_dir, store=store))
    await service.connect()
    try:
        left = await erasure.unfinished(service.registry.db)
        assert await erasure.resume(service, int(time.time() * 1000), after_ms=0) == len(left)
        return [
            r for r in [await erasure.receipt(service.registry.db, "shop", x.id) for x in left] if r
        ]
    finally:
        await service.close()


def bulk_answers(rng: random.Random, channel: str, start: int) -> list[dict[str, Any]]:
    return [
        {
            "id": new_id(),
            "channel": channel,
            "form": "bulk",
            "metric": "csat",
            "score": rng.randint(1, 5),
            "respondent": f"person-{n % 50}",
            "ts": NOW_MS - rng.randint(1, 10 * DAY_MS),
            **({"vote_key": f"v-{n % 300}"} if n % 3 == 0 else {}),
        }
        for n in range(start, start + 1_000)
    ]


@pytest.mark.parametrize(
    ("backend", "finish"),
    [("sqlite", "rerun"), ("sqlite", "resume"), ("postgresql", "rerun")],
)
def test_a_killed_erasure_leaves_each_store_whole_and_is_finished_later(
    tmp_path: Path,
    backend: str,
    finish: str,
    spawn: Spawn,  # noqa: F811  (the gateway tests' fixture)
    command: Command,  # noqa: F811
) -> None:
    with shop_on(tmp_path, backend) as (gateway, _, store):
        rng = random.Random(18)
        others = answers(rng)
        for start in range(0, len(others), 100):
            assert gateway.post(others[start : start + 100]).status_code == 202
        for channel in BULK_CHANNELS:
            for start in range(0, BULK, 1_000):
                answer = gateway.post(bulk_answers(rng, channel, start))
                assert answer.status_code == 202 and not answer.json()["rejected"], answer.text
        before = store_states(tmp_path, store)
        assert all(bulk == BULK and same for bulk, _, same in before.values()), before

        # The gateway goes on serving while another process erases, and is killed.
        where = ("--store", store)
        process = spawn(
            tmp_path, *where, "erase", "shop", "--form", "bulk", "--yes", stdout=subprocess.PIPE
        )
        assert process.stdout is not None
        first = process.stdout.readline()  # the first store is erased: kill it in the next one
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        process.stdout.close()
        assert first.endswith("events erased\n"), first

        killed = store_states(tmp_path, store)
        for channel, (bulk, other, same) in killed.items():
            assert bulk in (0, BULK), f"{channel}: half an erasure ({bulk} left)"
            assert other == before[channel][1], f"{channel}: an erasure took other events"
            assert same, f"{channel}: the aggregates differ from a scan"
        assert any(bulk == 0 for bulk, _, _ in killed.values())
        assert any(bulk for bulk, _, _ in killed.values()), "the kill came after the last store"
        for metric in METRICS:  # what the gateway serves meanwhile is what its stores hold
            total = gateway.stats(metric=metric)["total"]["histogram"]
            assert total == _histogram(tmp_path, store, metric)

        if finish == "rerun":
            rerun = command(
                "--data-dir", str(tmp_path), *where, "erase", "shop", "--form", "bulk", "--yes"
            )
            assert rerun.returncode == 0, rerun.stderr
            assert "was left unfinished" in rerun.stdout
            receipts = [
                asyncio.run(_receipt(tmp_path, store, rerun.stdout.split("receipt ")[1].split()[0]))
            ]
        else:
            receipts = asyncio.run(_resume(tmp_path, store))
        assert len(receipts) == 1 and receipts[0].finished is not None
        assert set(receipts[0].counts) >= {c for c, (bulk, _, _) in killed.items() if bulk}
        finished = store_states(tmp_path, store)
        for channel, (bulk, other, same) in finished.items():
            assert (bulk, other, same) == (0, before[channel][1], True), channel
        for metric in METRICS:  # the stats are those of what was not erased
            total, _ = recount(others, metric, "day", None, None)
            assert gateway.stats(metric=metric)["total"]["histogram"] == total


def _histogram(data_dir: Path, store: str, metric: str) -> list[int]:
    """The scan of every counted event of ``metric`` over the stores, added up."""

    async def run() -> list[int]:
        service = Service(Settings(data_dir=data_dir, store=store))
        await service.connect()
        try:
            total = voxloop_core.empty_histogram(metric)
            for channel in ("web", "app", "email", "kiosk"):
                if await service.has_store(channel):
                    opened = await service.store(channel)
                    for counts in (await opened.scan("shop", metric)).values():
                        total = [a + b for a, b in zip(total, counts, strict=True)]
            return total
        finally:
            await service.close()

    return asyncio.run(run())


async def _receipt(data_dir: Path, store: str, erasure_id: str) -> Receipt:
    service = Service(Settings(data_dir=data_dir, store=store))
    await service.connect()
    try:
        found = await erasure.receipt(service.registry.db, "shop", erasure_id)
        assert found is not None
        return found
    finally:
        await service.close()


def test_erase_from_the_command_line_counts_asks_and_prints_the_receipt(
    tmp_path: Path,
    command: Command,  # noqa: F811  (the gateway tests' fixture)
) -> None:
    site, server = make_project(tmp_path)
    gateway = start_gateway(tmp_path, site, server, **FAST)
    try:
        sent = answers(random.Random(19))
        for start in range(0, len(sent), 100):
            assert gateway.post(sent[start : start + 100]).status_code == 202
    finally:
        gateway.stop()
    mine = Counter(e["channel"] for e in sent if e.get("respondent") == "bo")
    where = ("--data-dir", str(tmp_path))

    dry = command(*where, "erase", "shop", "--respondent", "bo", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would erase {sum(mine.values())} events; nothing changed" in dry.stdout
    assert [x.split() for x in dry.stdout.splitlines() if x.startswith("web")] == [
        ["web", str(mine["web"])]
    ]
    unasked = command(*where, "erase", "shop", "--respondent", "bo")
    assert unasked.returncode == 2 and "add --yes" in unasked.stderr
    both = command(*where, "erase", "shop", "--respondent", "bo", "--all", "--yes")
    assert both.returncode == 2 and "name what to erase" in both.stderr
    backwards = command(*where, "erase", "shop", "--from", "2026-02-01", "--to", "2026-01-01")
    assert backwards.returncode == 2 and "--to must be after --from" in backwards.stderr
    unknown = command(*where, "erase", "nope", "--all", "--yes")
    assert unknown.returncode == 2 and "no project 'nope'" in unknown.stderr

    done = command(*where, "erase", "shop", "--respondent", "bo", "--yes")
    assert done.returncode == 0, done.stderr
    assert f"web: {mine['web']} events erased" in done.stdout
    assert f"erased {sum(mine.values())} events; receipt era_" in done.stdout
    again = command(*where, "erase", "shop", "--respondent", "bo", "--dry-run")
    assert "would erase 0 events" in again.stdout
    with contextlib.closing(sqlite3.connect(tmp_path / "registry.sqlite3")) as db:
        audited = db.execute(
            "SELECT actor, detail FROM audit_log WHERE action = 'erasure'"
        ).fetchall()
    assert len(audited) == 1 and audited[0][0] == "cli:operator"
    assert json.loads(audited[0][1])["counts"]["web"] == mine["web"]
