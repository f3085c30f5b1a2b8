"""What the form says and shows: each metric's scale, and the languages (strings, digits, dir)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext

from tests.browser import screenshot
from tests.gateway.conftest import Gateway
from tests.widgets.conftest import Host, count, embed, radio, rows, visit
from voxloop.i18n import STRINGS

SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7), "likert": (1, 5), "thumbs": (0, 1)}


@pytest.mark.parametrize("metric", list(SCALES))
def test_each_metric_renders_its_scale(
    context: BrowserContext, gateway: Gateway, host: Host, form: str, metric: str
) -> None:
    low, high = SCALES[metric]
    url = host.serve(embed(gateway, data_form=form, data_metric=metric, data_target="#slot"))
    page, watched = visit(context, url)
    options = page.get_by_role("radiogroup").get_by_role("radio")
    assert options.count() == high - low + 1
    values = [int(v) for v in options.evaluate_all("(all) => all.map((r) => r.value)")]
    assert values == list(range(low, high + 1))
    radio(page, high).click()
    page.get_by_text("Thank you for your feedback!").wait_for()
    assert [(r["metric"], r["score"]) for r in rows(gateway, form)] == [(metric, high)]
    assert count(gateway, form, metric) == 1
    watched.assert_clean()


LANGS: dict[str, dict[str, Any]] = {
    "en": {
        "dir": "ltr",
        "question": "How likely are you to recommend us to a friend or colleague?",
        "ten": "10",
        "ends": ["Not at all likely", "Extremely likely"],
        "comment": "Anything you would like to add? (optional)",
        "send": "Send",
        "skip": "Skip",
        "close": "Close",
        "thanks": "Thank you for your feedback!",
        "fail": "Sorry, your answer could not be sent.",
    },
    "ar": {
        "dir": "rtl",
        "question": "ما مدى احتمال أن توصي بنا لصديق أو زميل؟",
        "ten": "١٠",
        "ends": ["غير محتمل إطلاقًا", "محتمل للغاية"],
        "comment": "هل تود إضافة شيء؟ (اختياري)",
        "send": "إرسال",
        "skip": "تخطي",
        "close": "إغلاق",
        "thanks": "شكرًا لك على ملاحظاتك!",
        "fail": "عذرًا، تعذّر إرسال إجابتك.",
    },
    "fa": {
        "dir": "rtl",
        "question": "چقدر احتمال دارد ما را به یک دوست یا همکار توصیه کنید؟",
        "ten": "۱۰",
        "ends": ["اصلاً محتمل نیست", "کاملاً محتمل است"],
        "comment": "چیزی می‌خواهید اضافه کنید؟ (اختیاری)",
        "send": "ارسال",
        "skip": "رد شدن",
        "close": "بستن",
        "thanks": "از بازخورد شما سپاسگزاریم!",
        "fail": "متأسفیم، پاسخ شما ارسال نشد.",
    },
    "id": {
        "dir": "ltr",
        "question": (
            "Seberapa besar kemungkinan Anda merekomendasikan kami kepada teman atau kolega?"
        ),
        "ten": "10",
        "ends": ["Sangat tidak mungkin", "Sangat mungkin"],
        "comment": "Ada yang ingin Anda tambahkan? (opsional)",
        "send": "Kirim",
        "skip": "Lewati",
        "close": "Tutup",
        "thanks": "Terima kasih atas masukan Anda!",
        "fail": "Maaf, jawaban Anda gagal dikirim.",
    },
}


@pytest.mark.parametrize("lang", list(LANGS))
def test_languages(
    context: BrowserContext, gateway: Gateway, host: Host, form: str, lang: str
) -> None:
    want = LANGS[lang]
    page_lang = lang if lang != "id" else "en"  # data-locale wins over the page's language
    page_html = embed(
        gateway, data_form=form, data_target="#slot", data_locale=lang, lang=page_lang
    )
    url = host.serve(page_html)
    page, watched = visit(context, url)
    box = page.locator("[data-voxloop] .vx")
    assert box.get_attribute("dir") == want["dir"]
    assert box.evaluate("(el) => getComputedStyle(el).direction") == want["dir"]
    assert box.get_attribute("lang") == lang
    assert page.get_by_text(want["question"]).is_visible()
    assert page.get_by_role("radiogroup").get_attribute("aria-labelledby") == "vx-q"
    texts = page.get_by_role("radio").all_text_contents()
    assert texts[0] in ("0", "٠", "۰") and texts[-1] == want["ten"]
    assert page.get_by_role("radio", name=f"{want['ten']}, {want['ends'][1]}").count() == 1
    assert page.locator("[data-voxloop] .vx-ends").inner_text().split("\n") == want["ends"]
    assert page.get_by_role("button", name=want["close"]).count() == 1
    if want["dir"] == "rtl":  # the scale runs from the right: 0 right of 10
        x0 = radio(page, 0).bounding_box()
        x10 = radio(page, 10).bounding_box()
        assert x0 and x10 and x0["x"] > x10["x"]
    radio(page, 7).click()
    page.get_by_text(want["thanks"]).wait_for()
    assert page.get_by_text(want["comment"]).is_visible()
    assert page.get_by_role("button", name=want["send"]).is_visible()
    assert page.get_by_role("button", name=want["skip"]).is_visible()
    screenshot(page, f"widget-{lang}-{want['dir']}")
    (row,) = rows(gateway, form)
    assert row["body"]["locale"] == lang
    watched.assert_clean()


@pytest.mark.parametrize("lang", list(LANGS))
def test_the_failure_message_is_translated(
    context: BrowserContext, gateway: Gateway, host: Host, form: str, lang: str
) -> None:
    page_html = embed(gateway, key="pk_unknown", data_form=form, data_target="#slot", lang=lang)
    page, _ = visit(context, host.serve(page_html), expected_errors=("401",))
    radio(page, 1).click()
    page.get_by_text(LANGS[lang]["fail"]).wait_for()


def test_the_language_comes_from_the_page_then_the_browser(
    browser: Browser, gateway: Gateway, host: Host, form: str
) -> None:
    context = browser.new_context(locale="fa-IR")
    try:
        page, _ = visit(context, host.serve(embed(gateway, data_form=form, lang="ar-EG")))
        assert page.locator("[data-voxloop] .vx").get_attribute("lang") == "ar"
        page, _ = visit(context, host.serve(embed(gateway, data_form=form, lang="")))
        assert page.evaluate("navigator.language") == "fa-IR"
        assert page.locator("[data-voxloop] .vx").get_attribute("lang") == "fa"
        page, _ = visit(context, host.serve(embed(gateway, data_form=form, lang="de")))
        assert page.locator("[data-voxloop] .vx").get_attribute("lang") == "fa"
        page, _ = visit(
            context,
            host.serve(embed(gateway, data_form=form, data_locale="id", data_target="#slot")),
        )
        assert page.locator("[data-voxloop] .vx").get_attribute("lang") == "id"
        radio(page, 5).click()
        page.get_by_text(LANGS["id"]["thanks"]).wait_for()
        (row,) = rows(gateway, form)
        assert row["body"]["locale"] == "id"
    finally:
        context.close()


def test_an_underscored_page_language_is_sent_as_a_bcp47_tag(
    context: BrowserContext, gateway: Gateway, host: Host, form: str
) -> None:
    page, _ = visit(
        context, host.serve(embed(gateway, data_form=form, lang="ar_EG", data_target="#slot"))
    )
    assert page.locator("[data-voxloop] .vx").get_attribute("lang") == "ar"
    radio(page, 7).click()
    page.get_by_text(LANGS["ar"]["thanks"]).wait_for()
    (row,) = rows(gateway, form)
    assert row["body"]["locale"] == "ar-EG"


# Each metric's default question and end labels, read from every form the widget renders.
_DEFAULTS = """([key, form, locale, metrics]) => Object.fromEntries(metrics.map((metric) => {
    const slot = document.body.appendChild(document.createElement('div'));
    const host = voxloop.show({key, form: `${form}-${metric}`, metric, locale, target: slot,
                               days: 0});
    const root = host.shadowRoot;
    const ends = [...root.querySelectorAll('.vx-ends span')].map((e) => e.textContent);
    return [metric, [root.querySelector('.vx-q').textContent, ends]];
}))"""


@pytest.mark.parametrize("lang", sorted(STRINGS))
def test_default_questions_are_the_emails(
    context: BrowserContext, gateway: Gateway, host: Host, form: str, lang: str
) -> None:
    # One wording per metric and language, whatever the channel: the widget's defaults are the
    # table the email row and the rating page take theirs from.
    page_html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<script src="{gateway.url}/widgets/v1/voxloop.js"></script></head><body></body></html>'
    )
    page, watched = visit(context, host.serve(page_html))
    shown = page.evaluate(_DEFAULTS, [gateway.site_key, form, lang, list(SCALES)])
    strings = STRINGS[lang]
    assert {metric: question for metric, (question, _) in shown.items()} == strings.questions
    numeric = {metric: tuple(ends) for metric, (_, ends) in shown.items() if metric != "thumbs"}
    assert numeric == strings.anchors
    assert rows(gateway, form) == []
    watched.assert_clean()
