"""``GET /demo`` (only under ``voxloop-gateway demo``): every entry point on one page; and the
sample feedback the demo's dashboard opens on.

A newcomer opens the page, answers the embedded widgets, clicks a score in the sample email, and
sees the demo project's stats move on the same page. The page uses only the public parts: the
widget script with the demo's site key, and rating links made by the SDK's ``voxloop.email``.
This module gathers what the page shows; ``pages/demo.py`` and its template lay it out.

The ``demo`` project starts empty, for the newcomer's own answers; beside it the ``sample``
project holds two months of feedback (:func:`seed_sample`), so the dashboard at ``/app/`` has
something to show at once: scores that move, comments in English, Arabic, Persian and
Indonesian from the web, the app and emails, respondents who answered on several channels,
email votes that were changed, and a link scanner's clicks held apart.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse

import voxloop_core
from voxloop.email import rating_html, rating_links
from voxloop_core import DAY_MS, HOUR_MS, METRIC_RANGES, Policy

from ..errors import ConfigError
from ..ingest.pipeline import commit
from ..ingest.votes import VoteRule
from ..pages.demo import SampleEmail, StatsRow, Widget, demo_response
from ..reading.stats import StatsQuery, compute
from ..service import Service

DEMO_PROJECT: Final = "demo"
#: The project of sample feedback the demo's dashboard opens on.
SAMPLE_PROJECT: Final = "sample"
#: The demo's owner, who logs in to the dashboard with the one-time password printed.
DEMO_OWNER: Final = "owner@demo.example"
#: How far back the sample feedback goes.
SAMPLE_DAYS: Final = 60
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
                channels={channel: None},
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


#: What the sample's respondents say, by language, of a good experience and of a bad one.
SAMPLE_COMMENTS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "en": (
        (
            "Fast delivery and the checkout was painless.",
            "Support answered within minutes and solved it.",
            "Love the new app, everything is where I expect it.",
            "The newsletter had exactly the deals I wanted.",
        ),
        (
            "The payment page froze twice before it worked.",
            "I waited a week for a refund and nobody replied.",
            "The app keeps logging me out.",
            "Too many emails, and the links were broken.",
        ),
    ),
    "ar": (
        (
            "التوصيل كان سريعًا جدًا والدفع سهل.",
            "ردّ فريق الدعم خلال دقائق وحلّ المشكلة.",
            "التطبيق الجديد رائع وسهل الاستخدام.",
        ),
        (
            "تأخر الطلب أسبوعًا كاملًا دون أي تحديث.",
            "صفحة الدفع تعطلت مرتين قبل أن تنجح.",
            "خدمة العملاء لم ترد على رسائلي.",
        ),
    ),
    "fa": (
        (
            "تحویل خیلی سریع بود و پرداخت ساده بود.",
            "پشتیبانی در چند دقیقه پاسخ داد و مشکل حل شد.",
            "برنامهٔ جدید عالی است و کار با آن آسان است.",
        ),
        (
            "سفارشم یک هفته دیر رسید و کسی خبر نداد.",
            "صفحهٔ پرداخت دو بار از کار افتاد.",
            "برنامه مدام از حسابم خارج می‌شود.",
        ),
    ),
    "id": (
        (
            "Pengiriman cepat dan pembayarannya mudah.",
            "Tim dukungan menjawab dalam beberapa menit.",
            "Aplikasi barunya bagus dan mudah dipakai.",
        ),
        (
            "Pesanan saya terlambat seminggu tanpa kabar.",
            "Halaman pembayaran macet dua kali.",
            "Aplikasinya sering keluar sendiri.",
        ),
    ),
}
#: Each touchpoint of the sample: channel, form, metric, answers a day.
_TOUCHPOINTS: Final = (
    ("web", "checkout", "nps", 4),
    ("web", "docs", "thumbs", 2),
    ("app", "onboarding", "csat", 3),
    ("app", "support", "ces", 2),
    ("email", "newsletter", "nps", 2),
)
_LOCALES: Final = ("en", "en", "en", "ar", "fa", "id")


def _score(metric: str, mood: float) -> int:
    """A score on ``metric``'s scale for a mood between 0 (unhappy) and 1 (delighted)."""
    low, high = METRIC_RANGES[metric]
    return max(low, min(high, round(low + mood * (high - low))))


