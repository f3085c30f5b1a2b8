"""The emails voxloop sends, rendered: alerts, breach escalations, digests and the operator's test.

Each function takes the recipient's language and plain values, and returns an :class:`Email`
(subject, plain text, HTML) that :func:`~.outbox.enqueue_email` writes as it is. The languages
are the dashboard's (en, ar, fa, id; any other tag is English), with its numbers, dates, metric
and channel names (:class:`~..pages.app_i18n.Locale`) and this package's words
(:mod:`.mail_words`). Arabic and Persian HTML says ``dir="rtl"`` and its ``lang``.

The templates are under ``templates/`` beside this module: ``NAME.txt`` and ``NAME.html`` per
email, each extending its ``layout``. HTML is autoescaped, so a comment such as
``<script>`` arrives as text; plain text is not (it is text). Links point at the dashboard
under ``base_url`` (``Settings.base_url``) and carry the email's language (``?lang=``); without
a ``base_url`` an email has no links.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple
from urllib.parse import quote, urlencode

import jinja2
import msgspec

from voxloop.i18n import STRINGS, language_of
from voxloop_core import DAY_MS, HOUR_MS

from ..pages.app_i18n import Locale
from .mail_words import MAIL_WORDS, MailWords

__all__ = [
    "EXCERPT_CHARS",
    "FOLLOWUP_PATH",
    "TEMPLATE_DIR",
    "DigestContent",
    "Email",
    "OpenItem",
    "ScoreTrend",
    "aggregate_email",
    "alert_email",
    "breach_email",
    "digest_email",
    "test_email",
]

#: Where the email templates are, in the source tree and in an installed wheel alike.
TEMPLATE_DIR: Final = Path(__file__).resolve().parent / "templates"
#: The dashboard's pages the emails link to (path parameters quoted).
OVERVIEW_PATH: Final = "/app/{project}/"
RESPONSE_PATH: Final = "/app/{project}/responses/{ref}"
FOLLOWUP_PATH: Final = "/app/{project}/followups/{item}"
#: The most of a comment an email quotes: enough to judge it, the dashboard has the rest.
EXCERPT_CHARS: Final = 500
#: Runs of blank lines the templates' optional parts leave in plain text: one is enough.
_BLANK_LINES: Final = re.compile(r"\n{3,}")
#: How long each period of an aggregate alert is.
PERIOD_MS: Final[Mapping[str, int]] = {"hour": HOUR_MS, "day": DAY_MS, "week": 7 * DAY_MS}

Frequency = Literal["daily", "weekly"]


class Email(NamedTuple):
    """One email as the outbox keeps it: its subject (one line), plain text and HTML."""

    subject: str
    text: str
    html: str


class ScoreTrend(msgspec.Struct, frozen=True, kw_only=True):
    """One metric of one channel in a digest: its score over the period and the one before.

    Scores are as ``/v1/stats`` rounds them (None without enough answers).
    """

    channel: str
    metric: str
    score: float | None
    count: int
    previous_score: float | None
    previous_count: int

    @property
    def change(self) -> float | None:
        """The score minus the previous one, to 1 decimal; None unless both exist."""
        if self.score is None or self.previous_score is None:
            return None
        return round(self.score - self.previous_score, 1)


class OpenItem(msgspec.Struct, frozen=True, kw_only=True):
    """A follow-up item that needs action, as a digest lists it."""

    id: str
    channel: str
    form: str
    metric: str
    score: int
    excerpt: str | None
    status: str
    due_ms: int
    assignee: str | None


class DigestContent(msgspec.Struct, frozen=True, kw_only=True):
    """What one digest says: the scores of the period ``[start_ms, end_ms)`` against the period
    before, per channel, and the open follow-ups (the first few, and how many there are), as of
    ``now_ms``. ``scores`` None: the recipient may not see the dashboard; ``items`` None: nor
    the follow-up inbox."""

    project: str
    frequency: Frequency
    start_ms: int
    end_ms: int
    now_ms: int
    scores: list[ScoreTrend] | None
    items: list[OpenItem] | None
    open_count: int
    overdue_count: int


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # the templates are part of the release, read once
    )


#: The one template loader of the emails, made once at import.
_TEMPLATES: Final = _environment()


class _Speech(NamedTuple):
    """The language an email is written in: the dashboard's locale and the emails' words."""

    locale: Locale
    words: MailWords


def _speech(lang: str) -> _Speech:
    language = language_of(lang) or "en"
    return _Speech(Locale(language, asked=True), MAIL_WORDS[language])


def _render(
    speech: _Speech,
    name: str,
    *,
    subject: str,
    title: str,
    project: str,
    base_url: str | None,
    context: Mapping[str, Any],
) -> Email:
    """The email ``name``: its text and HTML templates with ``context`` and the layout's values."""
    locale, w = speech
    shared = {
        "language": locale.language,
        "direction": locale.direction,
        "start": "right" if locale.direction == "rtl" else "left",
        "title": title,
        "project": project,
        "w": w,
        "words": locale.words,
        "footer": w.footer.format(url=base_url) if base_url else w.footer_bare,
        **context,
    }
    text = _BLANK_LINES.sub("\n\n", _TEMPLATES.get_template(f"{name}.txt").render(shared))
    page = _TEMPLATES.get_template(f"{name}.html").render(shared)
    return Email(" ".join(subject.split()), text, page)


