"""Frequency control (not asked again for N days after an answer or a dismissal) and sampling."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.gateway.conftest import Gateway
from tests.widgets.conftest import Host, count, embed, radio, rows, shown, visit
from voxloop_core import DAY_MS

THANKS = "Thank you for your feedback!"


def storage(page: Page, name: str) -> dict[str, float]:
    """One of the widget's localStorage records (``seen``, ``draw``, ``vote``)."""
    found: dict[str, float] = json.loads(
        page.evaluate("(n) => localStorage.getItem('voxloop:' + n)", name) or "{}"
    )
    return found


def set_storage(page: Page, name: str, value: dict[str, float]) -> None:
    page.evaluate("([n, v]) => localStorage.setItem('voxloop:' + n, v)", [name, json.dumps(value)])


def reload(page: Page) -> None:
    page.reload()
    page.wait_for_function("() => window.voxloop && window.voxloop.version")


def days_ago(page: Page, days: float) -> float:
    now: float = page.evaluate("Date.now()")
    return now - days * DAY_MS


def test_answered_not_shown_again_until_the_days_have_passed(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    page, watched = visit(context, host.serve(embed(gateway, data_form=form, data_target="#slot")))
    radio(page, 9).click()
    page.get_by_text(THANKS).wait_for()
    first_vote = storage(page, "vote")[form]
    reload(page)
    assert not shown(page)

    set_storage(page, "seen", {form: days_ago(page, 89)})
    reload(page)
    assert not shown(page), "the default is 90 days"

    set_storage(page, "seen", {form: days_ago(page, 91)})
    reload(page)
    assert shown(page)
    radio(page, 2).click()
    page.get_by_text(THANKS).wait_for()
    assert storage(page, "vote")[form] != first_vote, "a new round is a new answer"
    assert [(r["score"], r["counted"]) for r in rows(gateway, form)] == [(9, 1), (2, 1)]
    assert count(gateway, form) == 2
    watched.assert_clean()


def test_dismissed_not_shown_again(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    page_html = embed(gateway, data_form=form, data_target="#slot", data_days="30")
    page, watched = visit(context, host.serve(page_html))
    page.get_by_role("button", name="Close").click()
    assert not shown(page)
    reload(page)
    assert not shown(page)
    set_storage(page, "seen", {form: days_ago(page, 29)})
    reload(page)
    assert not shown(page), "data-days=30"
    set_storage(page, "seen", {form: days_ago(page, 31)})
    reload(page)
    assert shown(page)
    assert rows(gateway, form) == []
    watched.assert_clean()


@pytest.mark.parametrize(("sample", "expected"), [("0", False), ("1", True)])
def test_sample_never_or_always(
    context: BrowserContext, gateway: Gateway, host: Host, form: str, sample: str, expected: bool
) -> None:
    page_html = embed(gateway, data_form=form, data_target="#slot", data_sample=sample)
    page, watched = visit(context, host.serve(page_html))
    for _ in range(3):
        assert shown(page) is expected
        set_storage(page, "draw", {})  # a fresh visitor draws again
        reload(page)
    watched.assert_clean()


def test_the_sampling_draw_is_remembered(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    inside = host.serve(embed(gateway, data_form=form, data_target="#slot", data_sample="0.6"))
    outside = host.serve(embed(gateway, data_form=form, data_target="#slot", data_sample="0.4"))
    page, watched = visit(context, inside)
    draw = storage(page, "draw")[form]
    assert 0 <= draw < 1
    assert shown(page) is (draw < 0.6)
    reload(page)
    assert storage(page, "draw")[form] == draw, "decided once per visitor and form"

    set_storage(page, "draw", {form: 0.5})
    reload(page)
    assert shown(page)
    page.goto(outside)
    page.wait_for_function("() => window.voxloop && window.voxloop.version")
    assert not shown(page)
    watched.assert_clean()
