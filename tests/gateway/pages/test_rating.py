"""The email rating pages' templates: every page in every language, and hostile values.

Rendered here without a server; ``tests/gateway/test_rating.py`` drives the same pages through a
real gateway and a browser.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import HTMLResponse

from tests.gateway.conftest import Gateway
from tests.gateway.test_rating import Mailing
from voxloop.i18n import LANGUAGES, STRINGS, Strings
from voxloop_core import METRIC_RANGES
from voxloop_gateway.pages import rating
from voxloop_gateway.pages.rating import (
    PAGE_HEADERS,
    WORDS,
    PageWords,
    comment_page,
    pick_language,
    problem_page,
    vote_page,
)

from .conftest import HOSTILE, assert_shown_as_text, parse

#: Every page, by name: what renders it for a language, a metric, a score and a text given.
PAGES = {
    "vote": lambda req, lang, metric, score, text: vote_page(req, lang, metric, score, text),
    "vote-recorded": lambda req, lang, metric, score, text: vote_page(
        req, lang, metric, score, text, recorded=True
    ),
    "comment": lambda req, lang, metric, score, text: comment_page(req, lang, metric, score),
    "forged": lambda req, lang, metric, score, text: problem_page(req, lang, 403, text),
    "expired": lambda req, lang, metric, score, text: problem_page(req, lang, 410, text),
    "unavailable": lambda req, lang, metric, score, text: problem_page(req, lang, 503, text),
}
STATUS = {"forged": 403, "expired": 410, "unavailable": 503}


def render(http_request: Request, page: str, *args: Any) -> HTMLResponse:
    answer: HTMLResponse = PAGES[page](http_request, *args)
    return answer


def test_the_pages_speak_the_sdks_languages() -> None:
    assert sorted(WORDS) == sorted(LANGUAGES)
    assert pick_language(None, "fa-IR;q=0.9, en;q=0.8") == "fa"
    assert pick_language("AR-eg", "id") == "ar"
    assert pick_language('"><b>', "pt-BR, de") == "en"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_page_renders_in_every_language(
    http_request: Request, page: str, language: str
) -> None:
    strings = STRINGS[language]
    for metric, (low, high) in METRIC_RANGES.items():
        for score in (low, high):
            answer = render(http_request, page, language, metric, score, "view-1")
            assert answer.status_code == STATUS.get(page, 200)
            assert {name: answer.headers[name] for name in PAGE_HEADERS} == PAGE_HEADERS
            parsed = parse(bytes(answer.body))
            assert parsed.root() == {"lang": language, "dir": strings.direction}
            texts = [text.strip() for text in parsed.texts]
            if page in STATUS:
                continue
            assert strings.questions[metric] in texts
            assert strings.score_label(metric, score) in texts


def test_the_vote_page_shows_the_state_it_is_in(http_request: Request) -> None:
    pending = parse(bytes(vote_page(http_request, "ar", "nps", 9, "v-1").body))
    recorded = parse(bytes(vote_page(http_request, "ar", "nps", 9, "v-1", recorded=True).body))
    for parsed, state, shown in [
        (pending, "pending", "to_confirm"),
        (recorded, "recorded", "recorded"),
    ]:
        attributes = dict(parsed.elements)
        assert attributes["main"]["data-state"] == state
        assert getattr(WORDS["ar"], shown) in parsed.texts
    forms = [attrs for tag, attrs in pending.elements if tag == "form"]
    assert ["hidden" in attrs for attrs in forms] == [False, True]
    forms = [attrs for tag, attrs in recorded.elements if tag == "form"]
    assert ["hidden" in attrs for attrs in forms] == [True, False]


def make_hostile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every word of the pages, and every question and thumbs word, made :data:`HOSTILE`."""
    words = PageWords(**{name.name: HOSTILE for name in dataclasses.fields(PageWords)})
    strings = {}
    for language, real in STRINGS.items():
        monkeypatch.setitem(WORDS, language, words)
        questions = {metric: HOSTILE for metric in real.questions}
        strings[language] = Strings(real.rtl, real.digits, questions, real.anchors, (HOSTILE,) * 2)
    monkeypatch.setattr(rating, "STRINGS", strings)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_hostile_value_is_shown_as_text_on_every_page(
    http_request: Request, page: str, language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The question (thumbs: the score's word too), every word, the view and the detail.
    benign = parse(bytes(render(http_request, page, language, "thumbs", 1, "benign").body))
    make_hostile(monkeypatch)
    raw = bytes(render(http_request, page, language, "thumbs", 1, HOSTILE).body).decode()
    hostile = parse(raw)
    assert_shown_as_text(hostile, benign, raw)
    assert HOSTILE in hostile.texts  # whole, in an element of its own: the title, the h1


@pytest.fixture
def mailing(gateway: Gateway) -> Mailing:
    return Mailing(gateway)


def test_a_hostile_comment_is_stored_never_shown(mailing: Mailing) -> None:
    link = mailing.links()[4]
    with httpx.Client(base_url=mailing.gateway.url) as client:
        page = client.get(mailing.path(link)).text
        view = page.split('data-view="', 1)[1].split('"', 1)[0]
        answer = client.post(mailing.path(link), data={"view": view, "comment": HOSTILE})
    assert answer.status_code == 200
    assert HOSTILE not in answer.text and "<script>alert" not in answer.text
    assert dict(parse(answer.text).elements)["main"]["data-state"] == "commented"
    ((score, counted, _, comment),) = mailing.rows()
    assert (score, counted) == (4, 1) and "<script>alert" in comment


def test_a_hostile_field_name_in_a_form_post_is_escaped_in_the_error_page(
    mailing: Mailing,
) -> None:
    link = mailing.links()[4]
    with httpx.Client(base_url=mailing.gateway.url) as client:
        answer = client.post(mailing.path(link), data={"view": "v-1", HOSTILE: "1"})
    assert answer.status_code == 400
    parsed = parse(answer.text)
    assert "<script>alert" not in answer.text
    assert any(HOSTILE in text for text in parsed.texts)
    assert [tag for tag, _ in parsed.elements].count("script") == 1  # the page's own
    assert mailing.rows() == []