def _url(base_url: str | None, path: str, lang: str, **params: str) -> str | None:
    """``path`` on the dashboard at ``base_url``, in the email's language; None without a base."""
    if not base_url:
        return None
    query = urlencode({**params, "lang": lang})
    return f"{base_url.rstrip('/')}{path}?{query}"


def _quoted(text: str) -> str:
    return quote(text, safe="")


def _excerpt(comment: str | None) -> str | None:
    """``comment`` cut to :data:`EXCERPT_CHARS`, or None when there is none."""
    if comment is None or not comment.strip():
        return None
    text = comment.strip()
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"


def _score_of_one(locale: Locale, metric: str, score: int) -> str:
    """One response's score as the rating pages write it: digits, or 👎/👍's words."""
    try:
        return STRINGS[locale.language].score_label(metric, score)
    except IndexError:  # not a thumbs score: written as a number
        return locale.number(score)


def _where(locale: Locale, channel: str | None, form: str | None) -> list[tuple[str, str]]:
    words = locale.words
    return [
        (words.channel, locale.channel(channel) if channel else words.all),
        (words.form, form or words.all),
    ]


# --- alerts ---------------------------------------------------------------------------------


def alert_email(
    lang: str,
    *,
    project: str,
    rule: str,
    channel: str,
    form: str,
    metric: str,
    score: int,
    comment: str | None,
    at_ms: int,
    respondent: str | None = None,
    ref: str | None = None,
    base_url: str | None = None,
) -> Email:
    """The email of an alert rule matched by one response.

    Args:
        lang: the recipient's language (a BCP 47 tag; unknown ones get English).
        project: the response's project.
        rule: the alert rule's name.
        channel, form, metric, score, comment: the response.
        at_ms: when it was answered (epoch ms).
        respondent: its respondent's pseudonym, when it has one.
        ref: its reference (``reading.formats.ref_of``), for the link to its page.
        base_url: the dashboard's address (``Settings.base_url``); None: no link.
    """
    speech = _speech(lang)
    locale, w = speech
    words = locale.words
    shown = _score_of_one(locale, metric, score)
    facts = [
        (w.project, project),
        (w.rule, rule),
        *_where(locale, channel, form),
        (words.metric, locale.metric(metric)),
        (words.score, shown),
        (words.received, locale.datetime(at_ms)),
    ]
    if respondent:
        facts.append((words.respondent, respondent))
    link = None
    if ref is not None:
        link = _url(
            base_url,
            RESPONSE_PATH.format(project=_quoted(project), ref=_quoted(ref)),
            locale.language,
        )
    subject = w.alert_subject.format(
        project=project,
        rule=rule,
        metric=locale.metric(metric),
        score=shown,
        channel=locale.channel(channel),
    )
    return _render(
        speech,
        "alert",
        subject=subject,
        title=w.alert_title.format(rule=rule),
        project=project,
        base_url=base_url,
        context={
            "intro": w.alert_intro.format(rule=rule),
            "facts": facts,
            "comment": _excerpt(comment),
            "link": link,
            "link_text": w.open_response,
        },
    )


