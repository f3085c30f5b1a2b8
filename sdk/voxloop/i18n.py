"""The words and digits of a rating, per language: en, ar, fa, id.

What the SDK's email row (:mod:`voxloop.email`) and the gateway's rating page show, from one
table: the question of each metric, the words under the ends of each scale, the words for 👎
and 👍, the language's digits and its direction::

    from voxloop.i18n import STRINGS, language_of

    strings = STRINGS[language_of("ar-EG") or "en"]
    strings.questions["nps"]         # 'ما مدى احتمال أن توصي بنا لصديق أو زميل؟'
    strings.score_label("nps", 9)    # '٩'
    strings.direction                # 'rtl'

The questions and the scale-end words are the ones the web widget shows (``TEXT`` in
``widgets/v1/voxloop.js``): one wording per metric and language, whatever the channel, so that
answers from the widget and from emails answer the same question. A browser test compares them.

Persian text is written with Persian letters (``ی`` U+06CC, ``ک`` U+06A9), not their Arabic
look-alikes, and keeps the zero-width non-joiner (U+200C) that its spelling needs.

Everything here is read-only: the table is shared by every caller in the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

__all__ = ["LANGUAGES", "STRINGS", "Strings", "language_of"]

_ASCII_DIGITS: Final = "0123456789"


@dataclass(frozen=True, slots=True)
class Strings:
    """What one language needs to show a rating.

    Attributes:
        rtl: the language is written right to left.
        digits: the ten digits 0-9 as the language writes them.
        questions: the default question of each metric.
        anchors: the words under the lowest and the highest score of each numeric metric.
        thumbs: the text alternatives of 👎 and 👍 (scores 0 and 1 of ``thumbs``).
    """

    rtl: bool
    digits: str
    questions: Mapping[str, str]
    anchors: Mapping[str, tuple[str, str]]
    thumbs: tuple[str, str]

    @property
    def direction(self) -> Literal["ltr", "rtl"]:
        """The text direction, as HTML's ``dir`` attribute takes it."""
        return "rtl" if self.rtl else "ltr"

    def numeral(self, number: int) -> str:
        """``number`` written with this language's digits."""
        return str(number).translate(str.maketrans(_ASCII_DIGITS, self.digits))

    def score_label(self, metric: str, score: int) -> str:
        """A score as a reader sees it: its numeral, or for ``thumbs`` the word for 👎 or 👍.

        Raises:
            IndexError: a ``thumbs`` score other than 0 or 1.
        """
        return self.thumbs[score] if metric == "thumbs" else self.numeral(score)


def _strings(
    *,
    rtl: bool,
    digits: str,
    questions: dict[str, str],
    anchors: dict[str, tuple[str, str]],
    thumbs: tuple[str, str],
) -> Strings:
    return Strings(rtl, digits, MappingProxyType(questions), MappingProxyType(anchors), thumbs)


#: Each language's strings, by its two-letter code (ISO 639-1), English first.
STRINGS: Final[Mapping[str, Strings]] = MappingProxyType(
    {
        "en": _strings(
            rtl=False,
            digits=_ASCII_DIGITS,
            questions={
                "nps": "How likely are you to recommend us to a friend or colleague?",
                "csat": "How satisfied are you with your experience?",
                "ces": "How easy was it to do what you wanted?",
                "likert": "I got what I needed.",
                "thumbs": "Was this helpful?",
            },
            anchors={
                "nps": ("Not at all likely", "Extremely likely"),
                "csat": ("Very dissatisfied", "Very satisfied"),
                "ces": ("Very difficult", "Very easy"),
                "likert": ("Strongly disagree", "Strongly agree"),
            },
            thumbs=("Dislike", "Like"),
        ),
        "ar": _strings(
            rtl=True,
            digits="٠١٢٣٤٥٦٧٨٩",
            questions={
                "nps": "ما مدى احتمال أن توصي بنا لصديق أو زميل؟",
                "csat": "ما مدى رضاك عن تجربتك؟",
                "ces": "ما مدى سهولة إنجاز ما أردت؟",
                "likert": "حصلت على ما احتجت إليه.",
                "thumbs": "هل كان هذا مفيدًا؟",
            },
            anchors={
                "nps": ("غير محتمل إطلاقًا", "محتمل للغاية"),
                "csat": ("غير راضٍ جدًا", "راضٍ جدًا"),
                "ces": ("صعب جدًا", "سهل جدًا"),
                "likert": ("لا أوافق بشدة", "أوافق بشدة"),
            },
            thumbs=("لم يعجبني", "أعجبني"),
        ),
        "fa": _strings(
            rtl=True,
            digits="۰۱۲۳۴۵۶۷۸۹",
            questions={
                "nps": "چقدر احتمال دارد ما را به یک دوست یا همکار توصیه کنید؟",
                "csat": "چقدر از تجربه\u200cتان راضی هستید؟",
                "ces": "انجام کاری که می\u200cخواستید چقدر آسان بود؟",
                "likert": "آنچه را نیاز داشتم به دست آوردم.",
                "thumbs": "آیا این مفید بود؟",
            },
            anchors={
                "nps": ("اصلاً محتمل نیست", "کاملاً محتمل است"),
                "csat": ("بسیار ناراضی", "بسیار راضی"),
                "ces": ("بسیار دشوار", "بسیار آسان"),
                "likert": ("کاملاً مخالفم", "کاملاً موافقم"),
            },
            thumbs=("نپسندیدم", "پسندیدم"),
        ),
        "id": _strings(
            rtl=False,
            digits=_ASCII_DIGITS,
            questions={
                "nps": (
                    "Seberapa besar kemungkinan Anda merekomendasikan kami kepada teman atau"
                    " kolega?"
                ),
                "csat": "Seberapa puas Anda dengan pengalaman Anda?",
                "ces": "Seberapa mudah melakukan apa yang Anda inginkan?",
                "likert": "Saya mendapatkan apa yang saya butuhkan.",
                "thumbs": "Apakah ini membantu?",
            },
            anchors={
                "nps": ("Sangat tidak mungkin", "Sangat mungkin"),
                "csat": ("Sangat tidak puas", "Sangat puas"),
                "ces": ("Sangat sulit", "Sangat mudah"),
                "likert": ("Sangat tidak setuju", "Sangat setuju"),
            },
            thumbs=("Tidak suka", "Suka"),
        ),
    }
)

#: The languages of :data:`STRINGS`, English first.
LANGUAGES: Final[tuple[str, ...]] = tuple(STRINGS)


def language_of(tag: str) -> str | None:
    """The language of :data:`STRINGS` that a language tag names, if any.

    Only the primary subtag counts, in any case: ``"ar-EG"`` and ``"AR"`` are ``"ar"``,
    ``"pt-BR"`` is ``None``. The tag's syntax is not checked.

    Args:
        tag: a BCP 47 language tag, such as an ``Accept-Language`` entry or an event's locale.

    Returns:
        A key of :data:`STRINGS`, or ``None`` when the tag's language has no strings.
    """
    language = tag.split("-", 1)[0].lower()
    return language if language in STRINGS else None
