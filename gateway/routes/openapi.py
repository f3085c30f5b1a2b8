"""``GET /openapi.json``: the wire contract, generated from the Structs the code decodes with."""

from __future__ import annotations

from typing import Any

import msgspec

from voxloop_core import (
    FORM_PATTERN,
    LOCALE_PATTERN,
    MAX_COMMENT_CHARS,
    MAX_ID_CHARS,
    MAX_LOCALE_CHARS,
    METRIC_RANGES,
    Batch,
)

from ..control.registry import NAME_RULE
from ..http.responses import ErrorAnswer
from .email_links import Confirmation, Recorded
from .events import IngestAnswer
from .stats import StatsAnswer

_REF = "#/components/schemas/{name}"


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(name=name)}}}


def _error(description: str, retry: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": _json("ErrorAnswer")}
    if retry:
        answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return answer


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {}}}


_ID_RULE = (
    "The idempotency key, 1-64 printable ASCII characters; the SDK and the widgets send a UUIDv7."
    " The same id is the same event: a resend counts once. Without an id, an event with a `ts` is"
    " known by its content, its `ts` and how many identical events come before it in the same"
    " request (a plain resend counts once; identical answers sent together are separate); an"
    " event with neither is a new answer each time it arrives."
)


def _event_rules(event: dict[str, Any]) -> None:
    """Add to the generated ``Event`` schema the rules ``validate`` checks after decoding.

    msgspec states what its Structs check (types, lengths, sizes); the metric, its score range,
    the form and channel rules live in the core's ``validate``, so they are written into the
    schema here from the same constants, for clients and fuzzers to see.
    """
    properties = event["properties"]
    event["description"] = "One rating, as the contract's field table describes it."
    properties["id"]["description"] = _ID_RULE
    properties["id"]["anyOf"][0]["pattern"] = f"^[\\x20-\\x7e]{{1,{MAX_ID_CHARS}}}$"
    properties["locale"]["anyOf"][0].update(
        pattern=f"^{LOCALE_PATTERN}$", maxLength=MAX_LOCALE_CHARS, description="A BCP 47 tag."
    )
    properties["comment"]["description"] = (
        f"At most {MAX_COMMENT_CHARS:,} characters after Unicode NFC normalisation; control"
        " characters other than newline and tab are removed."
    )
    properties["channel"].update(
        pattern=f"^{NAME_RULE.pattern}$",
        description="One of the project's channels: web, app and email, and those it adds.",
    )
    properties["form"].update(pattern=f"^{FORM_PATTERN}$")
    properties["metric"]["enum"] = list(METRIC_RANGES)
    low = min(low for low, _ in METRIC_RANGES.values())
    high = max(high for _, high in METRIC_RANGES.values())
    ranges = ", ".join(f"{m} {lo}-{hi}" for m, (lo, hi) in METRIC_RANGES.items())
    properties["score"].update(minimum=low, maximum=high, description=f"By metric: {ranges}.")
    event["allOf"] = [
        {
            "if": {"properties": {"metric": {"const": metric}}, "required": ["metric"]},
            "then": {"properties": {"score": {"minimum": lo, "maximum": hi}}},
        }
        for metric, (lo, hi) in METRIC_RANGES.items()
    ]


def build_openapi(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway's API."""
    _, components = msgspec.json.schema_components(
        [Batch, IngestAnswer, ErrorAnswer, StatsAnswer, Confirmation, Recorded],
        ref_template=_REF,
    )
    _event_rules(components["Event"])
    multi = {"type": "array", "items": {"type": "string"}}
    stats_params = [
        {
            "name": "metric",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "enum": list(METRIC_RANGES)},
        },
        {"name": "channel", "in": "query", "schema": multi, "style": "form", "explode": True},
        {"name": "form", "in": "query", "schema": multi, "style": "form", "explode": True},
        {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {
            "name": "interval",
            "in": "query",
            "schema": {"type": "string", "enum": ["hour", "day", "week", "month"]},
        },
    ]
    token_rule = {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,486}$"}
    token = {"name": "token", "in": "path", "required": True, "schema": token_rule}
    lang = {"name": "lang", "in": "query", "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "voxloop gateway", "version": version},
        "components": {
            "schemas": components,
            "securitySchemes": {"key": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"key": []}],
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Send a batch of feedback events",
                    "requestBody": {"required": True, "content": _json("Batch")},
                    "responses": {
                        "202": {"description": "committed", "content": _json("IngestAnswer")},
                        "400": _error('not JSON, not {"events": [...]}, or nested too deep'),
                        "401": _error("missing or unknown key, or a server key in the URL"),
                        "403": _error(
                            "origin or channel not allowed for this site key,"
                            " or a server key sent from a browser (with an Origin header)"
                        ),
                        "413": _error("over the limits"),
                        "415": _error("not JSON, or an unknown Content-Encoding"),
                        "422": {
                            "description": "every event rejected",
                            "content": _json("IngestAnswer"),
                        },
                        "429": _error("rate limited", retry=True),
                        "503": _error("the store can't take writes now", retry=True),
                    },
                }
            },
            "/v1/stats": {
                "get": {
                    "summary": "Scores, histograms and series (server key)",
                    "parameters": stats_params,
                    "responses": {
                        "200": {"description": "the stats", "content": _json("StatsAnswer")},
                        "400": _error("a parameter breaks its rule"),
                        "401": _error("missing or unknown key, or a server key in the URL"),
                        "403": _error(
                            "not a server key, or a server key sent from a browser"
                            " (with an Origin header)"
                        ),
                        "429": _error("rate limited", retry=True),
                    },
                }
            },
            "/r/{token}": {
                "parameters": [token, lang],
                "get": {
                    "summary": "An email rating link: the page that confirms the vote",
                    "description": "Records nothing: the page's script POSTs once it is shown.",
                    "security": [],
                    "responses": {
                        "200": _html("the vote page"),
                        "403": _html("forged or altered link"),
                        "410": _html("expired link"),
                    },
                },
                "post": {
                    "summary": "Record the vote of a shown rating page, or attach a comment",
                    "security": [],
                    "requestBody": {"required": True, "content": _json("Confirmation")},
                    "responses": {
                        "200": {"description": "recorded", "content": _json("Recorded")},
                        "400": _error("a field breaks its rule"),
                        "403": _error("forged or altered link"),
                        "410": _error("expired link"),
                        "413": _error("over the limits"),
                        "415": _error("not JSON or a form"),
                        "429": _error("rate limited", retry=True),
                        "503": _error("the store can't take writes now", retry=True),
                    },
                },
            },
            "/widgets/v1/voxloop.js": {
                "get": {
                    "summary": "The embeddable widget script",
                    "security": [],
                    "responses": {"200": {"description": "JavaScript"}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus text: requests, events, commit latency, queue depth",
                    "security": [],
                    "responses": {"200": {"description": "text/plain; version=0.0.4"}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "this document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1, JSON"}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "the process is up",
                    "security": [],
                    "responses": {"200": {"description": "up"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "every store accepts writes",
                    "security": [],
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "a store can't write"},
                    },
                }
            },
        },
    }
