"""The demo page's template: every part rendered, and hostile values shown as text.

``tests/gateway/test_demo.py`` drives the page served by ``voxloop-gateway demo`` in a browser.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from markupsafe import escape
from starlette.requests import Request

from voxloop.email import rating_html, rating_links
from voxloop_gateway.pages.demo import (
    DEMO_HEADERS,
    SampleEmail,
    StatsRow,
    Widget,
    demo_response,
)
from voxloop_gateway.routes.demo import WIDGETS

from .conftest import HOSTILE, assert_shown_as_text, parse

SECRET = bytes(range(32))
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def email(language: str, question: str | None = None) -> SampleEmail:
    links = rating_links(
        "https://feedback.example",
        SECRET,
        project="demo",
        campaign="c",
        form="f",
        metric="nps",
        recipient="r",
        locale=language,
        now=NOW,
    )
    return SampleEmail(language, rating_html(links, question=question))


@pytest.mark.parametrize(
    "stats",
    [[], [StatsRow("nps", "web", 3, 33.333, 1, [0] * 8 + [1, 1, 1])]],
    ids=["no-answers", "answers"],
)
def test_the_demo_page_renders_every_part(http_request: Request, stats: list[StatsRow]) -> None:
    emails = [email("en"), email("ar")]
    answer = demo_response(http_request, "pk_demo", WIDGETS, emails, stats)
    assert answer.status_code == 200
    assert {name: answer.headers[name] for name in DEMO_HEADERS} == DEMO_HEADERS
    page = bytes(answer.body).decode()
    parsed = parse(page)
    assert parsed.root() == {"lang": "en"}
    scripts = [attrs for tag, attrs in parsed.elements if tag == "script"]
    assert [(s["data-form"], s["data-metric"]) for s in scripts] == [
        (w.form, w.metric) for w in WIDGETS
    ]
    assert all(s["data-key"] == "pk_demo" and s["data-days"] == "0" for s in scripts)
    inline = [s.get("data-target") for s in scripts]
    assert inline == [f"#w-{w.form}" if w.how == "inline" else None for w in WIDGETS]
    for sample in emails:  # the SDK's HTML, as it is
        assert sample.html in page
    rows = [text for text in parsed.texts if text.strip()]
    if stats:
        assert ["nps", "web", "3", "33.3", "1", "[0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]"] == rows[
            rows.index("histogram") + 1 : rows.index("histogram") + 7
        ]
    else:
        assert "No answers yet: try the widgets and the email." in rows


def test_the_floating_widgets_snippet_is_shown_as_code(http_request: Request) -> None:
    widgets = [Widget('a"&b', "nps", "floating")]
    parsed = parse(bytes(demo_response(http_request, "pk_x", widgets, [], []).body))
    (code,) = [t for t in parsed.texts if t.startswith("<script")]
    # What a reader copies: HTML source, its attribute values escaped as HTML needs them.
    assert code == (
        '<script src="/widgets/v1/voxloop.js" data-key="pk_…" data-form="a&#34;&amp;b"'
        ' data-metric="nps" async></script>'
    )


def test_a_hostile_value_is_shown_as_text(http_request: Request) -> None:
    def page(value: str) -> str:
        widgets = [Widget(value, value, "inline"), Widget(value, value, "floating")]
        emails = [SampleEmail(value, email("ar", question=value).html)]
        stats = [StatsRow(value, value, 1, None, 0, [1])]
        return bytes(demo_response(http_request, value, widgets, emails, stats).body).decode()

    raw = page(HOSTILE)
    hostile = parse(raw)
    # The floating widget's snippet shows the value as HTML source: escaped once more.
    snippet = f'data-form="{escape(HOSTILE)}" data-metric="{escape(HOSTILE)}"'
    assert len([text for text in hostile.texts if snippet in text]) == 1
    assert_shown_as_text(hostile, parse(page("benign")), raw, as_code=2)
