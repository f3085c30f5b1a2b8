"""The published OpenAPI document states the contract's rules, and the gateway keeps to them.

The schema of an event must accept exactly the events the gateway accepts, as far as the rules
are the contract's (metric, score per metric, form, channel name); one batch of every
combination, posted over HTTP, is judged by both.
"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs

from voxloop_core import METRIC_RANGES

from .conftest import Gateway


def _document(gateway: Gateway) -> dict[str, Any]:
    answer = httpx.get(f"{gateway.url}/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def test_event_schema_names_the_metrics_and_the_rules(gateway: Gateway) -> None:
    event = _document(gateway)["components"]["schemas"]["Event"]
    properties = event["properties"]
    assert properties["metric"]["enum"] == list(METRIC_RANGES)
    assert properties["form"]["pattern"] == "^[A-Za-z0-9._-]{1,64}$"
    assert properties["channel"]["pattern"].startswith("^[a-z0-9]")
    assert "resend" in properties["id"]["description"]
    ranges = {
        rule["if"]["properties"]["metric"]["const"]: (
            rule["then"]["properties"]["score"]["minimum"],
            rule["then"]["properties"]["score"]["maximum"],
        )
        for rule in event["allOf"]
    }
    assert ranges == METRIC_RANGES


def test_the_schema_accepts_exactly_what_the_gateway_accepts(gateway: Gateway) -> None:
    validator = jsonschema_rs.Draft202012Validator(
        _document(gateway)["components"]["schemas"]["Event"]
    )
    events: list[dict[str, Any]] = []
    for metric in [*METRIC_RANGES, "sus", "NPS"]:
        for score in range(-1, 12):
            events.append({"channel": "web", "form": "f", "metric": metric, "score": score})
    for form in ["checkout", "a.b_c-D9", "x" * 64, "x" * 65, "", "with space", "café", "a/b"]:
        events.append({"channel": "web", "form": form, "metric": "csat", "score": 5})
    for channel in ["web", "Web", "-web", "w eb"]:
        events.append({"channel": channel, "form": "f", "metric": "csat", "score": 5})
    good = {"channel": "web", "form": "f", "metric": "csat", "score": 5}
    for event_id in ["a", "x" * 64, "x" * 65, "", "with space", "tab\there", "é", "~!"]:
        events.append({**good, "id": event_id})
    for locale in ["en", "en-US", "zh-Hant-TW", "e", "en_US", "x" * 9, "en-" + "a" * 32, "-en"]:
        events.append({**good, "locale": locale})
    answer = gateway.post(events)
    assert answer.status_code == 202, answer.text
    refused = {rejection["index"] for rejection in answer.json()["rejected"]}
    for index, event in enumerate(events):
        assert validator.is_valid(event) == (index not in refused), event


def test_every_refusal_of_the_events_route_is_documented(gateway: Gateway) -> None:
    documented = set(_document(gateway)["paths"]["/v1/events"]["post"]["responses"])
    assert {"202", "400", "401", "403", "413", "415", "422", "429", "503"} <= documented
    with gateway.client(gateway.server_key) as client:
        too_large = client.post(
            "/v1/events", content=b"x" * (2 << 20), headers={"Content-Type": "application/json"}
        )
    assert too_large.status_code == 413
    assert str(too_large.status_code) in documented