def sample_events(now_ms: int, seed: int = 13) -> Iterator[dict[str, Any]]:
    """The sample project's events over the last :data:`SAMPLE_DAYS` days, the same every time.

    Moods improve over the period, so the trend rises. Email answers are votes of a mailing
    (one a week, ``vote_key`` campaign and recipient); some recipients change their vote later,
    and one recipient's mail scanner clicks three scores within a second (held apart).
    """
    rng = random.Random(seed)
    start = now_ms - now_ms % HOUR_MS - SAMPLE_DAYS * DAY_MS
    number = 0
    mailed: set[str] = set()  # one vote group per recipient and mailing
    for day in range(SAMPLE_DAYS):
        for channel, form, metric, per_day in _TOUCHPOINTS:
            for _ in range(rng.randint(per_day - 1, per_day + 1)):
                number += 1
                ts = start + day * DAY_MS + rng.randrange(DAY_MS)
                mood = min(1.0, max(0.0, rng.gauss(0.6 + 0.3 * day / SAMPLE_DAYS, 0.2)))
                locale = rng.choice(_LOCALES)
                event: dict[str, Any] = {
                    "id": f"sample-{number}",
                    "channel": channel,
                    "form": form,
                    "metric": metric,
                    "score": _score(metric, mood),
                    "ts": ts,
                    "locale": locale,
                    "respondent": f"customer-{rng.randrange(60)}",
                }
                if rng.random() < 0.55:
                    happy, unhappy = SAMPLE_COMMENTS[locale]
                    event["comment"] = rng.choice(happy if mood >= 0.6 else unhappy)
                if channel == "web":
                    event["tags"] = [rng.choice(("mobile", "desktop"))]
                    event["meta"] = {"plan": rng.choice(("free", "pro"))}
                if channel == "email":
                    campaign = f"weekly-{day // 7 + 1}"
                    while f"{campaign}:{event['respondent']}" in mailed:
                        event["respondent"] = f"customer-{rng.randrange(60)}"
                    mailed.add(f"{campaign}:{event['respondent']}")
                    event["vote_key"] = f"{campaign}:{event['respondent']}"
                    event["meta"] = {"campaign": campaign}
                    if rng.random() < 0.15:  # the recipient changes their vote an hour later
                        yield event
                        number += 1
                        changed = dict(event, id=f"sample-{number}", ts=ts + HOUR_MS)
                        changed["score"] = _score(metric, min(1.0, mood + 0.3))
                        changed.pop("comment", None)
                        event = changed
                yield event
    burst_ts = now_ms - 2 * DAY_MS
    for score in (0, 5, 10):  # every link of one email clicked at once: a scanner
        number += 1
        yield {
            "id": f"sample-{number}",
            "channel": "email",
            "form": "newsletter",
            "metric": "nps",
            "score": score,
            "ts": burst_ts + score,
            "vote_key": "weekly-9:scanned-inbox",
            "respondent": "scanned-inbox",
            "meta": {"campaign": "weekly-9"},
        }


async def seed_sample(service: Service, now_ms: int) -> int:
    """Store :func:`sample_events` in the sample project, through the ingest pipeline (email
    answers judged as rating-link clicks); returns how many were new (0 on a second run).

    Raises:
        ConfigError: an event the core refuses (a bug in the sample, said plainly).
        StoreError: a store that can't take them.
    """
    project = service.registry.project(SAMPLE_PROJECT, reload=True)
    body = msgspec.json.encode({"events": list(sample_events(now_ms))})
    events, rejected = voxloop_core.decode_batch(body)
    policy = Policy(channels=project.channels)
    records, refused = voxloop_core.validate(events, policy, now_ms, project.secret)
    for rejection in rejected + refused:
        raise ConfigError(f"sample event {rejection.index}: {rejection.field}: {rejection.error}")
    settings = service.settings
    rule = VoteRule(
        edit_window_ms=int(settings.email_edit_days * DAY_MS),
        burst_ms=int(settings.email_burst_seconds * 1000),
    )
    stored = 0
    for channel in sorted({record.channel for record in records}):
        batch = [record for record in records if record.channel == channel]
        clicks = rule if channel == "email" else None
        new, _ = await commit(service, project.id, channel, batch, now_ms, rule=clicks)
        stored += new
    return stored
