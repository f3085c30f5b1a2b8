"""The emails' words in en, ar, fa and id: alerts, escalations of breaches, digests, the test.

One :class:`MailWords` a language, in :data:`MAIL_WORDS`, the languages of the dashboard
(:data:`~..pages.app_words.WORDS`). A field with ``{name}`` takes values through
:meth:`str.format` by name (a number already written for the language, or a name), so that a
translation may put them in its own order. The dashboard's own words (the metrics', channels'
and columns' names) are the dashboard's, through :class:`~..pages.app_i18n.Locale`: an email
and the page it links to call a thing the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["MAIL_WORDS", "MailWords"]


@dataclass(frozen=True, slots=True)
class MailWords:
    """Every word the emails show, in one language, beside the dashboard's."""

    # shared
    project: str
    rule: str
    open_dashboard: str
    open_response: str
    open_item: str
    footer: str
    footer_bare: str
    # an alert on one response
    alert_subject: str
    alert_title: str
    alert_intro: str
    # an alert on aggregates
    drop_subject: str
    spike_subject: str
    drop_intro: str
    spike_intro: str
    previous_periods: dict[str, str]
    this_period: str
    previous_period: str
    # a breach's escalation
    breach_subject: str
    breach_title: str
    breach_intro: str
    opened: str
    due: str
    status: str
    assignee: str
    nobody: str
    # the digest
    digest_subjects: dict[str, str]
    digest_titles: dict[str, str]
    digest_period: str
    scores_title: str
    score_line: str
    before: dict[str, str]
    change: str
    trend_up: str
    trend_down: str
    trend_same: str
    no_scores: str
    items_title: str
    items_count: str
    items_shown: str
    no_items: str
    overdue_since: str
    due_on: str
    # the operator's test
    test_subject: str
    test_text: str