def aggregate_email(
    lang: str,
    *,
    project: str,
    rule: str,
    kind: Literal["score_drop", "volume_spike"],
    metric: str,
    channel: str | None,
    form: str | None,
    period: Literal["hour", "day", "week"],
    start_ms: int,
    score: float | None,
    count: int,
    previous_score: float | None,
    previous_count: int,
    base_url: str | None = None,
) -> Email:
    """The email of an alert on aggregates: a score that dropped, or a spike of responses.

    Args:
        lang: the recipient's language.
        project: the project.
        rule: the alert rule's name.
        kind: ``score_drop`` or ``volume_spike``.
        metric, channel, form: what the rule watches (channel, form None: all of them).
        period: ``hour``, ``day`` or ``week``; the period compared starts at ``start_ms``,
            the one before it a period earlier.
        score, count: the period's score (as ``/v1/stats`` rounds it) and answers.
        previous_score, previous_count: the previous period's.
        base_url: the dashboard's address; None: no link.
    """
    speech = _speech(lang)
    locale, w = speech
    words = locale.words
    previous = w.previous_periods[period]
    if kind == "score_drop":
        intro = w.drop_intro.format(metric=locale.metric(metric), previous=previous)
        subject = w.drop_subject.format(
            project=project, rule=rule, metric=locale.metric(metric), score=locale.score(score)
        )
    else:
        intro = w.spike_intro.format(previous=previous)
        subject = w.spike_subject.format(project=project, rule=rule, count=locale.number(count))
    rows = [
        (w.this_period, locale.datetime(start_ms), locale.score(score), locale.number(count)),
        (
            w.previous_period,
            locale.datetime(start_ms - PERIOD_MS[period]),
            locale.score(previous_score),
            locale.number(previous_count),
        ),
    ]
    facts = [
        (w.project, project),
        (w.rule, rule),
        *_where(locale, channel, form),
        (words.metric, locale.metric(metric)),
    ]
    link = _url(
        base_url, OVERVIEW_PATH.format(project=_quoted(project)), locale.language, metric=metric
    )
    return _render(
        speech,
        "aggregate",
        subject=subject,
        title=w.alert_title.format(rule=rule),
        project=project,
        base_url=base_url,
        context={
            "intro": intro,
            "facts": facts,
            "rows": rows,
            "link": link,
            "link_text": w.open_dashboard,
        },
    )


def breach_email(
    lang: str,
    *,
    project: str,
    item: str,
    rule: str,
    sla_hours: int,
    channel: str,
    form: str,
    metric: str,
    score: int,
    excerpt: str | None,
    status: str,
    assignee: str | None,
    created_ms: int,
    due_ms: int,
    base_url: str | None = None,
) -> Email:
    """The escalation email of a follow-up item whose SLA ran out.

    Args:
        lang: the recipient's language.
        project: the item's project.
        item: the item's id, for the link to it.
        rule: the name of the rule that made it; ``sla_hours`` its SLA.
        channel, form, metric, score, excerpt: the response it is about.
        status: its status (``new``, ``assigned``, ``in_progress``...).
        assignee: its assignee's email, None when nobody has it.
        created_ms, due_ms: when it was made and when it was due.
        base_url: the dashboard's address; None: no link.
    """
    speech = _speech(lang)
    locale, w = speech
    words = locale.words
    shown = _score_of_one(locale, metric, score)
    facts = [
        (w.project, project),
        *_where(locale, channel, form),
        (words.metric, locale.metric(metric)),
        (words.score, shown),
        (w.opened, locale.datetime(created_ms)),
        (w.due, locale.datetime(due_ms)),
        (w.status, words.statuses.get(status, status)),
        (w.assignee, assignee or w.nobody),
    ]
    subject = w.breach_subject.format(
        project=project, metric=locale.metric(metric), score=shown, channel=locale.channel(channel)
    )
    link = _url(
        base_url,
        FOLLOWUP_PATH.format(project=_quoted(project), item=_quoted(item)),
        locale.language,
    )
    return _render(
        speech,
        "breach",
        subject=subject,
        title=w.breach_title,
        project=project,
        base_url=base_url,
        context={
            "intro": w.breach_intro.format(hours=locale.number(sla_hours), rule=rule),
            "facts": facts,
            "comment": _excerpt(excerpt),
            "link": link,
            "link_text": w.open_item,
        },
    )


