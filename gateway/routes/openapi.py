"""``GET /openapi.json``: the wire contract, generated from the Structs the code decodes with."""

from __future__ import annotations

from typing import Any, get_args

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
from ..http.auth import SESSION_COOKIE
from ..http.responses import ErrorAnswer
from ..reading import params as read
from ..reading.cursor import MAX_CURSOR_CHARS
from ..reading.stats import StatsAnswer
from ..stores.reads import HeldFilter
from .email_links import Confirmation, Recorded
from .events import IngestAnswer
from .responses import ResponseDetail, ResponsesAnswer

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


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if schema.get("type") == "array":
        param.update(style="form", explode=True)
    if description:
        param["description"] = description
    return param


def _many(item: dict[str, Any], most: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": item}
    if most is not None:
        schema["maxItems"] = most
    return schema


_CHANNEL = {"type": "string", "pattern": f"^{NAME_RULE.pattern}$"}
_PROJECT = _query(
    "project",
    _CHANNEL,
    "The project read: a key's own (it may be left out), or one of a person's projects"
    " (needed when they see more than one).",
)
_META_RULE = (
    f" Also `meta.KEY=VALUE` (KEY 1-{read.MAX_META_KEY_CHARS} characters, VALUE at most"
    f" {read.MAX_META_VALUE_CHARS}, at most {read.MAX_META} of them): the response's meta value"
    " KEY, as text (`true`, `3`, `pro`), is VALUE. Every filter given must hold. Any other"
    " parameter is refused (400), and so is a channel or form outside the asker's access (403)."
)


def _filters() -> list[dict[str, Any]]:
    """The filters every read of responses takes (``/v1/responses``, the respondent view and
    the exports), written from the rules :mod:`..reading.params` checks."""
    low = min(low for low, _ in METRIC_RANGES.values())
    high = max(high for _, high in METRIC_RANGES.values())
    score = {"type": "integer", "minimum": low, "maximum": high}
    time = {"type": "string", "format": "date-time"}
    return [
        _PROJECT,
        _query("channel", _many(_CHANNEL), "Only these channels (default: every one visible)."),
        _query("form", _many({"type": "string", "pattern": f"^{FORM_PATTERN}$"})),
        _query("metric", _many({"type": "string", "enum": list(METRIC_RANGES)})),
        _query("score_min", score, "Within the metric's scale when one metric is given."),
        _query("score_max", score, "At least score_min."),
        _query("has_comment", {"type": "boolean"}),
        _query(
            "q",
            {"type": "string", "minLength": 1, "maxLength": read.MAX_SEARCH_CHARS},
            "Text in the comment, case-insensitive, in any script (Arabic, Persian, CJK...).",
        ),
        _query(
            "tag",
            _many(
                {"type": "string", "minLength": 1, "maxLength": read.MAX_TAG_CHARS},
                read.MAX_TAGS,
            ),
            "Responses carrying every tag given.",
        ),
        _query(
            "locale",
            {
                "type": "string",
                "pattern": f"^{LOCALE_PATTERN}$",
                "maxLength": MAX_LOCALE_CHARS,
            },
        ),
        _query("from", time, "The response's time (`ts`) at or after this (RFC 3339, a zone)."),
        _query("to", time, "The response's time before this; after `from`."),
        _query(
            "held",
            {"type": "string", "enum": list(get_args(HeldFilter))},
            "Votes held apart: as a link scanner's (quarantined), after the edit window (late),"
            " either (any), or neither (none).",
        ),
    ]


_PAGE = [
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": read.MAX_LIMIT},
        f"Responses a page, default {read.DEFAULT_LIMIT}.",
    ),
    _query(
        "cursor",
        {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "maxLength": MAX_CURSOR_CHARS},
        "The previous page's `next`, with the same filters.",
    ),
]


def _reads(summary: str, description: str, ok: dict[str, Any], **more: Any) -> dict[str, Any]:
    """A read operation: a server key, a read key or a person's session."""
    responses = {
        "200": ok,
        "400": _error("a parameter breaks its rule, or is unknown; the message names it"),
        "401": _error("no key or session, an unknown or revoked key, an expired session"),
        "403": _error(
            "a site key; a server or read key sent from a browser; a channel, form, project"
            " or section outside the asker's access"
        ),
        "404": _error("no such project (for a person who may see every project)"),
        "429": _error("rate limited", retry=True),
        "503": _error("a store can't be read now", retry=True),
    }
    responses.update(more.pop("responses", {}))
    return {
        "get": {
            "summary": summary,
            "description": description,
            "security": [{"key": []}, {"session": []}],
            "responses": responses,
            **more,
        }
    }


