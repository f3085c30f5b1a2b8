"""The dashboard's language: which one a page speaks, and its numbers and dates.

A page's language comes from ``?lang=``, then the browser's ``Accept-Language``, then English:
the rule of the rating pages (:func:`.rating.pick_language`). The digits and the direction of
each language are the SDK's (:mod:`voxloop.i18n`), so a score reads the same in an email, on its
rating page and on the dashboard; the separators (CLDR's: ``1,234.5``, ``1.234,5``, ``١٬٢٣٤٫٥``,
``۱٬۲۳۴٫۵``) and the month names are this module's. Times are shown in UTC, as the API gives
them; the page says so once.

The chart script formats its axes with the browser's ``Intl`` in the same language and
numbering system (:attr:`Locale.numbering`), so the chart and the page agree. The words
themselves are :mod:`.app_words`'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from starlette.requests import Request

from voxloop.i18n import STRINGS

from .app_words import WORDS, Words
from .rating import pick_language

__all__ = ["NO_NUMBER", "Locale", "locale_of"]

#: Per language: the decimal separator, the group separator, the minus sign (CLDR's, with
#: the bidi mark Arabic and Persian put before it), and the numbering system's name in ``Intl``.
_NUMBERS: Final[dict[str, tuple[str, str, str, str]]] = {
    "en": (".", ",", "-", "latn"),
    "id": (",", ".", "-", "latn"),
    "ar": ("\u066b", "\u066c", "\u061c-", "arab"),
    "fa": ("\u066b", "\u066c", "\u200e\u2212", "arabext"),
}
_MONTHS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
    "ar": (
        "يناير",
        "فبراير",
        "مارس",
        "أبريل",
        "مايو",
        "يونيو",
        "يوليو",
        "أغسطس",
        "سبتمبر",
        "أكتوبر",
        "نوفمبر",
        "ديسمبر",
    ),
    "fa": (
        "ژانویه",
        "فوریه",
        "مارس",
        "آوریل",
        "مه",
        "ژوئن",
        "ژوئیه",
        "اوت",
        "سپتامبر",
        "اکتبر",
        "نوامبر",
        "دسامبر",
    ),
}
#: How a date and a time join: ``23 Nov 2026, 10:00``; Indonesian writes ``10.00``.
_JOIN: Final[dict[str, tuple[str, str]]] = {
    "en": (", ", ":"),
    "id": (" ", "."),
    "ar": ("، ", ":"),
    "fa": ("، ", ":"),
}
#: What stands for a number that doesn't exist (a score without responses).
NO_NUMBER: Final = "–"


@dataclass(frozen=True, slots=True)
class Locale:
    """One page's language: its words, direction, and how it writes numbers and dates."""

    language: str
    asked: bool
    """The language came from ``?lang=``, so the page's links carry it on."""

    @property
    def words(self) -> Words:
        return WORDS[self.language]

    @property
    def direction(self) -> Literal["ltr", "rtl"]:
        return STRINGS[self.language].direction

    @property
    def numbering(self) -> str:
        """The numbering system, as ``Intl.NumberFormat``'s ``numberingSystem`` takes it."""
        return _NUMBERS[self.language][3]

    def digits(self, text: str) -> str:
        """``text`` with its ASCII digits written in the language's digits (the SDK's)."""
        return text.translate(str.maketrans("0123456789", STRINGS[self.language].digits))

    def number(self, value: float | None, decimals: int = 0) -> str:
        """``value`` with ``decimals`` decimals, grouped by thousands, in the language's way.

        ``None`` (a score without enough responses) is :data:`NO_NUMBER`.
        """
        if value is None:
            return NO_NUMBER
        point, group, minus, _ = _NUMBERS[self.language]
        text = f"{abs(value):,.{decimals}f}"
        text = text.replace(",", "\0").replace(".", point).replace("\0", group)
        sign = minus if value < 0 and text.strip("0.,\u066b\u066c") else ""
        return sign + self.digits(text)

    def score(self, value: float | None) -> str:
        """A score or a bound of its interval: one decimal, as the API rounds it."""
        return self.number(value, 1)

    def interval(self, low: float | None, high: float | None) -> str:
        """The interval ``low–high``, or :data:`NO_NUMBER` when it isn't known."""
        if low is None or high is None:
            return NO_NUMBER
        return f"{self.score(low)} – {self.score(high)}"

    def date(self, ms: int) -> str:
        """The UTC day of ``ms`` (epoch milliseconds): ``23 Nov 2026``."""
        moment = datetime.fromtimestamp(ms / 1000, UTC)
        month = _MONTHS[self.language][moment.month - 1]
        return self.digits(f"{moment.day} {month} {moment.year}")

    def datetime(self, ms: int) -> str:
        """The UTC time of ``ms``: ``23 Nov 2026, 10:05``."""
        moment = datetime.fromtimestamp(ms / 1000, UTC)
        comma, colon = _JOIN[self.language]
        return self.date(ms) + comma + self.digits(f"{moment.hour:02d}{colon}{moment.minute:02d}")

    def metric(self, metric: str) -> str:
        return self.words.metrics.get(metric, metric)

    def channel(self, channel: str) -> str:
        """A built-in channel's name in the language; a project's own channel as it is."""
        return self.words.channels.get(channel, channel)


def locale_of(request: Request) -> Locale:
    """The language of the page ``request`` asks for: ``?lang=``, then ``Accept-Language``."""
    asked = request.query_params.get("lang")
    language = pick_language(asked, request.headers.get("accept-language"))
    return Locale(language, asked is not None and language == asked.split("-")[0].lower())
