"""The dashboard's words, numbers and dates in each language (``pages/app_i18n.py``)."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

import pytest
from starlette.requests import Request

from voxloop.i18n import LANGUAGES, STRINGS
from voxloop_core import INTERVALS, METRIC_RANGES
from voxloop_gateway.pages.app_i18n import NO_NUMBER, Locale, locale_of
from voxloop_gateway.pages.app_words import LANGUAGE_NAMES, WORDS
from voxloop_gateway.reading.params import HELD_VALUES

NUMBERS = {
    "en": ("1,234.5", "-48.5", "12"),
    "id": ("1.234,5", "-48,5", "12"),
    "ar": ("١٬٢٣٤٫٥", "\u061c-٤٨٫٥", "١٢"),
    "fa": ("۱٬۲۳۴٫۵", "\u200e\u2212۴۸٫۵", "۱۲"),
}
MOMENT = int(datetime(2026, 11, 23, 9, 5, tzinfo=UTC).timestamp() * 1000)
DATES = {
    "en": "23 Nov 2026, 09:05",
    "id": "23 Nov 2026 09.05",
    "ar": "٢٣ نوفمبر ٢٠٢٦، ٠٩:٠٥",
    "fa": "۲۳ نوامبر ۲۰۲۶، ۰۹:۰۵",
}


def test_every_language_of_the_sdk_has_the_dashboards_words() -> None:
    assert set(WORDS) == set(LANGUAGES) == set(LANGUAGE_NAMES)
    english = WORDS["en"]
    for language, words in WORDS.items():
        for field in fields(words):
            value, model = getattr(words, field.name), getattr(english, field.name)
            assert value, (language, field.name)
            if isinstance(model, dict):
                assert set(value) == set(model), (language, field.name)
            if isinstance(model, str):
                assert value.count("{}") == model.count("{}"), (language, field.name)
    assert set(english.metrics) == set(METRIC_RANGES)
    assert set(english.intervals) == set(INTERVALS)
    assert set(english.held_options) == set(HELD_VALUES)


@pytest.mark.parametrize("language", list(NUMBERS))
def test_numbers_are_written_with_the_languages_digits_and_separators(language: str) -> None:
    locale = Locale(language, asked=False)
    thousands, negative, whole = NUMBERS[language]
    assert locale.number(1234.5, 1) == thousands
    assert locale.score(-48.5) == negative
    assert locale.number(12) == whole
    assert locale.score(None) == NO_NUMBER
    assert locale.number(-0.04, 1) == locale.number(0, 1)  # no minus on a rounded zero
    assert locale.interval(-48.5, 12.0) == f"{negative} – {locale.score(12.0)}"
    assert locale.interval(None, 3.0) == NO_NUMBER


@pytest.mark.parametrize("language", list(DATES))
def test_dates_are_in_utc_in_the_languages_words_and_digits(language: str) -> None:
    locale = Locale(language, asked=False)
    assert locale.datetime(MOMENT) == DATES[language]
    assert locale.direction == STRINGS[language].direction


def _request(query: str = "", accept: str | None = None) -> Request:
    headers = [(b"accept-language", accept.encode())] if accept else []
    scope = {"type": "http", "method": "GET", "path": "/app/", "query_string": query.encode()}
    return Request({**scope, "headers": headers})


@pytest.mark.parametrize(
    ("query", "accept", "language", "asked"),
    [
        ("lang=fa", "ar", "fa", True),
        ("", "ar-EG,en;q=0.8", "ar", False),
        ("lang=pt", "id-ID", "id", False),
        ("", None, "en", False),
    ],
    ids=["asked", "browser", "unknown-asked", "default"],
)
def test_the_language_is_the_one_asked_for_then_the_browsers(
    query: str, accept: str | None, language: str, asked: bool
) -> None:
    found = locale_of(_request(query, accept))
    assert (found.language, found.asked) == (language, asked)
