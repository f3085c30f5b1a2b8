"""``GET /demo`` (only under ``voxloop-gateway demo``): every entry point on one page.

A newcomer opens it, answers the embedded widgets, clicks a score in the sample email, and sees
the demo project's stats move on the same page. The page uses only the public parts: the widget
script with the demo's site key, and rating links made by the SDK's ``voxloop.email``. This
module gathers what the page shows; ``pages/demo.py`` and its template lay it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.responses import HTMLResponse

from voxloop.email import rating_html, rating_links
from voxloop_core import METRIC_RANGES

from ..pages.demo import SampleEmail, StatsRow, Widget, demo_response
from ..service import Service
from .stats import StatsQuery, compute

DEMO_PROJECT: Final = "demo"
#: The widgets the page embeds, in order.
WIDGETS: Final = (
    Widget("checkout", "nps", "inline"),
    Widget("delivery", "csat", "inline"),
    Widget("support", "ces", "inline"),
    Widget("docs", "likert", "inline"),
    Widget("article", "thumbs", "inline"),
    Widget("site", "nps", "floating"),
)
#: The languages of the sample emails, in order.
EMAIL_LANGUAGES: Final = ("en", "ar")


@dataclass(frozen=True, slots=True)
class Demo:
    """What the demo page needs: the demo project's site key and its email signing secret."""

    site_key: str
    email_secret: bytes


async def demo_page(request: Request) -> HTMLResponse:
    """The demo page: widgets, a sample email in English and Arabic, the live stats."""
    demo: Demo = request.app.state.demo
    service: Service = request.app.state.service
    base = str(request.base_url).rstrip("/")
    emails = [
        SampleEmail(
            language,
            rating_html(
                rating_links(
                    base,
                    demo.email_secret,
                    project=DEMO_PROJECT,
                    campaign="demo-mailing",
                    form="newsletter",
                    metric="nps",
                    recipient=f"demo-reader-{language}",
                    locale=language,
                )
            ),
        )
        for language in EMAIL_LANGUAGES
    ]
    stats = await _stats_rows(service)
    return demo_response(request, demo.site_key, WIDGETS, emails, stats)


async def _stats_rows(service: Service) -> list[StatsRow]:
    """A row per metric and channel of the demo project that has answers (or held ones)."""
    project = service.registry.project(DEMO_PROJECT, reload=True)
    rows = []
    for metric in METRIC_RANGES:
        for channel in sorted(project.channels):
            query = StatsQuery(
                metric=metric,
                channels=(channel,),
                forms=None,
                start_ms=None,
                end_ms=None,
                interval=None,
            )
            answer = await compute(service, project.id, query)
            if answer.total.count or answer.quarantined:
                rows.append(
                    StatsRow(
                        metric=metric,
                        channel=channel,
                        count=answer.total.count,
                        score=answer.total.score,
                        quarantined=answer.quarantined,
                        histogram=answer.total.histogram,
                    )
                )
    return rows
