"""The demo page's HTML: the widgets embedded, sample emails, the demo project's stats.

Template ``templates/demo.html``. What it shows is gathered by the ``/demo`` route
(``voxloop_gateway.demo``); here it is only laid out, every value escaped but the sample
emails, which are the SDK's own HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from . import render

__all__ = ["DEMO_HEADERS", "SampleEmail", "StatsRow", "Widget", "demo_response"]

DEMO_HEADERS: Final = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True, slots=True)
class Widget:
    """One embedded widget: its form, its metric, and how it is shown."""

    form: str
    metric: str
    how: Literal["inline", "floating"]


@dataclass(frozen=True, slots=True)
class SampleEmail:
    """A sample email's rating row in one language.

    Attributes:
        language: the email's language, as ``rating_links`` took it.
        html: what ``voxloop.email.rating_html`` returned: a fragment of email HTML in which
            the SDK has already escaped every value, so the page includes it as it is.
    """

    language: str
    html: str


@dataclass(frozen=True, slots=True)
class StatsRow:
    """The stats of one metric on one channel of the demo project."""

    metric: str
    channel: str
    count: int
    score: float | None
    quarantined: int
    histogram: Sequence[int]


def demo_response(
    request: Request,
    site_key: str,
    widgets: Sequence[Widget],
    emails: Sequence[SampleEmail],
    stats: Sequence[StatsRow],
) -> HTMLResponse:
    """The demo page, with :data:`DEMO_HEADERS`.

    Args:
        request: the request the page answers.
        site_key: the demo project's site key, which each widget is embedded with.
        widgets: the widgets to embed, in order.
        emails: the sample emails, in order.
        stats: a row per metric and channel with answers; none says how to get some.
    """
    context = {
        "language": "en",
        "direction": None,  # English, left to right by default: no dir attribute
        "site_key": site_key,
        "widgets": widgets,
        "emails": [(email.language, Markup(email.html)) for email in emails],
        "stats": stats,
    }
    return render(request, "demo.html", context, 200, DEMO_HEADERS)