# --- the digest -----------------------------------------------------------------------------


class _ScoreRow(NamedTuple):
    channel: str
    metric: str
    score: str
    answers: str
    previous: str
    change: str
    line: str  # all of it, as plain text writes it


class _ItemRow(NamedTuple):
    title: str
    when: str
    overdue: bool
    excerpt: str | None
    link: str | None


def _change(speech: _Speech, change: float | None) -> str:
    locale, w = speech
    if change is None:
        return locale.score(None)
    if change == 0:
        return w.trend_same
    return (w.trend_up if change > 0 else w.trend_down).format(locale.score(abs(change)))


def _score_rows(speech: _Speech, scores: Sequence[ScoreTrend], before: str) -> list[_ScoreRow]:
    locale, w = speech
    rows = []
    for s in scores:
        channel, metric = locale.channel(s.channel), locale.metric(s.metric)
        score, answers = locale.score(s.score), locale.number(s.count)
        previous, change = locale.score(s.previous_score), _change(speech, s.change)
        line = w.score_line.format(
            channel=channel,
            metric=metric,
            score=score,
            responses=locale.words.count,
            count=answers,
            before=before,
            previous=previous,
            change=w.change,
            trend=change,
        )
        rows.append(_ScoreRow(channel, metric, score, answers, previous, change, line))
    return rows


def _item_rows(
    speech: _Speech, content: DigestContent, base_url: str | None
) -> list[_ItemRow] | None:
    if content.items is None:
        return None
    locale, w = speech
    rows = []
    for item in content.items:
        overdue = item.due_ms <= content.now_ms
        when = (w.overdue_since if overdue else w.due_on).format(locale.datetime(item.due_ms))
        title = " · ".join(
            [
                locale.words.statuses.get(item.status, item.status),
                f"{locale.metric(item.metric)} {_score_of_one(locale, item.metric, item.score)}",
                f"{locale.channel(item.channel)} / {item.form}",
                item.assignee or w.nobody,
            ]
        )
        path = FOLLOWUP_PATH.format(project=_quoted(content.project), item=_quoted(item.id))
        link = _url(base_url, path, locale.language)
        rows.append(_ItemRow(title, when, overdue, _excerpt(item.excerpt), link))
    return rows


def digest_email(lang: str, content: DigestContent, *, base_url: str | None = None) -> Email:
    """The digest of a project for one recipient: its scores per channel with their trend, and
    the follow-ups that need action.

    Args:
        lang: the recipient's language.
        content: what the digest says (see :mod:`.digest`).
        base_url: the dashboard's address; None: no links.
    """
    speech = _speech(lang)
    locale, w = speech
    frequency = content.frequency
    first_day = locale.date(content.start_ms)
    if frequency == "daily":
        period = first_day
    else:
        period = w.digest_period.format(start=first_day, end=locale.date(content.end_ms - 1))
    subject = w.digest_subjects[frequency].format(project=content.project, date=first_day)
    items_count = w.items_count.format(
        open=locale.number(content.open_count), overdue=locale.number(content.overdue_count)
    )
    shown = len(content.items or ())
    before = w.before[frequency]
    return _render(
        speech,
        "digest",
        subject=subject,
        title=w.digest_titles[frequency],
        project=content.project,
        base_url=base_url,
        context={
            "period": period,
            "scores": None
            if content.scores is None
            else _score_rows(speech, content.scores, before),
            "before": before,
            "items": _item_rows(speech, content, base_url),
            "items_count": items_count,
            "items_shown": w.items_shown.format(shown=locale.number(shown)),
            "more": content.open_count > shown,
            "link": _url(
                base_url, OVERVIEW_PATH.format(project=_quoted(content.project)), locale.language
            ),
            "link_text": w.open_dashboard,
        },
    )


# --- the operator's test --------------------------------------------------------------------


def test_email(lang: str, *, server: str, base_url: str | None = None) -> Email:
    """The email ``voxloop-gateway mail test`` sends through ``server`` (``host:port``)."""
    speech = _speech(lang)
    w = speech.words
    return _render(
        speech,
        "test",
        subject=w.test_subject,
        title=w.test_subject,
        project="voxloop",
        base_url=base_url,
        context={"intro": w.test_text.format(server=server)},
    )
