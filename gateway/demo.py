"""``GET /demo`` (only under ``voxloop-gateway demo``): every entry point on one page.

A newcomer opens it, answers the embedded widgets, clicks a score in the sample email, and sees
the demo project's stats move on the same page. The page uses only the public parts: the widget
script with the demo's site key, and rating links made by the SDK's ``voxloop.email``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.responses import HTMLResponse

from voxloop.email import rating_html, rating_links
from voxloop_core import METRIC_RANGES

from .service import Service
from .stats import StatsQuery, compute

DEMO_PROJECT: Final = "demo"
#: The widgets the page embeds: (form, metric, how it is shown).
WIDGETS: Final = (
    ("checkout", "nps", "inline"),
    ("delivery", "csat", "inline"),
    ("support", "ces", "inline"),
    ("docs", "likert", "inline"),
    ("article", "thumbs", "inline"),
    ("site", "nps", "floating"),
)
DEMO_HEADERS: Final = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True, slots=True)
class Demo:
    """What the demo page needs: the demo project's site key and its email signing secret."""

    site_key: str
    email_secret: bytes


def _e(text: str) -> str:
    return html.escape(text, quote=True)


async def demo_page(request: Request) -> HTMLResponse:
    """The demo page: widgets, a sample email in English and Arabic, the live stats."""
    demo: Demo = request.app.state.demo
    service: Service = request.app.state.service
    base = str(request.base_url).rstrip("/")
    widgets = "\n".join(_widget(demo.site_key, *widget) for widget in WIDGETS)
    emails = "\n".join(
        f'<section class="email"><h3>Sample email ({language})</h3>'
        + rating_html(
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
        )
        + "</section>"
        for language in ("en", "ar")
    )
    stats = await _stats_rows(service)
    page = _PAGE.format(widgets=widgets, emails=emails, stats=stats)
    return HTMLResponse(page, headers=DEMO_HEADERS)


def _widget(site_key: str, form: str, metric: str, how: str) -> str:
    """One widget's card: inline, the form itself; floating, what to look for and the embed."""
    attributes = f'data-form="{_e(form)}" data-metric="{_e(metric)}"'
    script = (
        f'<script src="/widgets/v1/voxloop.js" data-key="{_e(site_key)}" {attributes}'
        + (f' data-target="#w-{_e(form)}"' if how == "inline" else "")
        + ' data-days="0" async></script>'
    )
    title = f"<h3>{_e(metric)} · {_e(form)} ({_e(how)})</h3>"
    if how == "inline":
        return f'<section class="widget">{title}<div id="w-{_e(form)}"></div>{script}</section>'
    embed = f'<script src="/widgets/v1/voxloop.js" data-key="pk_…" {attributes} async></script>'
    return (
        f'<section class="widget floating" id="w-{_e(form)}">{title}'
        "<p>This form floats: embedded without <code>data-target</code>, it is a"
        " <strong>Feedback</strong> button in the bottom corner of the page (the right one here,"
        " the left one on a right-to-left page). Click it to open the form; it stays in that"
        " corner as the page scrolls.</p>"
        f"<pre><code>{_e(embed)}</code></pre>{script}</section>"
    )


async def _stats_rows(service: Service) -> str:
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
                score = "-" if answer.total.score is None else f"{answer.total.score:.1f}"
                rows.append(
                    f"<tr><td>{_e(metric)}</td><td>{_e(channel)}</td>"
                    f"<td>{answer.total.count}</td><td>{score}</td>"
                    f"<td>{answer.quarantined}</td><td>{answer.total.histogram}</td></tr>"
                )
    if not rows:
        return '<tr><td colspan="6">No answers yet: try the widgets and the email.</td></tr>'
    return "\n".join(rows)


_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>voxloop demo</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/demo.css">
</head>
<body>
<header><h1>voxloop demo</h1>
<p>Every entry point of the demo project on one page. Answer a widget, click a score in a
sample email, then reload this page: the stats below come from the same stores the API reads.</p>
</header>
<main>
<h2>Widgets (web channel)</h2>
<div class="grid">
{widgets}
</div>
<h2>Email rating links (email channel)</h2>
<p>What <code>voxloop.email.rating_html()</code> renders for a demo recipient; each link opens
the rating page, which records the vote once shown. Clicking another score changes the vote.</p>
{emails}
<h2 id="stats-title">Stats of the demo project</h2>
<div class="scroll" role="region" aria-labelledby="stats-title" tabindex="0">
<table id="stats">
<thead><tr><th>metric</th><th>channel</th><th>answers</th><th>score</th><th>quarantined</th>
<th>histogram</th></tr></thead>
<tbody>
{stats}
</tbody>
</table>
</div>
</main>
</body>
</html>
"""
