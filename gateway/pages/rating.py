"""The HTML pages of email rating links: the vote page, the comment page, the bad-link pages.

Templates under ``templates/rating/``; everything shown is escaped. The pages load one
stylesheet and one script from ``/static/`` and nothing else, under a Content-Security-Policy
that allows only that. The words come in the recipient's language (en, ar, fa, id), Arabic and
Persian right to left with their own digits, the digits and the questions being the SDK's own
(:mod:`voxloop.i18n`, from which ``voxloop.email`` renders the email row).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import HTMLResponse

from voxloop.i18n import STRINGS, language_of

from . import render

__all__ = [
    "PAGE_HEADERS",
    "WORDS",
    "PageWords",
    "comment_page",
    "pick_language",
    "problem_page",
    "score_label",
    "vote_page",
]

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
        language = language_of(tag)
        if language is not None:
            return language
    return "en"


def score_label(language: str, metric: str, score: int) -> str:
    """The score as the language writes it: its digits, or the words for 👎 and 👍."""
    return STRINGS[language].score_label(metric, score)


def vote_page(
    request: Request, language: str, metric: str, score: int, view: str, *, recorded: bool = False
) -> HTMLResponse:
    """The page a click opens: the score, the state of its recording, the comment box.

    With JavaScript, the page's script POSTs ``view`` once the page is really shown (saying
    "recording" meanwhile) and then reveals the comment box; without it, the page asks the
    person to confirm and the button does it (the page never records on a GET, so link scanners
    record nothing). Nothing is recorded yet when the page is served, so that is what it says
    until the script takes over. ``recorded`` renders the state after a confirmation posted as
    a form.

    Args:
        request: the request the page answers.
        language: a key of :data:`WORDS`, as :func:`pick_language` returns it.
        metric: the vote's metric.
        score: the vote's score.
        view: the id of this showing of the page, the id its vote is stored under.
        recorded: the vote has been recorded (a confirmation posted as a form).

    Returns:
        The page, status 200, with :data:`PAGE_HEADERS`.
    """
    context = {
        **_scored(language, WORDS[language].your_rating, metric, score),
        "view": view,
        "state": "recorded" if recorded else "pending",
    }
    return render(request, "rating/vote.html", context, 200, PAGE_HEADERS)


def comment_page(request: Request, language: str, metric: str, score: int) -> HTMLResponse:
    """What a comment posted as a form (no JavaScript) gets: the question, score and thanks.

    Returns:
        The page, status 200, with :data:`PAGE_HEADERS`.
    """
    context = _scored(language, WORDS[language].comment_saved, metric, score)
    return render(request, "rating/comment.html", context, 200, PAGE_HEADERS)


def problem_page(
    request: Request,
    language: str,
    status: int,
    detail: str = "",
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The plain page of a link that can't be used: 403 forged or altered, 410 expired.

    Any other status (a store that can't take the vote now) says so and asks to try again,
    with ``detail`` as its text.

    Returns:
        The page, with ``status`` and :data:`PAGE_HEADERS` and ``headers`` (``Retry-After``).
    """
    words = WORDS[language]
    if status == 403:
        title, text = words.forged_title, words.forged_text
    elif status == 410:
        title, text = words.expired_title, words.expired_text
    else:
        title, text = words.failed, detail
    context = {**_context(language, title), "status": status, "text": text}
    return render(
        request, "rating/problem.html", context, status, {**PAGE_HEADERS, **(headers or {})}
    )


def _context(language: str, title: str) -> dict[str, Any]:
    """What every rating page prints: its language and direction, the words, the title."""
    return {
        "language": language,
        "direction": STRINGS[language].direction,
        "words": WORDS[language],
        "title": title,
    }


def _scored(language: str, title: str, metric: str, score: int) -> dict[str, Any]:
    """A page about one vote: :func:`_context` and the vote's question and score."""
    return {
        **_context(language, title),
        "question": STRINGS[language].questions[metric],
        "score_label": score_label(language, metric, score),
    }
