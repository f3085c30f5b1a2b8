"""axe-core on pages embedding the widget: 0 serious or critical violations, shadow roots included.

For each metric, in English and in Arabic (right to left), a page with the form inline and the
floating button: checked closed, open, answered (the thank-you and the comment box), and finished
(the comment sent), under the strict CSP. axe runs without preloading the page's CSS: the widget's
stylesheet, from the gateway's origin in a shadow root, is one it can't read (see
``assert_accessible``).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser import assert_accessible, screenshot
from tests.gateway.conftest import Gateway
from tests.widgets.conftest import Host, csp_header, rows, visit

METRICS = ("nps", "csat", "ces", "likert", "thumbs")
THANKS = {"en": "Thank you for your feedback!", "ar": "شكرًا لك على ملاحظاتك!"}
OPEN = {"en": "Feedback", "ar": "رأيك"}
SEND = {"en": "Send", "ar": "إرسال"}


def _page(gw: Gateway, form: str, metric: str, lang: str) -> str:
    """A host page with the form of ``metric`` inline in ``#slot`` and as the floating button."""
    rtl = ' dir="rtl"' if lang == "ar" else ""
    script = (
        f'<script src="{gw.url}/widgets/v1/voxloop.js" data-key="{gw.site_key}"'
        f' data-metric="{metric}" data-form="{form}-{{how}}"{{target}} async></script>'
    )
    inline = script.format(how="inline", target=' data-target="#slot"')
    floating = script.format(how="floating", target="")
    return (
        f'<!doctype html><html lang="{lang}"{rtl}><head><meta charset="utf-8">'
        f"<title>shop</title>{inline}{floating}</head>"
        '<body><main><h1>Checkout</h1><div id="slot"></div></main></body></html>'
    )


def _shown(page: Page, lang: str) -> None:
    """Wait until both forms have drawn themselves, their stylesheet loaded."""
    expect(page.locator("[data-voxloop]")).to_have_count(2)
    expect(page.get_by_role("button", name=OPEN[lang])).to_be_visible()
    expect(page.locator("[data-voxloop$='-inline'] [role=radio]").first).to_be_visible()


@pytest.mark.parametrize("lang", ["en", "ar"])
@pytest.mark.parametrize("metric", METRICS)
def test_the_widget_inline_and_floating(
    context: BrowserContext, gateway: Gateway, host: Host, form: str, metric: str, lang: str
) -> None:
    url = host.serve(_page(gateway, form, metric, lang), csp_header(gateway))
    page, watched = visit(context, url)
    _shown(page, lang)
    assert_accessible(page, f"widget {metric} {lang}: inline, floating closed", preload=False)

    page.get_by_role("button", name=OPEN[lang]).click()
    floating = page.locator("[data-voxloop$='-floating']")
    expect(floating.get_by_role("radiogroup")).to_be_visible()
    assert_accessible(page, f"widget {metric} {lang}: floating open", preload=False)

    inline = page.locator("[data-voxloop$='-inline']")
    inline.get_by_role("radio").last.click()
    expect(inline.get_by_role("status")).to_have_text(THANKS[lang])
    expect(inline.locator("textarea")).to_be_visible()
    floating.get_by_role("radio").first.click()
    expect(floating.get_by_role("status")).to_have_text(THANKS[lang])
    assert_accessible(page, f"widget {metric} {lang}: answered, comment boxes shown", preload=False)
    screenshot(page, f"a11y-widget-{metric}-{lang}")

    inline.locator("textarea").fill("Quick")
    inline.get_by_role("button", name=SEND[lang]).click()
    expect(inline.get_by_role("radiogroup")).to_be_hidden()
    assert_accessible(page, f"widget {metric} {lang}: comment sent", preload=False)
    assert len(rows(gateway, f"{form}-inline")) == 2
    assert len(rows(gateway, f"{form}-floating")) == 1
    watched.assert_clean()


def test_the_check_sees_into_the_shadow_root(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    """An unnamed button added inside the widget's shadow root fails the check."""
    url = host.serve(_page(gateway, form, "nps", "en"), csp_header(gateway))
    page, _ = visit(context, url)
    _shown(page, "en")
    page.evaluate(
        """() => {
            const root = document.querySelector('[data-voxloop$="-inline"]').shadowRoot;
            const button = Object.assign(document.createElement('button'), {id: 'no-name'});
            root.querySelector('.vx-panel').append(button);
        }"""
    )
    with pytest.raises(AssertionError) as failed:
        assert_accessible(page, "widget with an unnamed button", preload=False)
    message = str(failed.value)
    assert "critical: button-name" in message
    assert f'div[data-voxloop="{form}-inline"] >> #no-name' in message
