"""The words and digits of the email rating row, per language: en, ar, fa, id.

Persian text is written with Persian letters (``ی`` U+06CC, ``ک`` U+06A9), not their Arabic
look-alikes, and keeps the zero-width non-joiner (U+200C) that its spelling needs.

The questions and the scale-end words are the ones the web widget shows (``TEXT`` in
``widgets/v1/voxloop.js``): one wording per metric and language, whatever the channel, so that
answers from the widget and from emails answer the same question. A browser test compares them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Strings:
    """What one language needs to show a rating row.

    Attributes:
        rtl: the language is written right to left.
        digits: the ten digits 0-9 as the language writes them.
        questions: the default question of each metric.
        anchors: the words under the lowest and the highest score of each numeric metric.
        thumbs: the text alternatives of 👎 and 👍 (scores 0 and 1 of ``thumbs``).
    """

    rtl: bool
    digits: str
    questions: dict[str, str]
    anchors: dict[str, tuple[str, str]]
    thumbs: tuple[str, str]

    def numeral(self, number: int) -> str:
        """``number`` written with this language's digits."""
        return str(number).translate(str.maketrans("0123456789", self.digits))


STRINGS: Final[dict[str, Strings]] = {
    "en": Strings(
        rtl=False,
        digits="0123456789",
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
    "ar": Strings(
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
    "fa": Strings(
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
    "id": Strings(
        rtl=False,
        digits="0123456789",
        questions={
            "nps": (
                "Seberapa besar kemungkinan Anda merekomendasikan kami kepada teman atau kolega?"
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
