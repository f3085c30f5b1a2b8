"""The dashboard's words in en, ar, fa and id: every label, message and name its pages show.

One :class:`Words` a language, in :data:`WORDS`; a field with ``{}`` takes a value through
:meth:`str.format` (a number already written for the language, or a name). Numbers, dates and
the choice of language are :mod:`.app_i18n`'s. The metric and the built-in channel names are
here too, so that a page never shows ``csat`` where a person reads "CSAT %" or "رضا العملاء".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["LANGUAGE_NAMES", "WORDS", "Words"]

#: Each language's name in itself, for the language menu.
LANGUAGE_NAMES: Final[dict[str, str]] = {
    "en": "English",
    "ar": "العربية",
    "fa": "فارسی",
    "id": "Bahasa Indonesia",
}


@dataclass(frozen=True, slots=True)
class Words:
    """Every word the dashboard's pages show, in one language.

    Fields with ``{}`` take values through :meth:`str.format`; the values are formatted
    numbers or names, escaped when the template prints the result.
    """

    # the layout
    skip: str
    sections: str
    projects: str
    dashboard: str
    responses: str
    exports: str
    signed_in_as: str
    change_password: str
    log_out: str
    language: str
    times_utc: str
    # logging in and the password
    login_title: str
    email: str
    password: str
    log_in: str
    login_failed: str
    login_throttled: str
    logged_out: str
    please_log_in: str
    password_title: str
    must_change: str
    current_password: str
    new_password: str
    repeat_password: str
    save_password: str
    password_rules: str
    passwords_differ: str
    wrong_password: str
    # the project list
    projects_title: str
    no_projects: str
    # the overview
    overview_title: str
    period: str
    periods: dict[str, str]
    show: str
    scores_title: str
    interval_95: str
    count: str
    no_data: str
    held_notice: str
    see_held: str
    trend_title: str
    metric: str
    interval: str
    intervals: dict[str, str]
    chart_label: str
    chart_loading: str
    chart_failed: str
    chart_numbers: str
    period_start: str
    time: str
    score: str
    low: str
    high: str
    latest_only: str
    channels_title: str
    channel: str
    forms_title: str
    form: str
    # the stream
    search: str
    filters: str
    all: str
    any: str
    score_min: str
    score_max: str
    comment: str
    with_comment: str
    without_comment: str
    tag: str
    locale: str
    date_from: str
    date_to: str
    held: str
    held_options: dict[str, str]
    apply: str
    clear: str
    no_responses: str
    older: str
    newest: str
    details: str
    revised: str
    not_counted: str
    export_title: str
    export_these: str
    export_text: str
    format: str
    formats: dict[str, str]
    download: str
    # a response
    response_title: str
    answered: str
    received: str
    tags: str
    meta: str
    respondent: str
    history_title: str
    no_history: str
    counted: str
    yes: str
    no: str
    others_title: str
    no_others: str
    anonymous: str
    back: str
    # refusals
    error_titles: dict[int, str]
    error_other: str
    go_home: str
    # the names of the contract's metrics, built-in channels and vote states
    metrics: dict[str, str]
    channels: dict[str, str]

    # the follow-up inbox
    followups: str
    followup_views: dict[str, str]
    which_items: str
    statuses: dict[str, str]
    status: str
    assignee: str
    nobody: str
    due: str
    due_in: str
    overdue_by: str
    breached: str
    durations: dict[str, str]
    percent: str
    no_followups: str
    older_items: str
    newest_items: str
    select_item: str
    bulk_title: str
    assign_to: str
    assign: str
    assign_me: str
    unassign: str
    open_item: str
    # the SLA figure
    sla_title: str
    sla_windows: dict[str, str]
    sla_share: str
    sla_counts: str
    sla_median: str
    sla_by_team: str
    sla_trend: str
    team: str
    unassigned_team: str
    items_count: str
    in_time: str
    late: str
    waiting: str
    sla_empty: str
    step: str
    # a follow-up item
    followup_title: str
    back_to_followups: str
    rule: str
    created: str
    finished: str
    response_gone: str
    changes_title: str
    the_gateway: str
    change_kinds: dict[str, str]
    work_title: str
    new_status: str
    change_status: str
    note: str
    add_note: str
    save_tags: str
    tags_hint: str
    end_title: str
    resolution: str
    finish: str
    done_notes: dict[str, str]
    failed: str
    view_only: str
    # webhooks
    webhooks: str
    endpoints_title: str
    no_endpoints: str
    url: str
    event_types: str
    description: str
    state: str
    endpoint_states: dict[str, str]
    disabled_because: str
    failing_since: str
    add_endpoint: str
    add: str
    secret_once: str
    secret: str
    rotate: str
    previous_until: str
    enable: str
    remove: str
    remove_confirm: str
    log_title: str
    no_attempts: str
    event: str
    result: str
    delivery: str
    delivery_states: dict[str, str]
    redeliver: str
    older_attempts: str
    all_endpoints: str
    webhook_done: dict[str, str]
    # the audit log
    audit_log: str
    audit_intro: str
    actor: str
    action: str
    action_hint: str
    project_name: str
    target: str
    address: str
    no_entries: str
    older_entries: str
    newest_entries: str
    audit_export_text: str


WORDS: Final[dict[str, Words]] = {
    "en": Words(
        skip="Skip to the content",
        sections="Sections",
        projects="Projects",
        dashboard="Dashboard",
        responses="Feedback inbox",
        exports="Exports",
        signed_in_as="Signed in as {}",
        change_password="Change password",
        log_out="Log out",
        language="Language",
        times_utc="Times are in UTC.",
        login_title="Log in to voxloop",
        email="Email",
        password="Password",
        log_in="Log in",
        login_failed="Wrong email or password.",
        login_throttled="Too many attempts. Try again in {} seconds.",
        logged_out="You have logged out.",
        please_log_in="Please log in to continue.",
        password_title="Choose a new password",
        must_change="Your password was given for one use only: choose your own to continue.",
        current_password="Current password",
        new_password="New password",
        repeat_password="New password, again",
        save_password="Save the new password",
        password_rules=(
            "{} to 128 characters; not your email address, nor the password it replaces."
        ),
        passwords_differ="The two new passwords differ.",
        wrong_password="The current password is wrong.",
        projects_title="Your projects",
        no_projects="You have access to no project yet: ask an owner to add you to a group.",
        overview_title="Overview",
        period="Period",
        periods={
            "7d": "Last 7 days",
            "30d": "Last 30 days",
            "90d": "Last 90 days",
            "365d": "Last 12 months",
            "all": "All time",
        },
        show="Show",
        scores_title="Scores",
        interval_95="95% interval",
        count="Responses",
        no_data="No responses in this period.",
        held_notice=(
            "{} email votes were held apart: their clicks looked like a link scanner's. They are"
            " stored, never in the scores."
        ),
        see_held="See the held votes",
        trend_title="Trend",
        metric="Metric",
        interval="Interval",
        intervals={"hour": "Hour", "day": "Day", "week": "Week", "month": "Month"},
        chart_label="{} by {}, with its 95% interval",
        chart_loading="Drawing the chart…",
        chart_failed="The chart could not be loaded; the table below has its numbers.",
        chart_numbers="The chart's numbers",
        period_start="Period starting",
        time="Time",
        score="Score",
        low="Low",
        high="High",
        latest_only="The latest {} periods.",
        channels_title="Channels side by side",
        channel="Channel",
        forms_title="By form",
        form="Form",
        search="Search the comments",
        filters="Filters",
        all="All",
        any="Any",
        score_min="Lowest score",
        score_max="Highest score",
        comment="Comment",
        with_comment="With a comment",
        without_comment="Without a comment",
        tag="Tag",
        locale="Language of the answer",
        date_from="From",
        date_to="Until",
        held="Held votes",
        held_options={
            "none": "Not held",
            "quarantined": "Held: a link scanner's",
            "late": "Held: after the edit window",
            "any": "Held, for either reason",
        },
        apply="Apply",
        clear="Clear the filters",
        no_responses="No responses match.",
        older="Older responses",
        newest="Newest responses",
        details="Details",
        revised="Answer changed",
        not_counted="Not in the score",
        export_title="Export",
        export_these="Export these responses",
        export_text="The responses that match the filters above, every page of them.",
        format="Format",
        formats={"csv": "CSV", "csv-excel": "CSV for Excel", "ndjson": "NDJSON"},
        download="Download",
        response_title="Response",
        answered="Answered",
        received="Received",
        tags="Tags",
        meta="Details from the site",
        respondent="Respondent",
        history_title="Vote history",
        no_history="This answer was never changed.",
        counted="Counted",
        yes="Yes",
        no="No",
        others_title="The same respondent's other feedback",
        no_others="No other feedback from this respondent.",
        anonymous="This response carries no respondent id.",
        back="Back to the inbox",
        error_titles={
            400: "This request can't be answered",
            403: "You have no access to this",
            404: "Nothing here",
            429: "Too many requests",
            503: "Try again in a moment",
        },
        error_other="Something went wrong",
        go_home="Go to your projects",
        metrics={
            "nps": "NPS",
            "csat": "CSAT %",
            "ces": "CES",
            "likert": "Likert %",
            "thumbs": "Thumbs up %",
        },
        channels={"web": "Web", "app": "App", "email": "Email"},
        followups="Follow-up inbox",
        followup_views={
            "all": "All",
            "mine": "Mine",
            "unassigned": "Unassigned",
            "overdue": "Overdue",
        },
        which_items="Which items",
        statuses={
            "new": "New",
            "assigned": "Assigned",
            "in_progress": "In progress",
            "resolved": "Resolved",
            "closed": "Closed",
        },
        status="Status",
        assignee="Assignee",
        nobody="Nobody",
        due="Due",
        due_in="Due in {}",
        overdue_by="Overdue by {}",
        breached="SLA breached",
        durations={"d": "{} d", "h": "{} h", "min": "{} min"},
        percent="{}%",
        no_followups="No follow-ups here.",
        older_items="Older items",
        newest_items="Newest items",
        select_item="Select the item: {}",
        bulk_title="The selected items",
        assign_to="Assign to (email address)",
        assign="Assign",
        assign_me="Assign to me",
        unassign="Unassign",
        open_item="Open the item",
        sla_title="Followed up within the SLA",
        sla_windows={"day": "The last {} days", "week": "The last {} weeks"},
        sla_share="Within the SLA",
        sla_counts="{} in time, {} late, {} waiting",
        sla_median="Median time to first action",
        sla_by_team="By team",
        sla_trend="Over time",
        team="Team",
        unassigned_team="Not assigned",
        items_count="Items",
        in_time="In time",
        late="Late",
        waiting="Waiting",
        sla_empty="No follow-up items in this period yet.",
        step="Periods",
        followup_title="Follow-up",
        back_to_followups="Back to the follow-ups",
        rule="Rule",
        created="Created",
        finished="Finished",
        response_gone="The response is no longer stored.",
        changes_title="History",
        the_gateway="voxloop (automatic)",
        change_kinds={
            "created": "Created by a rule",
            "status": "Status changed",
            "assignee": "Assignee changed",
            "tags": "Tags changed",
            "note": "Note",
            "resolution": "Resolution note changed",
            "response": "The answer changed",
            "breached": "Past due, escalated",
        },
        work_title="Work on it",
        new_status="New status",
        change_status="Change the status",
        note="Internal note",
        add_note="Add the note",
        save_tags="Save the tags",
        tags_hint="Separate tags with commas.",
        end_title="Resolve or close",
        resolution="Resolution note",
        finish="Save and finish",
        done_notes={
            "assign": "Assigned.",
            "me": "Assigned to you.",
            "unassign": "Unassigned.",
            "status": "The status was changed.",
            "end": "The item was finished.",
            "note": "The note was added.",
            "tags": "The tags were saved.",
        },
        failed="That could not be done:",
        view_only="You can look at this, but not change it.",
        webhooks="Webhooks",
        endpoints_title="Endpoints",
        no_endpoints="No endpoints yet.",
        url="URL",
        event_types="Events",
        description="Description",
        state="State",
        endpoint_states={"active": "Active", "failing": "Failing", "disabled": "Disabled"},
        disabled_because="Disabled: {}",
        failing_since="Failing since {}",
        add_endpoint="Add an endpoint",
        add="Add the endpoint",
        secret_once="The signing secret of {}. Copy it now: it is not shown again.",
        secret="Signing secret",
        rotate="Rotate the secret",
        previous_until="The previous secret signs too until {}.",
        enable="Enable",
        remove="Remove",
        remove_confirm="Remove this endpoint and its delivery log",
        log_title="Delivery log",
        no_attempts="No deliveries yet.",
        event="Event",
        result="Result",
        delivery="Delivery",
        delivery_states={"pending": "Pending", "delivered": "Delivered", "failed": "Failed"},
        redeliver="Redeliver",
        older_attempts="Older attempts",
        all_endpoints="All endpoints",
        webhook_done={
            "enable": "The endpoint was enabled.",
            "remove": "The endpoint was removed.",
            "redeliver": "The message is sent again: the log shows the new attempt.",
        },
        audit_log="Audit log",
        audit_intro=(
            "Who did what, and when: logins, responses read, exports, erasures, and changes "
            "of keys, users, groups, webhooks, rules and privacy policies. Each record is "
            "kept {} days."
        ),
        actor="Who",
        action="Action",
        action_hint="A dotted name: key keeps key.create and key.revoke.",
        project_name="Project",
        target="Subject",
        address="Address",
        no_entries="No records match these filters.",
        older_entries="Older records",
        newest_entries="Newest records",
        audit_export_text="Download every record these filters keep.",
    ),
    "ar": Words(
        skip="انتقل إلى المحتوى",
        sections="الأقسام",
        projects="المشاريع",
        dashboard="لوحة المعلومات",
        responses="صندوق الآراء",
        exports="التصدير",
        signed_in_as="مسجَّل الدخول باسم {}",
        change_password="تغيير كلمة المرور",
        log_out="تسجيل الخروج",
        language="اللغة",
        times_utc="الأوقات بالتوقيت العالمي المنسَّق (UTC).",
        login_title="تسجيل الدخول إلى voxloop",
        email="البريد الإلكتروني",
        password="كلمة المرور",
        log_in="تسجيل الدخول",
        login_failed="البريد الإلكتروني أو كلمة المرور غير صحيحة.",
        login_throttled="محاولات كثيرة جدًا. أعد المحاولة بعد {} ثانية.",
        logged_out="لقد سجّلت الخروج.",
        please_log_in="يُرجى تسجيل الدخول للمتابعة.",
        password_title="اختر كلمة مرور جديدة",
        must_change="أُعطيت كلمة المرور هذه لاستخدام واحد فقط: اختر كلمة مرورك للمتابعة.",
        current_password="كلمة المرور الحالية",
        new_password="كلمة المرور الجديدة",
        repeat_password="كلمة المرور الجديدة مرة أخرى",
        save_password="حفظ كلمة المرور الجديدة",
        password_rules=(
            "من {} إلى ١٢٨ حرفًا؛ لا تكون عنوان بريدك الإلكتروني ولا كلمة المرور التي تحل محلها."
        ),
        passwords_differ="كلمتا المرور الجديدتان مختلفتان.",
        wrong_password="كلمة المرور الحالية غير صحيحة.",
        projects_title="مشاريعك",
        no_projects="ليس لديك وصول إلى أي مشروع بعد: اطلب من أحد المالكين إضافتك إلى مجموعة.",
        overview_title="نظرة عامة",
        period="الفترة",
        periods={
            "7d": "آخر ٧ أيام",
            "30d": "آخر ٣٠ يومًا",
            "90d": "آخر ٩٠ يومًا",
            "365d": "آخر ١٢ شهرًا",
            "all": "كل الأوقات",
        },
        show="عرض",
        scores_title="الدرجات",
        interval_95="مجال الثقة ٩٥٪",
        count="الإجابات",
        no_data="لا توجد إجابات في هذه الفترة.",
        held_notice=(
            "عُزلت {} من أصوات البريد الإلكتروني: بدت نقراتها كنقرات ماسح روابط. إنها محفوظة،"
            " ولا تدخل في الدرجات أبدًا."
        ),
        see_held="عرض الأصوات المعزولة",
        trend_title="الاتجاه",
        metric="المقياس",
        interval="الفاصل",
        intervals={"hour": "ساعة", "day": "يوم", "week": "أسبوع", "month": "شهر"},
        chart_label="{} حسب {}، مع مجال الثقة ٩٥٪",
        chart_loading="جارٍ رسم المخطط…",
        chart_failed="تعذّر تحميل المخطط؛ أرقامه في الجدول أدناه.",
        chart_numbers="أرقام المخطط",
        period_start="بداية الفترة",
        time="الوقت",
        score="الدرجة",
        low="الحد الأدنى",
        high="الحد الأعلى",
        latest_only="آخر {} فترة.",
        channels_title="القنوات جنبًا إلى جنب",
        channel="القناة",
        forms_title="حسب النموذج",
        form="النموذج",
        search="البحث في التعليقات",
        filters="عوامل التصفية",
        all="الكل",
        any="أي",
        score_min="أدنى درجة",
        score_max="أعلى درجة",
        comment="التعليق",
        with_comment="مع تعليق",
        without_comment="بلا تعليق",
        tag="الوسم",
        locale="لغة الإجابة",
        date_from="من",
        date_to="حتى",
        held="الأصوات المعزولة",
        held_options={
            "none": "غير معزولة",
            "quarantined": "معزولة: نقرات ماسح روابط",
            "late": "معزولة: بعد مهلة التعديل",
            "any": "معزولة لأي من السببين",
        },
        apply="تطبيق",
        clear="مسح عوامل التصفية",
        no_responses="لا توجد إجابات مطابقة.",
        older="إجابات أقدم",
        newest="أحدث الإجابات",
        details="التفاصيل",
        revised="تغيّرت الإجابة",
        not_counted="خارج الدرجة",
        export_title="التصدير",
        export_these="تصدير هذه الإجابات",
        export_text="الإجابات المطابقة لعوامل التصفية أعلاه، بكل صفحاتها.",
        format="الصيغة",
        formats={"csv": "CSV", "csv-excel": "CSV لبرنامج Excel", "ndjson": "NDJSON"},
        download="تنزيل",
        response_title="إجابة",
        answered="وقت الإجابة",
        received="وقت الاستلام",
        tags="الوسوم",
        meta="تفاصيل من الموقع",
        respondent="المجيب",
        history_title="سجل التصويت",
        no_history="لم تتغيّر هذه الإجابة قط.",
        counted="محسوبة",
        yes="نعم",
        no="لا",
        others_title="آراء أخرى من المجيب نفسه",
        no_others="لا توجد آراء أخرى من هذا المجيب.",
        anonymous="لا تحمل هذه الإجابة معرّف مجيب.",
        back="العودة إلى صندوق الآراء",
        error_titles={
            400: "لا يمكن الإجابة عن هذا الطلب",
            403: "ليس لديك وصول إلى هذا",
            404: "لا يوجد شيء هنا",
            429: "طلبات كثيرة جدًا",
            503: "أعد المحاولة بعد قليل",
        },
        error_other="حدث خطأ ما",
        go_home="الانتقال إلى مشاريعك",
        metrics={
            "nps": "صافي نقاط الترويج (NPS)",
            "csat": "رضا العملاء (CSAT) ٪",
            "ces": "جهد العميل (CES)",
            "likert": "مقياس ليكرت ٪",
            "thumbs": "الإعجاب ٪",
        },
        channels={"web": "الويب", "app": "التطبيق", "email": "البريد الإلكتروني"},
        followups="صندوق المتابعة",
        followup_views={
            "all": "الكل",
            "mine": "المسندة إليّ",
            "unassigned": "غير المسندة",
            "overdue": "المتأخرة",
        },
        which_items="أي العناصر",
        statuses={
            "new": "جديد",
            "assigned": "مُسند",
            "in_progress": "قيد المعالجة",
            "resolved": "محلول",
            "closed": "مغلق",
        },
        status="الحالة",
        assignee="المسؤول",
        nobody="لا أحد",
        due="الموعد النهائي",
        due_in="يستحق خلال {}",
        overdue_by="متأخر بمقدار {}",
        breached="تجاوز المهلة",
        durations={"d": "{} يوم", "h": "{} ساعة", "min": "{} دقيقة"},
        percent="{}٪",
        no_followups="لا توجد متابعات هنا.",
        older_items="عناصر أقدم",
        newest_items="أحدث العناصر",
        select_item="تحديد العنصر: {}",
        bulk_title="العناصر المحددة",
        assign_to="إسناد إلى (البريد الإلكتروني)",
        assign="إسناد",
        assign_me="إسناد إليّ",
        unassign="إلغاء الإسناد",
        open_item="فتح العنصر",
        sla_title="المتابعة ضمن المهلة",
        sla_windows={"day": "آخر {} أيام", "week": "آخر {} أسابيع"},
        sla_share="ضمن المهلة",
        sla_counts="{} في الوقت، {} متأخرة، {} بالانتظار",
        sla_median="وسيط زمن أول إجراء",
        sla_by_team="حسب الفريق",
        sla_trend="عبر الزمن",
        team="الفريق",
        unassigned_team="غير مُسندة",
        items_count="العناصر",
        in_time="في الوقت",
        late="متأخرة",
        waiting="بالانتظار",
        sla_empty="لا توجد عناصر متابعة في هذه الفترة بعد.",
        step="الفترات",
        followup_title="متابعة",
        back_to_followups="العودة إلى المتابعات",
        rule="القاعدة",
        created="وقت الإنشاء",
        finished="وقت الإنهاء",
        response_gone="لم تعد هذه الإجابة محفوظة.",
        changes_title="السجل",
        the_gateway="voxloop (تلقائيًا)",
        change_kinds={
            "created": "أنشأتها قاعدة",
            "status": "تغيّرت الحالة",
            "assignee": "تغيّر المسؤول",
            "tags": "تغيّرت الوسوم",
            "note": "ملاحظة",
            "resolution": "تغيّرت ملاحظة الحل",
            "response": "تغيّرت الإجابة",
            "breached": "تجاوزت المهلة وصُعّدت",
        },
        work_title="العمل عليها",
        new_status="الحالة الجديدة",
        change_status="تغيير الحالة",
        note="ملاحظة داخلية",
        add_note="إضافة الملاحظة",
        save_tags="حفظ الوسوم",
        tags_hint="افصل بين الوسوم بفواصل.",
        end_title="الحل أو الإغلاق",
        resolution="ملاحظة الحل",
        finish="حفظ وإنهاء",
        done_notes={
            "assign": "تم الإسناد.",
            "me": "أُسندت إليك.",
            "unassign": "أُلغي الإسناد.",
            "status": "تغيّرت الحالة.",
            "end": "أُنهي العنصر.",
            "note": "أُضيفت الملاحظة.",
            "tags": "حُفظت الوسوم.",
        },
        failed="تعذّر تنفيذ ذلك:",
        view_only="يمكنك الاطلاع على هذا دون تغييره.",
        webhooks="خطافات الويب",
        endpoints_title="نقاط الاستقبال",
        no_endpoints="لا توجد نقاط استقبال بعد.",
        url="العنوان (URL)",
        event_types="الأحداث",
        description="الوصف",
        state="الحالة",
        endpoint_states={"active": "نشطة", "failing": "متعثرة", "disabled": "معطّلة"},
        disabled_because="معطّلة: {}",
        failing_since="متعثرة منذ {}",
        add_endpoint="إضافة نقطة استقبال",
        add="إضافة نقطة الاستقبال",
        secret_once="سرّ التوقيع لـ {}. انسخه الآن: لن يظهر مرة أخرى.",
        secret="سرّ التوقيع",
        rotate="تدوير السرّ",
        previous_until="يوقّع السرّ السابق أيضًا حتى {}.",
        enable="تفعيل",
        remove="إزالة",
        remove_confirm="إزالة نقطة الاستقبال هذه وسجل تسليمها",
        log_title="سجل التسليم",
        no_attempts="لا توجد عمليات تسليم بعد.",
        event="الحدث",
        result="النتيجة",
        delivery="التسليم",
        delivery_states={"pending": "قيد الانتظار", "delivered": "سُلّمت", "failed": "فشلت"},
        redeliver="إعادة الإرسال",
        older_attempts="محاولات أقدم",
        all_endpoints="كل نقاط الاستقبال",
        webhook_done={
            "enable": "فُعّلت نقطة الاستقبال.",
            "remove": "أُزيلت نقطة الاستقبال.",
            "redeliver": "أُعيد إرسال الرسالة: يظهر السجل المحاولة الجديدة.",
        },
        audit_log="سجل التدقيق",
        audit_intro=(
            "من فعل ماذا ومتى: تسجيلات الدخول، وقراءة الردود، والتصدير، والمحو، وتغيير "
            "المفاتيح والمستخدمين والمجموعات وخطافات الويب والقواعد وسياسات الخصوصية. يُحفظ "
            "كل سجل {} يومًا."
        ),
        actor="مَن",
        action="الإجراء",
        action_hint="اسم منقّط: key يشمل key.create و key.revoke.",
        project_name="المشروع",
        target="على ماذا",
        address="العنوان",
        no_entries="لا سجلات تطابق هذه المرشحات.",
        older_entries="سجلات أقدم",
        newest_entries="أحدث السجلات",
        audit_export_text="نزّل كل السجلات التي تُبقيها هذه المرشحات.",
    ),
    "fa": Words(
        skip="رفتن به محتوا",
        sections="بخش‌ها",
        projects="پروژه‌ها",
        dashboard="داشبورد",
        responses="صندوق بازخورد",
        exports="خروجی",
        signed_in_as="واردشده با {}",
        change_password="تغییر گذرواژه",
        log_out="خروج",
        language="زبان",
        times_utc="زمان‌ها به وقت هماهنگ جهانی (UTC) هستند.",
        login_title="ورود به voxloop",
        email="ایمیل",
        password="گذرواژه",
        log_in="ورود",
        login_failed="ایمیل یا گذرواژه نادرست است.",
        login_throttled="تلاش‌ها بیش از حد است. {} ثانیه دیگر دوباره تلاش کنید.",
        logged_out="از حساب خود خارج شدید.",
        please_log_in="برای ادامه لطفاً وارد شوید.",
        password_title="گذرواژهٔ تازه‌ای برگزینید",
        must_change=(
            "این گذرواژه فقط برای یک بار داده شده است: برای ادامه گذرواژهٔ خودتان را برگزینید."
        ),
        current_password="گذرواژهٔ کنونی",
        new_password="گذرواژهٔ تازه",
        repeat_password="تکرار گذرواژهٔ تازه",
        save_password="ذخیرهٔ گذرواژهٔ تازه",
        password_rules="{} تا ۱۲۸ نویسه؛ نه نشانی ایمیل شما و نه گذرواژه‌ای که جایگزینش می‌شود.",
        passwords_differ="دو گذرواژهٔ تازه یکسان نیستند.",
        wrong_password="گذرواژهٔ کنونی نادرست است.",
        projects_title="پروژه‌های شما",
        no_projects=(
            "هنوز به هیچ پروژه‌ای دسترسی ندارید: از یکی از مالکان بخواهید شما را به گروهی بیفزاید."
        ),
        overview_title="نمای کلی",
        period="بازه",
        periods={
            "7d": "۷ روز گذشته",
            "30d": "۳۰ روز گذشته",
            "90d": "۹۰ روز گذشته",
            "365d": "۱۲ ماه گذشته",
            "all": "همهٔ زمان‌ها",
        },
        show="نمایش",
        scores_title="امتیازها",
        interval_95="بازهٔ اطمینان ۹۵٪",
        count="پاسخ‌ها",
        no_data="در این بازه پاسخی نیست.",
        held_notice=(
            "{} رأی ایمیلی کنار گذاشته شد: کلیک‌هایشان به کلیک‌های یک پویشگر پیوند می‌مانست."
            " ذخیره شده‌اند، ولی هرگز در امتیازها نیستند."
        ),
        see_held="دیدن رأی‌های کنارگذاشته",
        trend_title="روند",
        metric="سنجه",
        interval="فاصله",
        intervals={"hour": "ساعت", "day": "روز", "week": "هفته", "month": "ماه"},
        chart_label="{} بر حسب {}، با بازهٔ اطمینان ۹۵٪",
        chart_loading="در حال رسم نمودار…",
        chart_failed="نمودار بارگیری نشد؛ اعدادش در جدول زیر است.",
        chart_numbers="اعداد نمودار",
        period_start="آغاز بازه",
        time="زمان",
        score="امتیاز",
        low="کران پایین",
        high="کران بالا",
        latest_only="{} بازهٔ آخر.",
        channels_title="کانال‌ها در کنار هم",
        channel="کانال",
        forms_title="بر پایهٔ فرم",
        form="فرم",
        search="جست‌وجو در نظرها",
        filters="پالایه‌ها",
        all="همه",
        any="هر کدام",
        score_min="کمترین امتیاز",
        score_max="بیشترین امتیاز",
        comment="نظر",
        with_comment="با نظر",
        without_comment="بی‌نظر",
        tag="برچسب",
        locale="زبان پاسخ",
        date_from="از",
        date_to="تا",
        held="رأی‌های کنارگذاشته",
        held_options={
            "none": "کنار گذاشته نشده",
            "quarantined": "کنارگذاشته: کلیک پویشگر پیوند",
            "late": "کنارگذاشته: پس از مهلت ویرایش",
            "any": "کنارگذاشته به هر دلیل",
        },
        apply="اعمال",
        clear="پاک کردن پالایه‌ها",
        no_responses="هیچ پاسخی مطابق نیست.",
        older="پاسخ‌های قدیمی‌تر",
        newest="تازه‌ترین پاسخ‌ها",
        details="جزئیات",
        revised="پاسخ تغییر کرده",
        not_counted="بیرون از امتیاز",
        export_title="خروجی گرفتن",
        export_these="خروجی گرفتن از این پاسخ‌ها",
        export_text="پاسخ‌هایی که با پالایه‌های بالا می‌خوانند، با همهٔ صفحه‌هایشان.",
        format="قالب",
        formats={"csv": "CSV", "csv-excel": "CSV برای Excel", "ndjson": "NDJSON"},
        download="بارگیری",
        response_title="پاسخ",
        answered="زمان پاسخ",
        received="زمان دریافت",
        tags="برچسب‌ها",
        meta="جزئیات از سایت",
        respondent="پاسخ‌دهنده",
        history_title="تاریخچهٔ رأی",
        no_history="این پاسخ هرگز تغییر نکرده است.",
        counted="شمرده‌شده",
        yes="بله",
        no="خیر",
        others_title="بازخوردهای دیگر همین پاسخ‌دهنده",
        no_others="بازخورد دیگری از این پاسخ‌دهنده نیست.",
        anonymous="این پاسخ شناسهٔ پاسخ‌دهنده ندارد.",
        back="بازگشت به صندوق بازخورد",
        error_titles={
            400: "به این درخواست نمی‌توان پاسخ داد",
            403: "به این بخش دسترسی ندارید",
            404: "اینجا چیزی نیست",
            429: "درخواست‌ها بیش از حد است",
            503: "کمی بعد دوباره تلاش کنید",
        },
        error_other="مشکلی پیش آمد",
        go_home="رفتن به پروژه‌های شما",
        metrics={
            "nps": "خالص امتیاز ترویج (NPS)",
            "csat": "رضایت مشتری (CSAT) ٪",
            "ces": "تلاش مشتری (CES)",
            "likert": "مقیاس لیکرت ٪",
            "thumbs": "پسندیدن ٪",
        },
        channels={"web": "وب", "app": "اپ", "email": "ایمیل"},
        followups="صندوق پیگیری",
        followup_views={
            "all": "همه",
            "mine": "مال من",
            "unassigned": "بی‌مسئول",
            "overdue": "گذشته از موعد",
        },
        which_items="کدام موارد",
        statuses={
            "new": "تازه",
            "assigned": "واگذارشده",
            "in_progress": "در حال انجام",
            "resolved": "حل‌شده",
            "closed": "بسته",
        },
        status="وضعیت",
        assignee="مسئول",
        nobody="هیچ‌کس",
        due="موعد",
        due_in="موعد تا {} دیگر",
        overdue_by="{} گذشته از موعد",
        breached="مهلت گذشته",
        durations={"d": "{} روز", "h": "{} ساعت", "min": "{} دقیقه"},
        percent="{}٪",
        no_followups="اینجا پیگیری‌ای نیست.",
        older_items="موارد قدیمی‌تر",
        newest_items="تازه‌ترین موارد",
        select_item="انتخاب مورد: {}",
        bulk_title="موارد انتخاب‌شده",
        assign_to="واگذاری به (نشانی ایمیل)",
        assign="واگذاری",
        assign_me="واگذاری به من",
        unassign="لغو واگذاری",
        open_item="باز کردن مورد",
        sla_title="پیگیری در مهلت",
        sla_windows={"day": "{} روز گذشته", "week": "{} هفتهٔ گذشته"},
        sla_share="در مهلت",
        sla_counts="{} به‌موقع، {} دیرهنگام، {} در انتظار",
        sla_median="میانهٔ زمان تا نخستین اقدام",
        sla_by_team="بر پایهٔ تیم",
        sla_trend="در گذر زمان",
        team="تیم",
        unassigned_team="واگذارنشده",
        items_count="موارد",
        in_time="به‌موقع",
        late="دیرهنگام",
        waiting="در انتظار",
        sla_empty="هنوز در این بازه مورد پیگیری‌ای نیست.",
        step="بازه‌ها",
        followup_title="پیگیری",
        back_to_followups="بازگشت به پیگیری‌ها",
        rule="قاعده",
        created="زمان ایجاد",
        finished="زمان پایان",
        response_gone="این پاسخ دیگر ذخیره نیست.",
        changes_title="تاریخچه",
        the_gateway="voxloop (خودکار)",
        change_kinds={
            "created": "ساخته‌شده با یک قاعده",
            "status": "تغییر وضعیت",
            "assignee": "تغییر مسئول",
            "tags": "تغییر برچسب‌ها",
            "note": "یادداشت",
            "resolution": "تغییر یادداشت حل",
            "response": "تغییر پاسخ",
            "breached": "گذشتن از مهلت و ارجاع",
        },
        work_title="کار روی آن",
        new_status="وضعیت تازه",
        change_status="تغییر وضعیت",
        note="یادداشت داخلی",
        add_note="افزودن یادداشت",
        save_tags="ذخیرهٔ برچسب‌ها",
        tags_hint="برچسب‌ها را با ویرگول جدا کنید.",
        end_title="حل یا بستن",
        resolution="یادداشت حل",
        finish="ذخیره و پایان",
        done_notes={
            "assign": "واگذار شد.",
            "me": "به شما واگذار شد.",
            "unassign": "واگذاری لغو شد.",
            "status": "وضعیت تغییر کرد.",
            "end": "مورد به پایان رسید.",
            "note": "یادداشت افزوده شد.",
            "tags": "برچسب‌ها ذخیره شد.",
        },
        failed="انجام نشد:",
        view_only="می‌توانید این را ببینید، ولی نمی‌توانید تغییرش دهید.",
        webhooks="وب‌هوک‌ها",
        endpoints_title="نقطه‌های دریافت",
        no_endpoints="هنوز نقطهٔ دریافتی نیست.",
        url="نشانی (URL)",
        event_types="رویدادها",
        description="توضیح",
        state="وضعیت",
        endpoint_states={"active": "فعال", "failing": "ناموفق", "disabled": "غیرفعال"},
        disabled_because="غیرفعال: {}",
        failing_since="ناموفق از {}",
        add_endpoint="افزودن نقطهٔ دریافت",
        add="افزودن این نقطهٔ دریافت",
        secret_once="رمز امضای {}. همین حالا رونوشت بگیرید: دوباره نشان داده نمی‌شود.",
        secret="رمز امضا",
        rotate="چرخش رمز",
        previous_until="رمز پیشین هم تا {} امضا می‌کند.",
        enable="فعال کردن",
        remove="حذف",
        remove_confirm="حذف این نقطهٔ دریافت و گزارش تحویل آن",
        log_title="گزارش تحویل",
        no_attempts="هنوز تحویلی نبوده است.",
        event="رویداد",
        result="نتیجه",
        delivery="تحویل",
        delivery_states={"pending": "در انتظار", "delivered": "تحویل‌شده", "failed": "ناموفق"},
        redeliver="تحویل دوباره",
        older_attempts="تلاش‌های قدیمی‌تر",
        all_endpoints="همهٔ نقطه‌های دریافت",
        webhook_done={
            "enable": "نقطهٔ دریافت فعال شد.",
            "remove": "نقطهٔ دریافت حذف شد.",
            "redeliver": "پیام دوباره فرستاده می‌شود: گزارش، تلاش تازه را نشان می‌دهد.",
        },
        audit_log="گزارش ممیزی",
        audit_intro=(
            "چه کسی چه کاری را کی انجام داد: ورودها، خواندن پاسخ‌ها، خروجی‌ها، پاک‌سازی‌ها و "
            "تغییر کلیدها، کاربران، گروه‌ها، وب‌هوک‌ها، قاعده‌ها و سیاست‌های حریم خصوصی. هر "
            "رکورد {} روز نگه داشته می‌شود."
        ),
        actor="چه کسی",
        action="کار",
        action_hint="نامی نقطه‌دار: key شامل key.create و key.revoke است.",
        project_name="پروژه",
        target="روی چه",
        address="نشانی",
        no_entries="هیچ رکوردی با این فیلترها جور نیست.",
        older_entries="رکوردهای قدیمی‌تر",
        newest_entries="تازه‌ترین رکوردها",
        audit_export_text="همهٔ رکوردهایی را که این فیلترها نگه می‌دارند دانلود کنید.",
    ),
    "id": Words(
        skip="Langsung ke konten",
        sections="Bagian",
        projects="Proyek",
        dashboard="Dasbor",
        responses="Kotak masukan",
        exports="Ekspor",
        signed_in_as="Masuk sebagai {}",
        change_password="Ubah kata sandi",
        log_out="Keluar",
        language="Bahasa",
        times_utc="Waktu dalam UTC.",
        login_title="Masuk ke voxloop",
        email="Email",
        password="Kata sandi",
        log_in="Masuk",
        login_failed="Email atau kata sandi salah.",
        login_throttled="Terlalu banyak percobaan. Coba lagi dalam {} detik.",
        logged_out="Anda sudah keluar.",
        please_log_in="Silakan masuk untuk melanjutkan.",
        password_title="Pilih kata sandi baru",
        must_change=(
            "Kata sandi Anda hanya untuk sekali pakai: pilih kata sandi Anda sendiri untuk"
            " melanjutkan."
        ),
        current_password="Kata sandi saat ini",
        new_password="Kata sandi baru",
        repeat_password="Ulangi kata sandi baru",
        save_password="Simpan kata sandi baru",
        password_rules=(
            "{} sampai 128 karakter; bukan alamat email Anda, bukan pula kata sandi yang"
            " digantikannya."
        ),
        passwords_differ="Kedua kata sandi baru berbeda.",
        wrong_password="Kata sandi saat ini salah.",
        projects_title="Proyek Anda",
        no_projects=(
            "Anda belum punya akses ke proyek mana pun: minta pemilik menambahkan Anda ke grup."
        ),
        overview_title="Ringkasan",
        period="Periode",
        periods={
            "7d": "7 hari terakhir",
            "30d": "30 hari terakhir",
            "90d": "90 hari terakhir",
            "365d": "12 bulan terakhir",
            "all": "Sepanjang waktu",
        },
        show="Tampilkan",
        scores_title="Skor",
        interval_95="Interval 95%",
        count="Jawaban",
        no_data="Tidak ada jawaban pada periode ini.",
        held_notice=(
            "{} suara email ditahan: kliknya tampak seperti klik pemindai tautan. Suara itu"
            " disimpan, tetapi tidak pernah masuk skor."
        ),
        see_held="Lihat suara yang ditahan",
        trend_title="Tren",
        metric="Metrik",
        interval="Interval",
        intervals={"hour": "Jam", "day": "Hari", "week": "Minggu", "month": "Bulan"},
        chart_label="{} per {}, dengan interval 95%",
        chart_loading="Menggambar grafik…",
        chart_failed="Grafik tidak dapat dimuat; angkanya ada di tabel di bawah.",
        chart_numbers="Angka grafik",
        period_start="Awal periode",
        time="Waktu",
        score="Skor",
        low="Bawah",
        high="Atas",
        latest_only="{} periode terakhir.",
        channels_title="Kanal berdampingan",
        channel="Kanal",
        forms_title="Per formulir",
        form="Formulir",
        search="Cari di komentar",
        filters="Filter",
        all="Semua",
        any="Apa saja",
        score_min="Skor terendah",
        score_max="Skor tertinggi",
        comment="Komentar",
        with_comment="Dengan komentar",
        without_comment="Tanpa komentar",
        tag="Tag",
        locale="Bahasa jawaban",
        date_from="Dari",
        date_to="Sampai",
        held="Suara yang ditahan",
        held_options={
            "none": "Tidak ditahan",
            "quarantined": "Ditahan: pemindai tautan",
            "late": "Ditahan: lewat batas waktu ubah",
            "any": "Ditahan, alasan apa pun",
        },
        apply="Terapkan",
        clear="Hapus filter",
        no_responses="Tidak ada jawaban yang cocok.",
        older="Jawaban lebih lama",
        newest="Jawaban terbaru",
        details="Rincian",
        revised="Jawaban diubah",
        not_counted="Tidak masuk skor",
        export_title="Ekspor",
        export_these="Ekspor jawaban ini",
        export_text="Jawaban yang cocok dengan filter di atas, semua halamannya.",
        format="Format",
        formats={"csv": "CSV", "csv-excel": "CSV untuk Excel", "ndjson": "NDJSON"},
        download="Unduh",
        response_title="Jawaban",
        answered="Dijawab",
        received="Diterima",
        tags="Tag",
        meta="Rincian dari situs",
        respondent="Responden",
        history_title="Riwayat suara",
        no_history="Jawaban ini tidak pernah diubah.",
        counted="Dihitung",
        yes="Ya",
        no="Tidak",
        others_title="Masukan lain dari responden yang sama",
        no_others="Tidak ada masukan lain dari responden ini.",
        anonymous="Jawaban ini tidak membawa id responden.",
        back="Kembali ke kotak masukan",
        error_titles={
            400: "Permintaan ini tidak dapat dijawab",
            403: "Anda tidak punya akses ke sini",
            404: "Tidak ada apa-apa di sini",
            429: "Terlalu banyak permintaan",
            503: "Coba lagi sebentar lagi",
        },
        error_other="Terjadi kesalahan",
        go_home="Ke proyek Anda",
        metrics={
            "nps": "NPS",
            "csat": "CSAT %",
            "ces": "CES",
            "likert": "Likert %",
            "thumbs": "Jempol ke atas %",
        },
        channels={"web": "Web", "app": "Aplikasi", "email": "Email"},
        followups="Kotak tindak lanjut",
        followup_views={
            "all": "Semua",
            "mine": "Milik saya",
            "unassigned": "Belum ditugaskan",
            "overdue": "Terlambat",
        },
        which_items="Item mana",
        statuses={
            "new": "Baru",
            "assigned": "Ditugaskan",
            "in_progress": "Sedang dikerjakan",
            "resolved": "Selesai",
            "closed": "Ditutup",
        },
        status="Status",
        assignee="Penanggung jawab",
        nobody="Tidak ada",
        due="Tenggat",
        due_in="Tenggat dalam {}",
        overdue_by="Terlambat {}",
        breached="SLA terlampaui",
        durations={"d": "{} hr", "h": "{} jam", "min": "{} mnt"},
        percent="{}%",
        no_followups="Tidak ada tindak lanjut di sini.",
        older_items="Item lebih lama",
        newest_items="Item terbaru",
        select_item="Pilih item: {}",
        bulk_title="Item yang dipilih",
        assign_to="Tugaskan ke (alamat email)",
        assign="Tugaskan",
        assign_me="Tugaskan ke saya",
        unassign="Batalkan penugasan",
        open_item="Buka item",
        sla_title="Ditindaklanjuti dalam SLA",
        sla_windows={"day": "{} hari terakhir", "week": "{} minggu terakhir"},
        sla_share="Dalam SLA",
        sla_counts="{} tepat waktu, {} terlambat, {} menunggu",
        sla_median="Median waktu hingga tindakan pertama",
        sla_by_team="Per tim",
        sla_trend="Dari waktu ke waktu",
        team="Tim",
        unassigned_team="Belum ditugaskan",
        items_count="Item",
        in_time="Tepat waktu",
        late="Terlambat",
        waiting="Menunggu",
        sla_empty="Belum ada item tindak lanjut pada periode ini.",
        step="Periode",
        followup_title="Tindak lanjut",
        back_to_followups="Kembali ke tindak lanjut",
        rule="Aturan",
        created="Dibuat",
        finished="Diselesaikan",
        response_gone="Jawaban ini tidak lagi disimpan.",
        changes_title="Riwayat",
        the_gateway="voxloop (otomatis)",
        change_kinds={
            "created": "Dibuat oleh aturan",
            "status": "Status diubah",
            "assignee": "Penanggung jawab diubah",
            "tags": "Tag diubah",
            "note": "Catatan",
            "resolution": "Catatan penyelesaian diubah",
            "response": "Jawaban berubah",
            "breached": "Lewat tenggat, dieskalasi",
        },
        work_title="Kerjakan",
        new_status="Status baru",
        change_status="Ubah status",
        note="Catatan internal",
        add_note="Tambahkan catatan",
        save_tags="Simpan tag",
        tags_hint="Pisahkan tag dengan koma.",
        end_title="Selesaikan atau tutup",
        resolution="Catatan penyelesaian",
        finish="Simpan dan selesaikan",
        done_notes={
            "assign": "Sudah ditugaskan.",
            "me": "Ditugaskan ke Anda.",
            "unassign": "Penugasan dibatalkan.",
            "status": "Status sudah diubah.",
            "end": "Item sudah diselesaikan.",
            "note": "Catatan sudah ditambahkan.",
            "tags": "Tag sudah disimpan.",
        },
        failed="Itu tidak dapat dilakukan:",
        view_only="Anda dapat melihat ini, tetapi tidak mengubahnya.",
        webhooks="Webhook",
        endpoints_title="Endpoint",
        no_endpoints="Belum ada endpoint.",
        url="URL",
        event_types="Peristiwa",
        description="Deskripsi",
        state="Keadaan",
        endpoint_states={"active": "Aktif", "failing": "Gagal terus", "disabled": "Nonaktif"},
        disabled_because="Nonaktif: {}",
        failing_since="Gagal sejak {}",
        add_endpoint="Tambahkan endpoint",
        add="Tambahkan endpoint ini",
        secret_once="Rahasia penanda tangan {}. Salin sekarang: tidak akan ditampilkan lagi.",
        secret="Rahasia penanda tangan",
        rotate="Ganti rahasia",
        previous_until="Rahasia sebelumnya juga menandatangani hingga {}.",
        enable="Aktifkan",
        remove="Hapus",
        remove_confirm="Hapus endpoint ini beserta log pengirimannya",
        log_title="Log pengiriman",
        no_attempts="Belum ada pengiriman.",
        event="Peristiwa",
        result="Hasil",
        delivery="Pengiriman",
        delivery_states={"pending": "Menunggu", "delivered": "Terkirim", "failed": "Gagal"},
        redeliver="Kirim ulang",
        older_attempts="Percobaan lebih lama",
        all_endpoints="Semua endpoint",
        webhook_done={
            "enable": "Endpoint sudah diaktifkan.",
            "remove": "Endpoint sudah dihapus.",
            "redeliver": "Pesan dikirim ulang: log menampilkan percobaan baru.",
        },
        audit_log="Log audit",
        audit_intro=(
            "Siapa melakukan apa, dan kapan: login, tanggapan yang dibaca, ekspor, "
            "penghapusan, serta perubahan kunci, pengguna, grup, webhook, aturan, dan "
            "kebijakan privasi. Setiap catatan disimpan {} hari."
        ),
        actor="Siapa",
        action="Tindakan",
        action_hint="Nama bertitik: key mencakup key.create dan key.revoke.",
        project_name="Proyek",
        target="Sasaran",
        address="Alamat",
        no_entries="Tidak ada catatan yang cocok dengan filter ini.",
        older_entries="Catatan lebih lama",
        newest_entries="Catatan terbaru",
        audit_export_text="Unduh semua catatan yang dipertahankan filter ini.",
    ),
}
