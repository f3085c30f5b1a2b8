"""Follow-up items in a real control plane (a SQLite file, a PostgreSQL database): made by the
feed's rules from stored responses given as plain values, one per response across its vote
changes; worked through the status machine by people, every change recorded with who and when
and told to the outbox; per-response alerts fired once a day."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from voxloop_gateway.control import tables
from voxloop_gateway.control.people import People
from voxloop_gateway.errors import ApiError
from voxloop_gateway.followups import items, rules
from voxloop_gateway.followups.items import Edit, FollowupItem
from voxloop_gateway.followups.rules import Rule, RuleFields
from voxloop_gateway.reading.formats import item as response_item
from voxloop_gateway.reading.formats import ref_of, rfc3339

from .conftest import HOUR_MS, NOW_MS, SHOP_CHANNELS, Control, response, seen

DAY_MS = 24 * HOUR_MS


def add_rule(control: Control, rule_id: str, project: str = "shop", **given: Any) -> Rule:
    fields = rules.check_rule(
        msgspec.convert({"name": rule_id, **given}, RuleFields), SHOP_CHANNELS
    )
    made = Rule(**msgspec.structs.asdict(fields), id=rule_id, project=project, created_ms=NOW_MS)

    async def write(conn: AsyncConnection) -> None:
        await rules.insert_rule(conn, made)

    control.run(write, write=True)
    return made


def edit(
    control: Control, item_id: str, who: str, now_ms: int = NOW_MS, **asked: Any
) -> FollowupItem:
    async def write(conn: AsyncConnection) -> FollowupItem:
        row = await items.read_row(conn, item_id, lock=True)
        return await items.edit(conn, row, Edit(**asked), control.users[who], now_ms)

    return control.run(write, write=True)


def note(control: Control, item_id: str, who: str, text: str, now_ms: int = NOW_MS) -> FollowupItem:
    async def write(conn: AsyncConnection) -> FollowupItem:
        row = await items.read_row(conn, item_id, lock=True)
        return await items.add_note(conn, row, text, control.users[who], now_ms)

    return control.run(write, write=True)


def only_item(control: Control) -> Any:
    found = control.items()
    assert len(found) == 1, found
    return found[0]


def test_a_detractor_makes_one_item_under_the_default_rule(control: Control) -> None:
    detractor = response(comment="Late again <b>twice</b>")
    assert control.take(seen(detractor)) == 1
    item = only_item(control)
    assert (item.project, item.channel, item.form) == ("shop", "web", "checkout")
    assert (item.subject, item.ref) == (detractor.key.hex(), ref_of(detractor))
    assert (item.status, item.assignee, item.rule) == ("new", None, "rule_default_shop")
    assert (item.created_ms, item.due_ms) == (NOW_MS, NOW_MS + 48 * HOUR_MS)
    assert item.excerpt == "Late again <b>twice</b>" and item.first_action_ms is None
    stored = control.rows(tables.rules)
    assert [(r.id, r.project, r.low, r.has_comment, r.sla_hours) for r in stored] == [
        ("rule_default_shop", "shop", True, True, 48)
    ]
    # The messages: the response as the read API shows it, then the item as /v1/followups.
    created = control.messages("response.created")
    assert len(created) == 1 and created[0]["type"] == "response.created"
    assert created[0]["data"] == {
        **msgspec.to_builtins(response_item(detractor)),
        "project": "shop",
    }
    followup = control.messages("followup.created")
    assert [m["data"]["id"] for m in followup] == [item.id]
    assert followup[0]["data"]["due"] == rfc3339(NOW_MS + 48 * HOUR_MS)
    assert followup[0]["data"]["status"] == "new" and followup[0]["data"]["assignee"] is None
    history = control.changes(item.id)
    assert [(c.kind, c.actor, c.at_ms) for c in history] == [("created", None, NOW_MS)]
    # Seen again (a batch read twice would be): still one item, nothing changed.
    control.take(seen(detractor), now_ms=NOW_MS + 1000)
    assert only_item(control).updated_ms == NOW_MS
    assert len(control.messages("followup.created")) == 1
    assert control.messages("followup.updated") == []


def test_what_no_rule_matches_makes_no_item(control: Control) -> None:
    promoter = response(score=9, comment="Great")
    silent = response(score=2, comment=None)
    assert control.take(seen(promoter), seen(silent)) == 0
    assert control.items() == []
    assert len(control.messages("response.created")) == 2


def test_a_project_with_rules_gets_no_default(control: Control) -> None:
    add_rule(control, "rule_off", enabled=False, low=True)
    control.take(seen(response(score=0)))
    assert control.items() == []
    assert [r.id for r in control.rows(tables.rules)] == ["rule_off"]
    control.take(seen(response(score=0), project="other"))
    assert sorted(r.id for r in control.rows(tables.rules)) == ["rule_default_other", "rule_off"]
    assert only_item(control).project == "other"


def vote(score: int, step: int, **fields: Any) -> Any:
    """Vote ``step`` of the vote group ``order-1``."""
    return response(
        score=score,
        vote_key="order-1",
        ts_ms=NOW_MS + step * 1000,
        received_ms=NOW_MS + step * 1000,
        revised=step > 0,
        **fields,
    )


def test_one_item_per_response_across_vote_changes(control: Control) -> None:
    first = vote(3, 0)
    control.take(seen(first))
    item = only_item(control)
    assert item.subject == "order-1"
    # Changed to another low score: the same item shows it.
    second = vote(5, 1, comment="Still slow")
    replaced = msgspec.structs.replace(first, counted=False, revised=True)
    control.take(seen(second, change=True), seen(second, event=replaced), now_ms=NOW_MS + 10)
    updated = only_item(control)
    assert (updated.id, updated.ref, updated.score) == (item.id, ref_of(second), 5)
    assert (updated.excerpt, updated.status, updated.updated_ms) == (
        "Still slow",
        "new",
        NOW_MS + 10,
    )
    # The replaced vote, read in the same batch, is told of as it is stored now.
    told = sorted(m["type"] for m in control.messages() if m["type"].startswith("response."))
    assert told == ["response.created", "response.created", "response.updated"]
    assert control.messages("response.updated")[0]["data"]["score"] == 5
    # Changed to a promoter's score: no rule matches, the gateway closes the item.
    third = vote(9, 2, comment="Sorted, thanks")
    control.take(seen(third, change=True), now_ms=NOW_MS + 20)
    closed = only_item(control)
    assert (closed.id, closed.status, closed.score, closed.closed_ms) == (
        item.id,
        "closed",
        9,
        NOW_MS + 20,
    )
    assert closed.resolution == (
        "Closed by the gateway: the answer changed to 9 (nps), which no rule matches."
    )
    assert closed.excerpt == "Still slow"  # as it was when last matched
    # Back to a detractor's score: the gateway reopens the item it closed, due anew.
    fourth = vote(1, 3, comment="Broken again")
    control.take(seen(fourth, change=True), now_ms=NOW_MS + 30)
    again = only_item(control)
    assert (again.id, again.status, again.resolution, again.closed_ms) == (
        item.id,
        "new",
        None,
        None,
    )
    assert (again.score, again.due_ms) == (1, NOW_MS + 30 + 48 * HOUR_MS)
    kinds = [(c.kind, c.actor) for c in control.changes(item.id)]
    assert kinds == [
        ("created", None),
        ("response", None),
        ("response", None),
        ("status", None),
        ("response", None),
        ("status", None),
    ]
    statuses = [json.loads(c.detail) for c in control.changes(item.id) if c.kind == "status"]
    assert [(s["from"], s["to"]) for s in statuses] == [("new", "closed"), ("closed", "new")]
    updates = control.messages("followup.updated")
    assert [m["data"]["status"] for m in updates] == ["new", "closed", "new"]


def test_an_item_a_person_resolved_stays_resolved(control: Control) -> None:
    control.take(seen(vote(3, 0)))
    item = only_item(control)
    edit(control, item.id, "owner", status="in_progress")
    edit(control, item.id, "owner", status="resolved", resolution="Called them, refunded")
    control.take(seen(vote(10, 1), change=True), now_ms=NOW_MS + 50)
    after = only_item(control)
    assert (after.status, after.resolution, after.score) == (
        "resolved",
        "Called them, refunded",
        10,
    )
    control.take(seen(vote(0, 2), change=True), now_ms=NOW_MS + 60)
    assert only_item(control).status == "resolved"
    assert len(control.items()) == 1


def test_a_group_without_a_counted_vote_closes_its_item(control: Control) -> None:
    first = vote(2, 0)
    control.take(seen(first))
    scanned = vote(7, 1, held="quarantined", counted=False)
    control.take(seen(None, event=scanned), now_ms=NOW_MS + 5)
    closed = only_item(control)
    assert closed.status == "closed"
    assert closed.resolution == "Closed by the gateway: no vote of this response counts any more."
    # A held vote changes no answer: no response message for it.
    assert [m["type"] for m in control.messages() if m["type"].startswith("response.")] == [
        "response.created"
    ]


def test_a_comment_added_later_can_make_an_item(control: Control) -> None:
    silent = response(score=1, comment=None)
    control.take(seen(silent))
    assert control.items() == []
    said = msgspec.structs.replace(silent, comment="Nobody answered my ticket")
    control.take(seen(said, revision=True), now_ms=NOW_MS + 100)
    item = only_item(control)
    assert (item.ref, item.excerpt, item.created_ms) == (
        ref_of(said),
        "Nobody answered my ticket",
        NOW_MS + 100,
    )
    assert [m["data"]["comment"] for m in control.messages("response.updated")] == [
        "Nobody answered my ticket"
    ]


TRANSITIONS = [
    ("new", "in_progress", True),
    ("new", "closed", True),
    ("new", "resolved", False),
    ("new", "assigned", False),  # needs an assignee
    ("assigned", "in_progress", True),
    ("assigned", "closed", True),
    ("assigned", "resolved", False),
    ("assigned", "new", False),  # unassign instead
    ("in_progress", "resolved", True),
    ("in_progress", "closed", True),
    ("in_progress", "assigned", True),
    ("in_progress", "new", False),
    ("resolved", "in_progress", True),
    ("resolved", "closed", False),
    ("resolved", "new", False),
    ("closed", "in_progress", True),
    ("closed", "resolved", False),
    ("closed", "assigned", False),
]
#: How an item is brought to each state, from new.
PATHS: dict[str, list[dict[str, Any]]] = {
    "new": [],
    "assigned": [{"assignee": "olga@example.com"}],
    "in_progress": [{"assignee": "olga@example.com"}, {"status": "in_progress"}],
    "resolved": [{"status": "in_progress"}, {"status": "resolved", "resolution": "done"}],
    "closed": [{"status": "closed", "resolution": "spam"}],
}


@pytest.mark.parametrize(
    ("start", "wanted", "legal"),
    TRANSITIONS,
    ids=[f"{a}-to-{b}" for a, b, _ in TRANSITIONS],
)
def test_status_transitions(control: Control, start: str, wanted: str, legal: bool) -> None:
    control.take(seen(response()))
    item_id = only_item(control).id
    for step in PATHS[start]:
        edit(control, item_id, "owner", **step)
    assert only_item(control).status == start
    asked: dict[str, Any] = {"status": wanted}
    if wanted in items.ENDED:
        asked["resolution"] = "Answered by phone"
    if not legal:
        with pytest.raises(ApiError) as refused:
            edit(control, item_id, "owner", **asked)
        assert refused.value.status == 409
        assert refused.value.message.startswith("status: ")
        if wanted != "assigned" or start != "new":
            assert "allowed next: " + ", ".join(items.NEXT[start]) in refused.value.message
        assert only_item(control).status == start
        return
    changed = edit(control, item_id, "owner", now_ms=NOW_MS + 500, **asked)
    assert changed.status == wanted
    if wanted in items.ENDED:
        assert (changed.resolution, changed.closed) == ("Answered by phone", rfc3339(NOW_MS + 500))
    else:
        assert (changed.resolution, changed.closed) == (None, None)


def test_assigning_moves_new_and_assigned_and_checks_the_person(control: Control) -> None:
    control.take(seen(response(channel="app")), seen(response(channel="web")))
    app_item, web_item = sorted(control.items(), key=lambda row: row.channel)
    assigned = edit(control, app_item.id, "owner", assignee="ANA@example.com")
    assert assigned.status == "assigned"
    assert assigned.assignee == items.Person(control.users["ana"], "ana@example.com")
    by_id = edit(control, app_item.id, "owner", assignee=control.users["vera"])
    assert by_id.assignee is not None and by_id.assignee.email == "vera@example.com"
    assert edit(control, app_item.id, "owner", assignee=None).status == "new"
    refusals = [
        (web_item.id, "ana@example.com", "can't see the follow-up inbox"),  # app only
        (app_item.id, "nils@example.com", "can't see the follow-up inbox"),  # no inbox
        (app_item.id, "nobody@example.com", "is not an active user"),
        (app_item.id, "0123456789abcdef", "is not an active user"),
    ]
    for item_id, who, said in refusals:
        with pytest.raises(ApiError) as refused:
            edit(control, item_id, "owner", assignee=who)
        assert refused.value.status == 422 and refused.value.message.startswith("assignee")
        assert said in refused.value.message


def test_resolution_rules(control: Control) -> None:
    control.take(seen(response()))
    item_id = only_item(control).id
    edit(control, item_id, "owner", status="in_progress")
    for asked, said in [
        ({"status": "resolved"}, "resolution is required"),
        ({"status": "resolved", "resolution": "   "}, "resolution must be"),
        ({"resolution": "done"}, "resolution: only an item"),
    ]:
        with pytest.raises(ApiError) as refused:
            edit(control, item_id, "owner", **asked)
        assert refused.value.status == 422 and said in refused.value.message
    edit(control, item_id, "owner", status="resolved", resolution="Refunded")
    edit(control, item_id, "owner", resolution="Refunded twice")  # the note may be corrected
    assert only_item(control).resolution == "Refunded twice"
    reopened = edit(control, item_id, "owner", status="in_progress")
    assert (reopened.status, reopened.resolution, reopened.closed) == ("in_progress", None, None)


def test_every_change_is_recorded_with_who_and_when(control: Control) -> None:
    control.take(seen(response(channel="app")))
    item_id = only_item(control).id
    ana, owner = control.users["ana"], control.users["owner"]
    edit(control, item_id, "owner", now_ms=NOW_MS + 1000, assignee="ana@example.com")
    note(control, item_id, "ana", "Called, no answer", now_ms=NOW_MS + 2000)
    edit(control, item_id, "ana", now_ms=NOW_MS + 3000, tags=["billing", " billing", "vip"])
    edit(control, item_id, "ana", now_ms=NOW_MS + 4000, status="in_progress")
    edit(control, item_id, "ana", now_ms=NOW_MS + 5000, status="resolved", resolution="Refunded")
    unchanged = edit(control, item_id, "ana", now_ms=NOW_MS + 6000, tags=["billing", "vip"])
    assert unchanged.updated == rfc3339(NOW_MS + 5000)  # the same tags change nothing
    item = only_item(control)
    assert (item.first_action_ms, item.updated_ms) == (NOW_MS + 1000, NOW_MS + 5000)
    assert json.loads(item.tags) == ["billing", "vip"]
    found = [(c.at_ms, c.actor, c.kind, json.loads(c.detail)) for c in control.changes(item_id)]
    assert found == [
        (NOW_MS, None, "created", {"rule": "rule_default_shop", "ref": item.ref, "score": 3}),
        (NOW_MS + 1000, owner, "assignee", {"from": None, "to": ana}),
        (NOW_MS + 1000, owner, "status", {"from": "new", "to": "assigned"}),
        (NOW_MS + 2000, ana, "note", {"text": "Called, no answer"}),
        (NOW_MS + 3000, ana, "tags", {"from": [], "to": ["billing", "vip"]}),
        (NOW_MS + 4000, ana, "status", {"from": "assigned", "to": "in_progress"}),
        (
            NOW_MS + 5000,
            ana,
            "status",
            {"from": "in_progress", "to": "resolved", "resolution": "Refunded"},
        ),
    ]

    async def read(conn: AsyncConnection) -> list[items.Change]:
        return await items.changes(conn, item_id)

    shown = control.run(read)
    assert shown[1].actor == items.Person(owner, "olga@example.com")
    assert shown[0].actor is None and shown[3].at == rfc3339(NOW_MS + 2000)
    updates = control.messages("followup.updated")
    assert len(updates) == 5  # one per change made, none for the one that changed nothing
    assert updates[-1]["data"]["status"] == "resolved"
    assert updates[-1]["data"]["first_action"] == rfc3339(NOW_MS + 1000)


def test_tags_and_notes_are_checked(control: Control) -> None:
    control.take(seen(response()))
    item_id = only_item(control).id
    for tags in (["x" * 65], [f"t{n}" for n in range(17)], [""]):
        with pytest.raises(ApiError) as refused:
            edit(control, item_id, "owner", tags=tags)
        assert refused.value.status == 422 and refused.value.message.startswith("tags")
    for text in ("", "  ", "x" * 5001):
        with pytest.raises(ApiError) as refused:
            note(control, item_id, "owner", text)
        assert refused.value.status == 422 and refused.value.message.startswith("text")
    assert only_item(control).first_action_ms is None  # nothing was done


def test_an_alert_rule_fires_once_per_response_and_day(control: Control) -> None:
    add_rule(
        control,
        "rule_refunds",
        kind="alert",
        words=["refund"],
        escalate_to=control.users["ana"],
    )
    add_rule(
        control,
        "rule_lead",
        kind="alert",
        metrics=["nps"],
        score_max=1,
        escalate_to="Lead@Example.com",
    )
    angry = response(score=0, comment="Refund me <now> & fast")
    control.take(seen(angry))
    control.take(seen(angry), now_ms=NOW_MS + HOUR_MS)  # the same response, the same day
    fired = control.messages("alert.fired")
    assert sorted(m["data"]["rule"] for m in fired) == ["rule_lead", "rule_refunds"]
    one = next(m["data"] for m in fired if m["data"]["rule"] == "rule_refunds")
    assert one["kind"] == "response" and one["project"] == "shop"
    assert one["period_start"] == rfc3339(NOW_MS - NOW_MS % DAY_MS)
    assert one["response"]["ref"] == ref_of(angry)
    emails = control.rows(tables.email_outbox, order=tables.email_outbox.c.recipient)
    assert [e.recipient for e in emails] == ["ana@example.com", "lead@example.com"]
    assert "Refund me <now> & fast" in emails[0].text
    assert "Refund me &lt;now&gt; &amp; fast" in emails[0].html
    assert "https://cx.example.com/app/shop/responses/" + ref_of(angry) in emails[0].text
    assert control.items() == []  # alert rules make no items, and the project has rules
    control.take(seen(angry), now_ms=NOW_MS + DAY_MS)  # the next day: once more
    assert len(control.messages("alert.fired")) == 4
    assert len(control.rows(tables.alerts_fired)) == 4


def test_an_alert_rule_without_a_recipient_only_tells_the_webhooks(control: Control) -> None:
    add_rule(control, "rule_quiet", kind="alert", low=True)
    add_rule(control, "rule_gone", kind="alert", low=True, escalate_to=control.users["nils"])
    People(control.db).disable_user("nils@example.com")  # gone since: nobody to email
    control.take(seen(response()))
    assert len(control.messages("alert.fired")) == 2
    assert control.rows(tables.email_outbox) == []


def take_batch(control: Control, *given: Any, fail: bool) -> None:
    """Take ``given`` in one transaction that fails at its end when ``fail``."""
    from voxloop_gateway.followups import feed

    async def work(conn: AsyncConnection) -> None:
        await feed.take(conn, given, NOW_MS, "https://cx.example.com")
        if fail:
            raise RuntimeError("the gateway died here")

    if fail:
        with pytest.raises(RuntimeError):
            control.run(work, write=True)
    else:
        control.run(work, write=True)


def test_a_batch_that_fails_leaves_nothing_behind(control: Control) -> None:
    batch = [seen(response()), seen(response(channel="app"))]
    take_batch(control, *batch, fail=True)
    assert control.items() == [] and control.messages() == [] and control.rows(tables.rules) == []
    take_batch(control, *batch, fail=False)
    assert len(control.items()) == 2
    assert len(control.messages("followup.created")) == 2


def test_list_items_by_view(control: Control) -> None:
    for n, channel in enumerate(("app", "web", "app")):
        control.take(seen(response(channel=channel)), now_ms=NOW_MS + n)
    first, second, third = control.items()
    edit(control, first.id, "owner", assignee="ana@example.com")
    edit(control, second.id, "owner", status="closed", resolution="spam")

    def listed(view: items.View, channels: Any = None, **more: Any) -> list[str]:
        async def read(conn: AsyncConnection) -> list[str]:
            found = await items.list_items(
                conn,
                "shop",
                {c: None for c in SHOP_CHANNELS} if channels is None else channels,
                view=view,
                me=more.get("me"),
                statuses=more.get("statuses"),
                after=more.get("after"),
                limit=more.get("limit", 50),
                now_ms=more.get("now_ms", NOW_MS),
            )
            return [i.id for i in found]

        return control.run(read)

    newest_first = [
        i.id for i in sorted(control.items(), key=lambda r: (r.created_ms, r.id), reverse=True)
    ]
    assert listed("all") == newest_first
    assert listed("mine", me=control.users["ana"]) == [first.id]
    assert set(listed("unassigned")) == {second.id, third.id}
    assert listed("overdue") == []
    later = NOW_MS + 48 * HOUR_MS + 2
    assert set(listed("overdue", now_ms=later)) == {first.id, third.id}  # closed is not overdue
    assert set(listed("all", channels={"app": None})) == {first.id, third.id}
    assert listed("all", channels={"app": frozenset({"search"})}) == []
    assert listed("all", statuses=["closed"]) == [second.id]
    assert listed("all", channels={}) == []
