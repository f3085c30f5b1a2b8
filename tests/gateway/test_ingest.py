"""``POST /v1/events`` over real HTTP: every status of the contract, with its exact message."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from voxloop_gateway.control.registry import Registry

from .conftest import ORIGIN, Gateway, make_project, start_gateway


def event(score: int = 9, **fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "channel": "web",
        "form": "checkout",
        "metric": "nps",
        "score": score,
        **fields,
    }


def test_a_good_batch_is_committed_and_answered_202(gateway: Gateway) -> None:
    answer = gateway.post([event(9), event(10), event(3)])
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert gateway.stats(metric="nps")["total"]["histogram"] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1]


def test_bad_events_never_disturb_good_ones_beside_them(gateway: Gateway) -> None:
    batch = [event(9), event(11), event(7, extra=1), event(4.0), event(8)]
    answer = gateway.post(batch)
    assert answer.status_code == 202
    body = answer.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert body["rejected"] == [
        {"index": 1, "field": "score", "error": "nps score must be 0..10, got 11"},
        {
            "index": 2,
            "field": "extra",
            "error": "Object contains unknown field `extra` - at `$.events[2]`",
        },
        {
            "index": 3,
            "field": "score",
            "error": "Expected `int`, got `float` - at `$.events[3].score`",
        },
    ]
    assert gateway.stats(metric="nps")["total"]["count"] == 2


def test_every_event_rejected_is_422_with_the_same_shape(gateway: Gateway) -> None:
    answer = gateway.post([event(12), event(-1)])
    assert answer.status_code == 422
    assert answer.json()["accepted"] == 0
    assert [r["index"] for r in answer.json()["rejected"]] == [0, 1]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b'{"evnts": []}', "unknown field `evnts`"),
        (b'{"events": []}', "`events` must hold at least one event"),
        (b"[1, 2]", "Expected `object`, got `array`"),
    ],
    ids=["not-json", "misspelt-events", "no-events", "array"],
)
def test_a_malformed_body_is_400_saying_what_and_where(
    gateway: Gateway, body: bytes, message: str
) -> None:
    with gateway.client(gateway.server_key, **{"Content-Type": "application/json"}) as client:
        answer = client.post("/v1/events", content=body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def post_raw(gateway: Gateway, body: bytes) -> httpx.Response:
    with gateway.client(gateway.server_key, **{"Content-Type": "application/json"}) as client:
        return client.post("/v1/events", content=body)


def test_a_body_nested_too_deep_is_400_and_good_events_stay_as_they_were(
    gateway: Gateway,
) -> None:
    assert gateway.post([event(9), event(3)]).status_code == 202
    good = json.dumps({"events": [event(10), {**event(7), "meta": {"a": "X"}}]}).encode()
    for depth in (975, 1000, 100_000):
        in_events = b'{"events": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
        in_meta = good.replace(b'"X"', b"[" * (depth - 4) + b"]" * (depth - 4))
        for body in (in_events, in_meta):
            answer = post_raw(gateway, body)
            assert answer.status_code == 400, (depth, answer.text)
            assert answer.json() == {
                "error": "body is nested deeper than 32 levels of arrays and objects"
            }
    assert gateway.stats(metric="nps")["total"]["histogram"] == [0, 0, 0, 1] + [0] * 5 + [1, 0]
    assert gateway.post([event(8)]).status_code == 202
    assert gateway.stats(metric="nps")["total"]["count"] == 3


def test_a_body_not_utf8_is_400_naming_the_byte(gateway: Gateway) -> None:
    body = json.dumps({"events": [event(9, comment="X")]}).encode()
    answer = post_raw(gateway, body.replace(b'"X"', b'"ok \xff"'))
    assert answer.status_code == 400
    assert answer.json() == {"error": f"body is not valid UTF-8 (byte {body.index(b'X') + 3})"}


def test_missing_unknown_and_revoked_keys_are_401(gateway: Gateway) -> None:
    with gateway.client() as client:
        missing = client.post("/v1/events", json={"events": [event()]})
    assert missing.status_code == 401
    assert missing.json()["error"] == "missing key: send `Authorization: Bearer <key>`"
    assert gateway.post([event()], key="sk_not-a-key").json()["error"] == "unknown or revoked key"
    # Found once before it is revoked: the gateway remembers the keys it found until a reload.
    assert gateway.post([event()], key=gateway.site_key).status_code == 202
    registry = Registry(gateway.data_dir)
    site_id = [k.id for k in registry.keys("shop") if k.kind == "site"][0]
    registry.revoke_key(site_id)
    revoked = gateway.post([event()], key=gateway.site_key)
    assert revoked.status_code == 401
    assert revoked.json()["error"] == "unknown or revoked key"


@pytest.mark.parametrize(
    ("shape", "status"),
    [
        ("Bearer {}", 202),
        ("bearer {}", 202),
        ("BEARER   {}", 202),
        ("Bearer", 401),
        ("Bearer{}", 401),
        ("Basic {}", 401),
    ],
)
def test_the_authorization_header_is_a_bearer_key_in_any_case(
    gateway: Gateway, shape: str, status: int
) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        answer = client.post(
            "/v1/events",
            json={"events": [event()]},
            headers={"Authorization": shape.format(gateway.server_key)},
        )
    assert answer.status_code == status
    if status == 401:
        assert answer.json()["error"] == "Authorization must be `Bearer <key>`"


def test_of_a_header_sent_twice_the_first_counts(gateway: Gateway) -> None:
    headers = [
        ("Authorization", f"Bearer {gateway.site_key}"),
        ("Origin", ORIGIN),
        ("Origin", "https://evil.example"),
        ("Content-Type", "application/json"),
    ]
    body = json.dumps({"events": [event()]}).encode()
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        allowed = client.post("/v1/events", content=body, headers=headers)
        headers[1:3] = headers[2:0:-1]
        foreign = client.post("/v1/events", content=body, headers=headers)
    assert allowed.status_code == 202
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert foreign.status_code == 403
    assert foreign.json()["error"].startswith("origin https://evil.example is not allowed")


def test_a_site_key_may_come_in_the_url_and_a_server_key_never(gateway: Gateway) -> None:
    with gateway.client() as client:
        site = client.post(f"/v1/events?key={gateway.site_key}", json={"events": [event()]})
        server = client.post(f"/v1/events?key={gateway.server_key}", json={"events": [event()]})
    assert site.status_code == 202
    assert server.status_code == 401
    assert "never be sent in the URL" in server.json()["error"]


def test_a_site_key_from_a_foreign_origin_or_channel_is_403(gateway: Gateway) -> None:
    with gateway.client(gateway.site_key, Origin="https://evil.example") as client:
        foreign = client.post("/v1/events", json={"events": [event()]})
    assert foreign.status_code == 403
    assert foreign.json()["error"].startswith("origin https://evil.example is not allowed")
    with gateway.client(gateway.site_key, Origin=ORIGIN) as client:
        channel = client.post("/v1/events", json={"events": [event(channel="kiosk")]})
        allowed = client.post("/v1/events", json={"events": [event(channel="app")]})
    assert channel.status_code == 403
    assert channel.json()["error"] == "this site key may not write channel kiosk; it names app, web"
    assert channel.headers["access-control-allow-origin"] == ORIGIN  # the page may read why
    assert allowed.status_code == 202
    assert allowed.headers["access-control-allow-origin"] == ORIGIN


def test_cors_preflight_answers_allowed_origins_only(gateway: Gateway) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    with gateway.client(Origin=ORIGIN, **preflight) as client:
        ok = client.options("/v1/events")
    with gateway.client(Origin="https://evil.example", **preflight) as client:
        refused = client.options("/v1/events")
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in ok.headers["access-control-allow-headers"]
    assert "access-control-allow-origin" not in refused.headers


def test_over_the_limits_is_413(gateway: Gateway) -> None:
    too_many = gateway.post([event() for _ in range(1001)])
    assert too_many.status_code == 413
    assert too_many.json()["error"] == "a request may carry at most 1000 events, got 1001"
    huge = {"events": [event(comment="x" * 4000) for _ in range(300)]}
    with gateway.client(gateway.server_key) as client:
        answer = client.post("/v1/events", json=huge)
    assert answer.status_code == 413


def test_a_gzip_bomb_is_refused_without_inflating_it(gateway: Gateway) -> None:
    bomb = gzip.compress(b'{"events": [' + b" " * 50_000_000 + b"]}")
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    with gateway.client(gateway.server_key, **headers) as client:
        answer = client.post("/v1/events", content=bomb)
        small = json.dumps({"events": [event()]}).encode()
        good = client.post("/v1/events", content=gzip.compress(small))
    assert answer.status_code == 413
    assert good.status_code == 202


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Content-Type": "text/plain"}, "Content-Type must be application/json, got text/plain"),
        ({"Content-Type": "application/json", "Content-Encoding": "br"}, "'br' is not supported"),
    ],
    ids=["text-plain", "brotli"],
)
def test_not_json_is_415(gateway: Gateway, headers: dict[str, str], message: str) -> None:
    with gateway.client(gateway.server_key, **headers) as client:
        answer = client.post("/v1/events", content=b'{"events": []}')
    assert answer.status_code == 415
    assert message in answer.json()["error"]


def test_rate_limits_per_address_answer_429_with_retry_after(tmp_path: Path) -> None:
    site, server = make_project(tmp_path)
    gw = start_gateway(tmp_path, site, server, address_rate=0.01, address_burst=2)
    try:
        answers = [gw.post([event()], key=site).status_code for _ in range(3)]
        with gw.client(site) as client:
            limited = client.post("/v1/events", json={"events": [event()]})
        assert answers[:2] == [202, 202]
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        # a server key (a backend) is limited per key, not per address
        assert gw.post([event()], key=server).status_code == 202
    finally:
        gw.stop()


def test_a_full_queue_is_503_with_retry_after_and_nothing_half_done(tmp_path: Path) -> None:
    site, server = make_project(tmp_path)
    gw = start_gateway(tmp_path, site, server, max_pending=2)
    try:
        busy = gw.post([event() for _ in range(3)])
        assert busy.status_code == 503
        assert "retry-after" in busy.headers
        assert gw.stats(metric="nps")["total"]["count"] == 0
        assert gw.post([event(), event()]).status_code == 202
    finally:
        gw.stop()


def test_the_same_events_sent_many_times_in_parallel_and_across_a_restart_count_once(
    tmp_path: Path,
) -> None:
    site, server = make_project(tmp_path)
    # Without an id, the content and the ts make the key: a resent request counts once.
    no_id = event(5, comment="no id", ts=int(time.time() * 1000) - 60_000)
    del no_id["id"]
    batch = [event(score) for score in range(11)] + [no_id]
    gw = start_gateway(tmp_path, site, server)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: gw.post(batch), range(16)))
    assert {a.status_code for a in answers} == {202}
    assert sum(a.json()["accepted"] for a in answers) == len(batch)
    assert sum(a.json()["duplicates"] for a in answers) == 15 * len(batch)
    gw.stop()
    gw = start_gateway(tmp_path, site, server)  # a new process-like start: empty windows
    try:
        again = gw.post(batch)
        assert again.json() == {"accepted": 0, "duplicates": len(batch), "rejected": []}
        assert gw.stats(metric="nps")["total"]["count"] == len(batch)
    finally:
        gw.stop()


def csat_5(**fields: Any) -> dict[str, Any]:
    """A helpdesk's answer: CSAT 5, no id."""
    answer = event(5, metric="csat", form="support-ticket", **fields)
    del answer["id"]
    return answer


