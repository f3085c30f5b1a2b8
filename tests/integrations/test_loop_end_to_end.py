"""The loop end to end, with whole gateway processes: a receiver's outage, a SIGKILL in the
middle of deliveries, two replicas on PostgreSQL, and a vote change that closes its item.

Each gateway is ``voxloop-gateway serve`` as a process of its own, its background workers doing
what they do in production (every 0.5 s); webhook endpoints are added with the CLI before it
starts; the receiver is a real HTTP server on loopback, and every request it gets is verified
with the official ``standardwebhooks`` package. What a test expects is read from the stores and
the control plane, never assumed: every event acknowledged with 202 is told once (at least once
across a crash, repeats carrying the same id and body), and a breach fires once whichever
replica sees it first.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from tests.followups.conftest import PASSWORD
from tests.gateway.conftest import Command, Spawn, command, make_project, spawn
from tests.gateway.pg import pg_url
from voxloop_gateway.control import tables
from voxloop_gateway.control.people import People
from voxloop_gateway.control.registry import Registry

from .processes import (
    ControlPlane,
    Poster,
    add_endpoint,
    eventually,
    make_shop,
    rating,
    resting_receiver,
    serve,
    stored_ids,
    verified,
)
from .receivers import Receiver, always, receiver

__all__ = ["command", "pg_url", "receiver", "resting_receiver", "spawn"]  # fixtures

_D = tables.webhook_deliveries
_A = tables.webhook_attempts
_O = tables.outbox
_F = tables.followups
_C = tables.followup_changes


def outbox_ids(control: ControlPlane, *event_types: str) -> set[str]:
    return {row.id for row in control.rows(_O, _O.c.event_type.in_(event_types))}


def unfinished(control: ControlPlane) -> int:
    """Deliveries not yet delivered (pending, or given up: none should be)."""
    return control.count(_D, _D.c.state != "delivered")


def test_a_receiver_down_for_a_while_gets_every_message_with_its_original_id(
    tmp_path: Path, spawn: Spawn, command: Command, resting_receiver: Receiver
) -> None:
    receiver = resting_receiver  # down: nothing listens on its port until it starts
    data = tmp_path / "data"
    server_key = make_shop(data)
    secret = add_endpoint(command, data, receiver.url, "response.created")
    gateway = serve(spawn, data, server_key, log=tmp_path / "gateway.log")
    posted = [rating(n % 11, channel=("web", "app")[n % 2]) for n in range(20)]
    gateway.accept(posted)
    down_since = time.monotonic()
    with ControlPlane(data) as control:
        refused = _A.c.status.is_(None)

        def each_refused() -> bool:
            tried = {row.message for row in control.rows(_A, refused)}
            return gateway.alive() and len(tried) == len(posted)

        eventually(each_refused, 15, lambda: f"attempts so far: {len(control.rows(_A))}")
        time.sleep(max(0.0, 3.0 - (time.monotonic() - down_since)))  # down for 3 s at least
        assert receiver.received() == []
        receiver.start()  # back, on the same port
        # The retries come within their backoff's ceiling: 20 s after a third failure.
        eventually(
            lambda: gateway.alive() and unfinished(control) == 0,
            60,
            lambda: f"{unfinished(control)} deliveries left; {gateway.tail()}",
        )
        messages = outbox_ids(control, "response.created")
        attempts = control.rows(_A)
    got = verified(receiver, secret)
    assert set(got) == messages and len(messages) == len(posted)
    assert sorted(p["data"]["id"] for p in got.values()) == sorted(e["id"] for e in posted)
    assert all(p["type"] == "response.created" for p in got.values())
    for message in messages:
        tried = sorted((a.id, a.status) for a in attempts if a.message == message)
        # Refused while the receiver was down, then delivered: every try under the one id.
        assert len(tried) >= 2 and tried[0][1] is None and tried[-1][1] == 200, tried
        assert all(status is None for _, status in tried[:-1]), tried


def test_a_gateway_killed_mid_delivery_loses_none_and_repeats_only_same_ids(
    tmp_path: Path, spawn: Spawn, command: Command, receiver: Receiver
) -> None:
    receiver.answer = always(200, delay_s=0.3)  # slow: deliveries stay in flight a while
    data = tmp_path / "data"
    server_key = make_shop(data)
    secret = add_endpoint(command, data, receiver.url, "response.created")
    first = serve(spawn, data, server_key, log=tmp_path / "gateway.log")
    poster = Poster(first).start()
    try:
        eventually(
            lambda: first.alive() and len(receiver.received()) >= 10,
            20,
            lambda: f"{len(receiver.received())} requests received; {first.tail()}",
        )
        # The latest request arrived under 300 ms ago: its answer is still to come.
        first.kill()
    finally:
        poster.stop()
    before_kill = set(receiver.ids())  # all the killed gateway sent (it sends no more)
    assert poster.acked, "no batch was acknowledged before the kill"
    kept = stored_ids(data)
    assert set(poster.acked) <= kept  # every 202 survived the kill
    again = serve(spawn, data, server_key, log=tmp_path / "gateway.log")
    with ControlPlane(data) as control:

        def all_told() -> bool:
            told = {p["data"]["id"] for p in verified(receiver, secret).values()}
            return again.alive() and told == kept and unfinished(control) == 0

        eventually(
            all_told,
            40,
            lambda: f"{len(set(receiver.ids()))} of {len(kept)} told; {again.tail()}",
        )
        messages = outbox_ids(control, "response.created")
    got = verified(receiver, secret)
    assert len(messages) == len(kept)  # one message per stored event, made once
    assert set(got) == messages
    assert sorted(p["data"]["id"] for p in got.values()) == sorted(kept)
    repeated = {m for m, n in Counter(receiver.ids()).items() if n > 1}
    # Those in flight at the kill came again after it, with their id and body; no others.
    assert repeated, "no delivery was in flight at the kill: it proved nothing"
    assert repeated <= before_kill
    assert len(receiver.ids()) > len(before_kill)  # the restarted gateway delivered the rest


def test_two_replicas_on_postgresql_deliver_each_message_and_fire_each_breach_once(
    pg_url: str, tmp_path: Path, spawn: Spawn, command: Command, receiver: Receiver
) -> None:
    # pg_url first: its database is dropped after the replicas are stopped, not under them.
    data = tmp_path / "data"
    migrated = command("--data-dir", str(data), "--store", pg_url, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    server_key = make_shop(data, pg_url)
    secret = add_endpoint(
        command, data, receiver.url, "response.created", "followup.breached", store=pg_url
    )
    replicas = [
        serve(
            spawn,
            data / f"r{n}",
            server_key,
            store=pg_url,
            log=tmp_path / f"r{n}.log",
            ready=False,
        )
        for n in range(2)
    ]
    for replica in replicas:
        replica.ready()
    events: list[dict[str, Any]] = []
    for n in range(4):  # batches of 5, to each replica in turn
        batch = [rating(9, channel=("web", "app")[k % 2]) for k in range(5)]
        for k in range(0, 5, 3):  # 8 NPS 2 with a comment: the default rule makes their items
            batch[k].update(score=2, comment=f"Late again ({n}.{k})")
        replicas[n % 2].accept(batch)
        events += batch
    detractors = sum(1 for e in events if e["score"] == 2)
    with ControlPlane(data, pg_url) as control:

        def settled(items: int) -> bool:
            return (
                all(r.alive() for r in replicas)
                and control.count(_F) == items
                and unfinished(control) == 0
                and control.count(_D)
                == len(events) + control.count(_F, _F.c.breached_ms.is_not(None))
            )

        eventually(
            lambda: settled(detractors),
            30,
            lambda: f"{control.count(_F)} items, {unfinished(control)} deliveries left",
        )
        # Their time is up: both replicas' scans find them due at once.
        control.execute(update(_F).values(due_ms=int(time.time() * 1000) - 1000))
        eventually(
            lambda: settled(detractors) and control.count(_F, _F.c.breached_ms.is_(None)) == 0,
            30,
            lambda: f"{control.count(_F, _F.c.breached_ms.is_(None))} items not breached yet",
        )
        time.sleep(1.0)  # two more rounds of both replicas: a second breach would show now
        items = {row.id for row in control.rows(_F)}
        breaches = Counter(row.followup for row in control.rows(_C, _C.c.kind == "breached"))
        messages = outbox_ids(control, "response.created", "followup.breached")
        assert unfinished(control) == 0
    assert breaches == Counter(items)  # one 'breached' change per item
    got = verified(receiver, secret)
    assert Counter(receiver.ids()) == Counter(messages)  # each message delivered exactly once
    created = sorted(p["data"]["id"] for p in got.values() if p["type"] == "response.created")
    assert created == sorted(e["id"] for e in events)
    breached = Counter(p["data"]["id"] for p in got.values() if p["type"] == "followup.breached")
    assert breached == Counter(items)
    assert all(
        p["data"]["breached"] is not None for p in got.values() if p["type"] == "followup.breached"
    )


OWNER = "olga@example.com"


def owner_session(data_dir: Path) -> tuple[str, str]:
    """An owner's session in ``data_dir``'s control plane: (cookie token, CSRF token)."""
    registry = Registry(data_dir)
    try:
        people = People(registry.db)
        people.create_user(OWNER, ["owner"], PASSWORD)
        token, session = asyncio.run(people.login(OWNER, PASSWORD, "127.0.0.1"))
    finally:
        registry.close()
    return token, session.csrf


def test_a_vote_change_closes_its_item_and_never_makes_a_second(
    tmp_path: Path, spawn: Spawn
) -> None:
    data = tmp_path / "data"
    _, server_key = make_project(data)
    token, csrf = owner_session(data)
    gateway = serve(spawn, data, server_key, log=tmp_path / "gateway.log")
    inbox = httpx.Client(
        base_url=gateway.url,
        cookies={"voxloop_session": token},
        headers={"X-CSRF-Token": csrf},
        timeout=10,
    )

    def items() -> list[dict[str, Any]]:
        answer = inbox.get("/v1/followups")
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["followups"]
        return found

    def once(check: Any) -> dict[str, Any]:
        """The one item, once ``check(item)`` holds of it."""
        eventually(
            lambda: gateway.alive() and len(now := items()) == 1 and check(now[0]),
            15,
            lambda: f"items: {items()}; {gateway.tail()}",
        )
        (item,) = items()
        return item

    with inbox:
        start = int(time.time() * 1000)
        vote = {"vote_key": "order-7", "respondent": "customer-7"}
        first = rating(2, comment="Nobody called back", ts=start - 60_000, **vote)
        gateway.accept([first])
        made = once(lambda i: True)
        assert (made["status"], made["score"], made["excerpt"]) == ("new", 2, "Nobody called back")
        assert made["rule"] == "rule_default_shop"

        gateway.accept([rating(9, ts=start - 30_000, **vote)])  # they changed their mind
        closed = once(lambda i: i["status"] == "closed")
        assert closed["id"] == made["id"] and closed["score"] == 9
        assert "changed to 9 (nps)" in closed["resolution"]
        assert closed["ref"] != made["ref"]  # it shows the vote that counts now

        back = rating(3, comment="Still waiting", ts=start - 10_000, **vote)
        gateway.accept([back])  # back within the rule's range: the same item again
        reopened = once(lambda i: i["status"] == "new")
        assert (reopened["id"], reopened["score"], reopened["excerpt"]) == (
            made["id"],
            3,
            "Still waiting",
        )
        detail = inbox.get(f"/v1/followups/{made['id']}")
        assert detail.status_code == 200, detail.text
        changes = [(c["actor"], c["kind"], c["detail"].get("to")) for c in detail.json()["changes"]]
        assert changes == [
            (None, "created", None),
            (None, "response", None),
            (None, "status", "closed"),
            (None, "response", None),
            (None, "status", "new"),
        ]