MAIL_WORDS: Final[dict[str, MailWords]] = {
    "en": MailWords(
        project="Project",
        rule="Rule",
        open_dashboard="Open the dashboard",
        open_response="See the response",
        open_item="Open the follow-up",
        footer="Sent by voxloop from {url}. Times are in UTC.",
        footer_bare="Sent by voxloop. Times are in UTC.",
        alert_subject="[{project}] Alert “{rule}”: {metric} {score} in {channel}",
        alert_title="Alert: {rule}",
        alert_intro="A response matched the alert rule “{rule}”.",
        drop_subject="[{project}] Alert “{rule}”: {metric} dropped to {score}",
        spike_subject="[{project}] Alert “{rule}”: {count} responses",
        drop_intro="{metric} dropped beyond its 95% interval against {previous}.",
        spike_intro="Responses spiked against {previous}.",
        previous_periods={
            "hour": "the previous hour",
            "day": "the previous day",
            "week": "the previous week",
        },
        this_period="This period",
        previous_period="The period before",
        breach_subject="[{project}] Follow-up overdue: {metric} {score} in {channel}",
        breach_title="A follow-up is overdue",
        breach_intro=(
            "Nobody acted on this follow-up within {hours} hours (rule “{rule}”). You receive"
            " this as the rule's escalation contact."
        ),
        opened="Opened",
        due="Due",
        status="Status",
        assignee="Assignee",
        nobody="Nobody",
        digest_subjects={
            "daily": "[{project}] Daily digest: {date}",
            "weekly": "[{project}] Weekly digest: week of {date}",
        },
        digest_titles={"daily": "Daily digest", "weekly": "Weekly digest"},
        digest_period="{start} to {end}",
        scores_title="Scores by channel",
        score_line=(
            "{channel}, {metric}: {score} ({responses}: {count});"
            " {before}: {previous}; {change}: {trend}"
        ),
        before={"daily": "Day before", "weekly": "Week before"},
        change="Change",
        trend_up="up {}",
        trend_down="down {}",
        trend_same="no change",
        no_scores="No responses in this period or the one before.",
        items_title="Follow-ups needing action",
        items_count="{open} open, {overdue} overdue.",
        items_shown="The {shown} due first:",
        no_items="No open follow-ups.",
        overdue_since="Overdue since {}",
        due_on="Due {}",
        test_subject="voxloop: a test email",
        test_text="This email shows that voxloop can send email through {server}.",
    ),
    "ar": MailWords(
        project="المشروع",
        rule="القاعدة",
        open_dashboard="افتح لوحة المعلومات",
        open_response="اعرض الإجابة",
        open_item="افتح المتابعة",
        footer="أرسلها voxloop من {url}. الأوقات بالتوقيت العالمي المنسَّق (UTC).",
        footer_bare="أرسلها voxloop. الأوقات بالتوقيت العالمي المنسَّق (UTC).",
        alert_subject="[{project}] تنبيه «{rule}»: {metric} {score} في {channel}",
        alert_title="تنبيه: {rule}",
        alert_intro="طابقت إجابةٌ قاعدةَ التنبيه «{rule}».",
        drop_subject="[{project}] تنبيه «{rule}»: انخفض {metric} إلى {score}",
        spike_subject="[{project}] تنبيه «{rule}»: {count} إجابة",
        drop_intro="انخفض {metric} إلى ما دون مجال الثقة ٩٥٪ مقارنةً مع {previous}.",
        spike_intro="ارتفع عدد الإجابات بشدة مقارنةً مع {previous}.",
        previous_periods={
            "hour": "الساعة السابقة",
            "day": "اليوم السابق",
            "week": "الأسبوع السابق",
        },
        this_period="هذه الفترة",
        previous_period="الفترة السابقة",
        breach_subject="[{project}] متابعة متأخرة: {metric} {score} في {channel}",
        breach_title="متابعة تجاوزت موعدها",
        breach_intro=(
            "لم يتخذ أحد إجراءً بشأن هذه المتابعة خلال {hours} ساعة (القاعدة «{rule}»)."
            " تصلك هذه الرسالة بصفتك جهة التصعيد لهذه القاعدة."
        ),
        opened="فُتحت",
        due="الموعد النهائي",
        status="الحالة",
        assignee="المسؤول",
        nobody="لا أحد",
        digest_subjects={
            "daily": "[{project}] الملخص اليومي: {date}",
            "weekly": "[{project}] الملخص الأسبوعي: أسبوع {date}",
        },
        digest_titles={"daily": "الملخص اليومي", "weekly": "الملخص الأسبوعي"},
        digest_period="من {start} إلى {end}",
        scores_title="الدرجات حسب القناة",
        score_line=(
            "{channel}، {metric}: {score} ({responses}: {count})؛"
            " {before}: {previous}؛ {change}: {trend}"
        ),
        before={"daily": "اليوم السابق", "weekly": "الأسبوع السابق"},
        change="التغيّر",
        trend_up="ارتفاع {}",
        trend_down="انخفاض {}",
        trend_same="بلا تغيّر",
        no_scores="لا توجد إجابات في هذه الفترة ولا في التي قبلها.",
        items_title="متابعات تحتاج إلى إجراء",
        items_count="{open} مفتوحة، منها {overdue} متأخرة.",
        items_shown="أقربها موعدًا ({shown}):",
        no_items="لا توجد متابعات مفتوحة.",
        overdue_since="متأخرة منذ {}",
        due_on="موعدها {}",
        test_subject="voxloop: رسالة تجريبية",
        test_text="تُثبت هذه الرسالة أن voxloop يستطيع إرسال البريد عبر {server}.",
    ),
    "fa": MailWords(
        project="پروژه",
        rule="قاعده",
        open_dashboard="باز کردن داشبورد",
        open_response="دیدن پاسخ",
        open_item="باز کردن پیگیری",
        footer="فرستاده‌شده از voxloop در {url}. زمان‌ها به وقت هماهنگ جهانی (UTC) هستند.",
        footer_bare="فرستاده‌شده از voxloop. زمان‌ها به وقت هماهنگ جهانی (UTC) هستند.",
        alert_subject="[{project}] هشدار «{rule}»: {metric} {score} در {channel}",
        alert_title="هشدار: {rule}",
        alert_intro="پاسخی با قاعدهٔ هشدار «{rule}» جور درآمد.",
        drop_subject="[{project}] هشدار «{rule}»: {metric} به {score} افت کرد",
        spike_subject="[{project}] هشدار «{rule}»: {count} پاسخ",
        drop_intro="{metric} نسبت به {previous} بیش از بازهٔ اطمینان ۹۵٪ افت کرد.",
        spike_intro="شمار پاسخ‌ها نسبت به {previous} جهش کرد.",
        previous_periods={
            "hour": "ساعت پیش",
            "day": "روز پیش",
            "week": "هفتهٔ پیش",
        },
        this_period="این بازه",
        previous_period="بازهٔ پیش",
        breach_subject="[{project}] پیگیری دیرکرد دارد: {metric} {score} در {channel}",
        breach_title="مهلت یک پیگیری گذشته است",
        breach_intro=(
            "کسی در {hours} ساعت به این پیگیری رسیدگی نکرد (قاعدهٔ «{rule}»). این پیام را"
            " به‌عنوان مرجع ارجاع این قاعده دریافت می‌کنید."
        ),
        opened="باز شده",
        due="مهلت",
        status="وضعیت",
        assignee="مسئول",
        nobody="هیچ‌کس",
        digest_subjects={
            "daily": "[{project}] گزارش روزانه: {date}",
            "weekly": "[{project}] گزارش هفتگی: هفتهٔ {date}",
        },
        digest_titles={"daily": "گزارش روزانه", "weekly": "گزارش هفتگی"},
        digest_period="از {start} تا {end}",
        scores_title="امتیازها به تفکیک کانال",
        score_line=(
            "{channel}، {metric}: {score} ({responses}: {count})؛"
            " {before}: {previous}؛ {change}: {trend}"
        ),
        before={"daily": "روز پیش", "weekly": "هفتهٔ پیش"},
        change="تغییر",
        trend_up="افزایش {}",
        trend_down="کاهش {}",
        trend_same="بی‌تغییر",
        no_scores="در این بازه و بازهٔ پیش از آن پاسخی نیست.",
        items_title="پیگیری‌هایی که اقدام می‌خواهند",
        items_count="{open} باز، {overdue} با دیرکرد.",
        items_shown="{shown} موردی که مهلتشان زودتر است:",
        no_items="پیگیری بازی نیست.",
        overdue_since="دیرکرد از {}",
        due_on="مهلت {}",
        test_subject="voxloop: ایمیل آزمایشی",
        test_text="این ایمیل نشان می‌دهد که voxloop می‌تواند از راه {server} ایمیل بفرستد.",
    ),
    "id": MailWords(
        project="Proyek",
        rule="Aturan",
        open_dashboard="Buka dasbor",
        open_response="Lihat jawaban",
        open_item="Buka tindak lanjut",
        footer="Dikirim oleh voxloop dari {url}. Waktu dalam UTC.",
        footer_bare="Dikirim oleh voxloop. Waktu dalam UTC.",
        alert_subject="[{project}] Peringatan “{rule}”: {metric} {score} di {channel}",
        alert_title="Peringatan: {rule}",
        alert_intro="Sebuah jawaban cocok dengan aturan peringatan “{rule}”.",
        drop_subject="[{project}] Peringatan “{rule}”: {metric} turun ke {score}",
        spike_subject="[{project}] Peringatan “{rule}”: {count} jawaban",
        drop_intro="{metric} turun melewati interval 95%-nya dibandingkan {previous}.",
        spike_intro="Jumlah jawaban melonjak dibandingkan {previous}.",
        previous_periods={
            "hour": "jam sebelumnya",
            "day": "hari sebelumnya",
            "week": "minggu sebelumnya",
        },
        this_period="Periode ini",
        previous_period="Periode sebelumnya",
        breach_subject="[{project}] Tindak lanjut terlambat: {metric} {score} di {channel}",
        breach_title="Sebuah tindak lanjut melewati tenggat",
        breach_intro=(
            "Tidak ada yang menindaklanjuti ini dalam {hours} jam (aturan “{rule}”). Anda"
            " menerima email ini sebagai kontak eskalasi aturan tersebut."
        ),
        opened="Dibuka",
        due="Tenggat",
        status="Status",
        assignee="Penanggung jawab",
        nobody="Tidak ada",
        digest_subjects={
            "daily": "[{project}] Ringkasan harian: {date}",
            "weekly": "[{project}] Ringkasan mingguan: minggu {date}",
        },
        digest_titles={"daily": "Ringkasan harian", "weekly": "Ringkasan mingguan"},
        digest_period="{start} sampai {end}",
        scores_title="Skor per kanal",
        score_line=(
            "{channel}, {metric}: {score} ({responses}: {count});"
            " {before}: {previous}; {change}: {trend}"
        ),
        before={"daily": "Hari sebelumnya", "weekly": "Minggu sebelumnya"},
        change="Perubahan",
        trend_up="naik {}",
        trend_down="turun {}",
        trend_same="tidak berubah",
        no_scores="Tidak ada jawaban pada periode ini maupun sebelumnya.",
        items_title="Tindak lanjut yang perlu ditangani",
        items_count="{open} terbuka, {overdue} terlambat.",
        items_shown="{shown} dengan tenggat terdekat:",
        no_items="Tidak ada tindak lanjut yang terbuka.",
        overdue_since="Terlambat sejak {}",
        due_on="Tenggat {}",
        test_subject="voxloop: email uji coba",
        test_text="Email ini menunjukkan bahwa voxloop dapat mengirim email melalui {server}.",
    ),
}
