"""The HTML pages of email rating links: the vote page, and the pages for bad links.

Everything shown is escaped; the pages load one stylesheet and one script from ``/static/``
and nothing else, under a Content-Security-Policy that allows only that. The words come in the
recipient's language (en, ar, fa, id), Arabic and Persian right to left with their own digits,
the digits and the questions being the SDK's own (``voxloop.email`` renders the email row).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Final

from voxloop import _email_i18n  # the email row's words and digits, shared with the SDK

#: What the pages may load: their own stylesheet, script and POSTs; nothing framed, no base.
PAGE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    # The token in the URL is the vote: never send it on to another site.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}


@dataclass(frozen=True, slots=True)
class PageWords:
    """The words of the rating pages in one language."""

    your_rating: str
    to_confirm: str
    recording: str
    recorded: str
    failed: str
    retry: str
    confirm: str
    comment_label: str
    send: str
    comment_saved: str
    forged_title: str
    forged_text: str
    expired_title: str
    expired_text: str


WORDS: Final[dict[str, PageWords]] = {
    "en": PageWords(
        your_rating="Your rating",
        to_confirm="Please confirm your rating.",
        recording="Recording your rating…",
        recorded="Thank you! Your rating has been recorded.",
        failed="We couldn't record your rating. Please try again.",
        retry="Try again",
        confirm="Confirm my rating",
        comment_label="Anything you'd like to add? (optional)",
        send="Send",
        comment_saved="Thanks, we've received your comment.",
        forged_title="This link isn't valid",
        forged_text="It may have been changed or cut short. Please open the link from the"
        " email exactly as it is.",
        expired_title="This link has expired",
        expired_text="Thank you for wanting to answer; this survey is closed.",
    ),
    "ar": PageWords(
        your_rating="تقييمك",
        to_confirm="يُرجى تأكيد تقييمك.",
        recording="جارٍ تسجيل تقييمك…",
        recorded="شكرًا لك! تم تسجيل تقييمك.",
        failed="تعذّر تسجيل تقييمك. يُرجى المحاولة مرة أخرى.",
        retry="أعد المحاولة",
        confirm="تأكيد تقييمي",
        comment_label="هل تودّ إضافة شيء؟ (اختياري)",
        send="إرسال",
        comment_saved="شكرًا، لقد استلمنا تعليقك.",
        forged_title="هذا الرابط غير صالح",
        forged_text="ربما تم تغييره أو اقتطاعه. يُرجى فتح الرابط كما ورد في الرسالة تمامًا.",
        expired_title="انتهت صلاحية هذا الرابط",
        expired_text="شكرًا لرغبتك في الإجابة؛ لقد أُغلق هذا الاستطلاع.",
    ),
    "fa": PageWords(
        your_rating="امتیاز شما",
        to_confirm="لطفاً امتیاز خود را تأیید کنید.",
        recording="در حال ثبت امتیاز شما…",
        recorded="سپاس! امتیاز شما ثبت شد.",
        failed="ثبت امتیاز شما ممکن نشد. لطفاً دوباره تلاش کنید.",
        retry="تلاش دوباره",
        confirm="تأیید امتیاز من",
        comment_label="چیزی می‌خواهید اضافه کنید؟ (اختیاری)",
        send="ارسال",
        comment_saved="سپاس، نظر شما دریافت شد.",
        forged_title="این پیوند معتبر نیست",
        forged_text="ممکن است تغییر کرده یا ناقص شده باشد. لطفاً پیوند را دقیقاً همان‌طور که"
        " در ایمیل آمده است باز کنید.",
        expired_title="این پیوند منقضی شده است",
        expired_text="از اینکه می‌خواستید پاسخ دهید سپاسگزاریم؛ این نظرسنجی بسته شده است.",
    ),
    "id": PageWords(
        your_rating="Penilaian Anda",
        to_confirm="Silakan konfirmasi penilaian Anda.",
        recording="Menyimpan penilaian Anda…",
        recorded="Terima kasih! Penilaian Anda telah dicatat.",
        failed="Penilaian Anda tidak dapat dicatat. Silakan coba lagi.",
        retry="Coba lagi",
        confirm="Konfirmasi penilaian saya",
        comment_label="Ada yang ingin Anda tambahkan? (opsional)",
        send="Kirim",
        comment_saved="Terima kasih, komentar Anda sudah kami terima.",
        forged_title="Tautan ini tidak valid",
        forged_text="Tautan mungkin telah diubah atau terpotong. Buka tautan dari email persis"
        " seperti aslinya.",
        expired_title="Tautan ini sudah kedaluwarsa",
        expired_text="Terima kasih atas keinginan Anda menjawab; survei ini sudah ditutup.",
    ),
}


def pick_language(asked: str | None, accept_language: str | None) -> str:
    """The page's language: the link's ``?lang=``, else the browser's first known one, else en."""
    candidates = [asked or ""]
    for part in (accept_language or "").split(","):
        candidates.append(part.split(";", 1)[0].strip())
    for tag in candidates:
        language = tag.split("-", 1)[0].lower()
        if language in WORDS:
            return language
    return "en"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _document(language: str, title: str, body: str) -> str:
    direction = "rtl" if _email_i18n.STRINGS[language].rtl else "ltr"
    return (
        "<!doctype html>\n"
        f'<html lang="{language}" dir="{direction}">\n'
        '<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{_e(title)}</title>\n"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">\n'
        '<link rel="stylesheet" href="/static/rating.css">\n'
        '<script src="/static/rating.js" defer></script>\n'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def score_label(language: str, metric: str, score: int) -> str:
    """The score as the language writes it: its digits, or the words for 👎 and 👍."""
    strings = _email_i18n.STRINGS[language]
    return strings.thumbs[score] if metric == "thumbs" else strings.numeral(score)


def vote_page(language: str, metric: str, score: int, view: str, *, recorded: bool = False) -> str:
    """The page a click opens: the score, the state of its recording, the comment box.

    With JavaScript, the page's script POSTs ``view`` once the page is really shown (saying
    "recording" meanwhile) and then reveals the comment box; without it, the page asks the
    person to confirm and the button does it (the page never records on a GET, so link scanners
    record nothing). Nothing is recorded yet when the page is served, so that is what it says
    until the script takes over. ``recorded`` renders the state after a confirmation posted as
    a form.
    """
    words = WORDS[language]
    strings = _email_i18n.STRINGS[language]
    state = "recorded" if recorded else "pending"
    shown = words.recorded if recorded else words.to_confirm
    hidden_unless = {s: "" if s == state else " hidden" for s in ("pending", "recorded")}
    body = f"""<main class="card" id="vl-page" data-view="{_e(view)}" data-state="{state}">
<h1>{_e(strings.questions[metric])}</h1>
<p class="score"><span>{_e(words.your_rating)}</span>
<strong id="vl-score">{_e(score_label(language, metric, score))}</strong></p>
<p id="vl-status" role="status" aria-live="polite" data-pending="{_e(words.recording)}"
 data-recorded="{_e(words.recorded)}" data-failed="{_e(words.failed)}"
 data-commented="{_e(words.comment_saved)}">{_e(shown)}</p>
<form id="vl-confirm" method="post"{hidden_unless["pending"]}>
<input type="hidden" name="view" value="{_e(view)}">
<button type="submit" class="js-hide">{_e(words.confirm)}</button>
<button type="submit" id="vl-retry" hidden>{_e(words.retry)}</button>
</form>
<form id="vl-comment" method="post"{hidden_unless["recorded"]}>
<input type="hidden" name="view" value="{_e(view)}">
<label for="vl-text">{_e(words.comment_label)}</label>
<textarea id="vl-text" name="comment" maxlength="4000" rows="4"></textarea>
<button type="submit">{_e(words.send)}</button>
</form>
</main>"""
    return _document(language, words.your_rating, body)


def comment_page(language: str, metric: str, score: int) -> str:
    """What a comment posted as a form (no JavaScript) gets: the question, score and thanks."""
    words = WORDS[language]
    question = _email_i18n.STRINGS[language].questions[metric]
    body = f"""<main class="card" id="vl-page" data-state="commented">
<h1>{_e(question)}</h1>
<p class="score"><span>{_e(words.your_rating)}</span>
<strong id="vl-score">{_e(score_label(language, metric, score))}</strong></p>
<p id="vl-status" role="status">{_e(words.comment_saved)}</p>
</main>"""
    return _document(language, words.comment_saved, body)


def problem_page(language: str, status: int, detail: str = "") -> str:
    """The plain page of a link that can't be used: 403 forged or altered, 410 expired.

    Any other status (a store that can't take the vote now) says so and asks to try again.
    """
    words = WORDS[language]
    if status == 403:
        title, text = words.forged_title, words.forged_text
    elif status == 410:
        title, text = words.expired_title, words.expired_text
    else:
        title, text = words.failed, detail
    body = f"""<main class="card problem" id="vl-page" data-state="error-{status}">
<h1>{_e(title)}</h1>
<p>{_e(text)}</p>
</main>"""
    return _document(language, title, body)
