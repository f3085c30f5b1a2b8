"""The widget under a strict Content-Security-Policy, and among hostile host-page styles."""

from __future__ import annotations

from playwright.sync_api import BrowserContext

from tests.browser import screenshot
from tests.gateway.conftest import Gateway
from tests.widgets.conftest import Host, count, csp_header, embed, radio, rows, violations, visit

THANKS = "Thank you for your feedback!"

HOSTILE = """<style>
* { all: unset !important; }
button, textarea, [role=radio] { display: none !important; }
div { font-size: 40px !important; color: red !important; visibility: hidden; }
.vx, .vx-panel, .vx-scale { display: none !important; }
</style>"""


def test_the_strict_policy_is_enforced(
    context: BrowserContext, gateway: Gateway, host: Host
) -> None:
    """What the next test relies on: this policy really blocks inline styles and scripts."""
    page_html = embed(gateway, data_form="x", head="<style>h1 { color: red }</style>")
    page, watched = visit(
        context, host.serve(page_html, csp_header(gateway)), expected_errors=("Content Security",)
    )
    page.evaluate("document.body.append(Object.assign(document.createElement('style'), {}))")
    assert any("style-src" in v for v in violations(page))
    assert page.locator("h1").evaluate("(el) => getComputedStyle(el).color") != "rgb(255, 0, 0)"


def test_it_works_under_a_strict_csp(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    page_html = embed(gateway, data_form=form, data_target="#slot")
    page, watched = visit(context, host.serve(page_html, csp_header(gateway)))
    # Styled by the gateway's stylesheet (the policy allows no other): rounded, laid out in a row.
    assert radio(page, 0).evaluate("(el) => getComputedStyle(el).borderRadius") == "8px"
    top0, top10 = radio(page, 0).bounding_box(), radio(page, 10).bounding_box()
    assert top0 and top10 and top0["y"] == top10["y"]
    radio(page, 4).click()
    page.get_by_text(THANKS).wait_for()
    page.get_by_role("textbox").fill("ok")
    page.get_by_role("button", name="Send").click()
    page.get_by_role("radiogroup").wait_for(state="hidden")
    assert [r["counted"] for r in rows(gateway, form)] == [0, 1]
    assert count(gateway, form) == 1
    assert violations(page) == []
    assert watched.csp_violations == []
    watched.assert_clean()


def test_hostile_page_styles_neither_break_it_nor_get_in(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    page_html = embed(
        gateway,
        data_form=form,
        data_target="#slot",
        head=HOSTILE,
        body='<button id="own" class="vx-send">the page\'s own button</button>',
    )
    page, watched = visit(context, host.serve(page_html))
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('[data-voxloop]').shadowRoot"
        ".querySelector('.vx')).visibility === 'visible'"
    )
    box = radio(page, 10).bounding_box()
    assert box and box["width"] > 20 and box["height"] > 20
    question = page.locator("[data-voxloop] .vx-q")
    assert question.evaluate("(el) => getComputedStyle(el).fontSize") != "40px"
    assert question.evaluate("(el) => getComputedStyle(el).color") != "rgb(255, 0, 0)"
    screenshot(page, "widget-hostile-css")
    radio(page, 10).click()
    page.get_by_text(THANKS).wait_for()
    assert page.get_by_role("textbox").is_visible()
    # Nothing leaks out: the page's button with the widget's class name keeps the page's look.
    own = page.locator("#own").evaluate("(el) => getComputedStyle(el).backgroundColor")
    assert own != "rgb(31, 95, 191)"
    assert [r["score"] for r in rows(gateway, form)] == [10]
    watched.assert_clean()