def test_identical_answers_without_id_in_one_request_each_count(gateway: Gateway) -> None:
    answer = gateway.post([csat_5()] * 5)
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    assert gateway.stats(metric="csat")["total"]["count"] == 5


def test_a_resent_request_without_ids_counts_once_when_its_events_carry_a_ts(
    gateway: Gateway,
) -> None:
    ts = int(time.time() * 1000) - 60_000
    batch = [csat_5(ts=ts)] * 3 + [csat_5(ts=ts, comment="great")]
    first = gateway.post(batch)
    again = gateway.post(batch)
    assert first.json() == {"accepted": 4, "duplicates": 0, "rejected": []}
    assert again.json() == {"accepted": 0, "duplicates": 4, "rejected": []}
    assert gateway.stats(metric="csat")["total"]["count"] == 4
    one_more = gateway.post(batch + [csat_5(ts=ts)])  # a fourth identical answer is new
    assert one_more.json() == {"accepted": 1, "duplicates": 4, "rejected": []}
    assert gateway.stats(metric="csat")["total"]["count"] == 5


def test_a_resent_request_without_id_or_ts_counts_again(gateway: Gateway) -> None:
    batch = [csat_5(), csat_5()]
    assert gateway.post(batch).json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert gateway.post(batch).json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert gateway.stats(metric="csat")["total"]["count"] == 4


def test_events_with_ids_still_merge_by_id(gateway: Gateway) -> None:
    same = event(5, metric="csat", id="ticket-1")
    first = gateway.post([same, same, {**same, "score": 1}])
    assert first.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert gateway.post([same]).json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert gateway.stats(metric="csat")["total"]["histogram"] == [0, 0, 0, 0, 1]