def _read_paths() -> dict[str, Any]:
    """The read side: responses, one response, a respondent's, the exports."""
    page = {"description": "a page", "content": _json("ResponsesAnswer")}
    return {
        "/v1/responses": _reads(
            "Responses, filtered, newest first, a page at a time",
            "The Feedback inbox section." + _META_RULE,
            page,
            parameters=[*_filters(), *_PAGE],
        ),
        "/v1/responses/{ref}": {
            "parameters": [
                {
                    "name": "ref",
                    "in": "path",
                    "required": True,
                    "schema": {
                        "type": "string",
                        "pattern": f"^{NAME_RULE.pattern}\\.[0-9a-f]{{32}}$",
                    },
                    "description": "A response's `ref`, from a page.",
                },
                _PROJECT,
            ],
            **_reads(
                "One response, its vote history and its respondent's other responses",
                "A ref outside the asker's access is answered as one that doesn't exist.",
                {"description": "the response", "content": _json("ResponseDetail")},
                responses={"404": _error("no such response (or none the asker may see)")},
            ),
        },
        "/v1/respondents/{respondent}/responses": {
            "parameters": [
                {
                    "name": "respondent",
                    "in": "path",
                    "required": True,
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": read.MAX_RESPONDENT_CHARS,
                    },
                    "description": "The id the client sent as `respondent`; hashed to look up.",
                }
            ],
            **_reads(
                "Everything one respondent said on every visible channel, oldest first",
                "The filters of /v1/responses also apply." + _META_RULE,
                page,
                parameters=[*_filters(), *_PAGE],
            ),
        },
        "/v1/exports/responses.csv": _reads(
            "Every response the filters keep, as CSV (RFC 4180, UTF-8), streamed",
            "The Exports section; the rows of /v1/responses, newest first. A cell beginning"
            " with = + - @, a tab or a carriage return starts with ' (CSV injection)." + _META_RULE,
            {"description": "CSV with a header line", "content": {"text/csv": {}}},
            parameters=[
                *_filters(),
                _query("bom", {"type": "boolean"}, "Start with a byte order mark, for Excel."),
            ],
        ),
        "/v1/exports/responses.ndjson": _reads(
            "Every response the filters keep, as NDJSON (a JSON object a line), streamed",
            "The Exports section; the rows of /v1/responses, newest first." + _META_RULE,
            {"description": "NDJSON", "content": {"application/x-ndjson": {}}},
            parameters=_filters(),
        ),
    }


def build_openapi(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway's API."""
    _, components = msgspec.json.schema_components(
        [
            Batch,
            IngestAnswer,
            ErrorAnswer,
            StatsAnswer,
            Confirmation,
            Recorded,
            ResponsesAnswer,
            ResponseDetail,
        ],
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
        _PROJECT,
    ]
    token_rule = {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,486}$"}
    token = {"name": "token", "in": "path", "required": True, "schema": token_rule}
    lang = {"name": "lang", "in": "query", "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "voxloop gateway", "version": version},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "key": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            },
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
                    "summary": "Scores, histograms and series (server key, read key, session)",
                    "description": "The Dashboard section, within the asker's channels and"
                    " forms: a channel outside them is a 403.",
                    "security": [{"key": []}, {"session": []}],
                    "parameters": stats_params,
                    "responses": {
                        "200": {"description": "the stats", "content": _json("StatsAnswer")},
                        "400": _error("a parameter breaks its rule"),
                        "401": _error(
                            "missing or unknown key, no or an expired session, a key in the URL"
                        ),
                        "403": _error(
                            "a site key, a server or read key sent from a browser (with an"
                            " Origin header), a channel or form outside the asker's access"
                        ),
                        "404": _error("no such project (for a person who may see every project)"),
                        "429": _error("rate limited", retry=True),
                        "503": _error("a store can't be read now", retry=True),
                    },
                }
            },
            **_read_paths(),
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
