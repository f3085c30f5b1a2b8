"""The scrubber on its own: the four types of personal data in English, Arabic, Persian and
Indonesian comments, in every script's digits; the regions phone numbers are read in; and what
looks like personal data but isn't (prices, order numbers, dates, times), which must survive."""

from __future__ import annotations

import re

import msgspec
import pytest

import voxloop_core
from voxloop_gateway.privacy.scrub import DEFAULT_SCRUBBER, Scrubber, scrub_records

SCRUB = DEFAULT_SCRUBBER.scrub

#: A card number that passes Luhn (Visa's test number) and one digit off it.
CARD = "4111 1111 1111 1111"
NOT_CARD = "4111 1111 1111 1112"
#: An IBAN with a good checksum (the ECBS example) and the same with one digit changed.
IBAN = "DE89 3704 0044 0532 0130 00"
NOT_IBAN = "DE89 3704 0044 0532 0130 01"
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


# --- the four types, in four languages ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # English
        ("Write to jane.doe+cx@mail.example.co.uk, thanks", "Write to [email], thanks"),
        ("Call me on +1 415 555 2671 after six", "Call me on [phone] after six"),
        ("Call me on (415) 555-2671 after six", "Call me on [phone] after six"),
        ("My number is 020 7946 0958.", "My number is [phone]."),
        (f"Charged twice on card {CARD}!", "Charged twice on card [card]!"),
        (f"Refund to {IBAN} please", "Refund to [iban] please"),
        # Arabic: a Saudi mobile in Arabic-Indic digits, an Egyptian one in ASCII digits
        ("اتصل بي على ٠٥٠١٢٣٤٥٦٧ من فضلك", "اتصل بي على [phone] من فضلك"),
        ("رقمي 01001234567 شكرا", "رقمي [phone] شكرا"),
        ("راسلني على ahmad@example.sa", "راسلني على [email]"),
        (f"رقم الآيبان {IBAN} لو سمحت", "رقم الآيبان [iban] لو سمحت"),
        # Persian: an Iranian mobile in Persian digits, a card in Persian digits
        ("با ۰۹۱۲ ۳۴۵ ۶۷۸۹ تماس بگیرید", "با [phone] تماس بگیرید"),
        ("شماره‌ام +98 912 345 6789 است", "شماره‌ام [phone] است"),
        (f"کارت {CARD.translate(PERSIAN_DIGITS)} دو بار کسر شد", "کارت [card] دو بار کسر شد"),
        ("ایمیل من reza@example.ir است", "ایمیل من [email] است"),
        # Indonesian
        ("Hubungi saya di 0812-3456-7890 ya", "Hubungi saya di [phone] ya"),
        ("Email saya budi_s@example.co.id", "Email saya [email]"),
        (f"Kartu {CARD.replace(' ', '-')} terpotong dua kali", "Kartu [card] terpotong dua kali"),
        ("Transfer ke NL91ABNA0417164300 kemarin", "Transfer ke [iban] kemarin"),
    ],
)
def test_each_type_is_replaced_by_its_placeholder(text: str, expected: str) -> None:
    scrubbed, counts = SCRUB(text)
    assert scrubbed == expected
    assert sum(counts.values()) == 1 and f"[{next(iter(counts))}]" in expected


def test_every_hit_of_a_comment_is_counted_by_type_never_by_value() -> None:
    text = (
        f"a@example.com, b@example.org, +44 20 7946 0958, {CARD} and {IBAN.lower()};"
        " Rp 250.000 for order #A-10023 on 2024-03-15"
    )
    scrubbed, counts = SCRUB(text)
    assert scrubbed == (
        "[email], [email], [phone], [card] and [iban]; Rp 250.000 for order #A-10023 on 2024-03-15"
    )
    assert counts == {"email": 2, "phone": 1, "card": 1, "iban": 1}


def test_the_issues_persian_mobile_is_found() -> None:
    assert SCRUB("۰۹۱۲ ۳۴۵ ۶۷۸۹") == ("[phone]", {"phone": 1})


@pytest.mark.parametrize(
    ("number", "region"),
    [
        ("0501234567", "SA"),  # Saudi mobile
        ("01001234567", "EG"),  # Egyptian mobile
        ("0501234567", "AE"),  # UAE mobile
        ("09123456789", "IR"),  # Iranian mobile
    ],
)
def test_arabic_indic_and_persian_digits_are_read_for_the_region_they_are_valid_in(
    number: str, region: str
) -> None:
    for digits in (ARABIC_DIGITS, PERSIAN_DIGITS):
        written = number.translate(digits)
        assert Scrubber(regions=[region]).scrub(f"رقمي {written}") == ("رقمي [phone]", {"phone": 1})


def test_national_numbers_are_read_only_in_the_regions_given_international_ones_anywhere() -> None:
    iranian = "با ۰۹۱۲ ۳۴۵ ۶۷۸۹ تماس بگیرید"
    assert Scrubber(regions=["US"]).scrub(iranian) == (iranian, {})
    assert Scrubber(regions=["IR"]).scrub(iranian)[0] == "با [phone] تماس بگیرید"
    assert Scrubber(regions=["US"]).scrub("+98 912 345 6789")[0] == "[phone]"
    indonesian = "hubungi 0812-3456-7890"
    assert Scrubber(regions=["GB", "IR"]).scrub(indonesian) == (indonesian, {})
    assert Scrubber(regions=["ID"]).scrub(indonesian)[0] == "hubungi [phone]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call 0912 345 6789 10am", "call [phone] 10am"),
        ("ref 15/03/2024 0912 345 6789", "ref 15/03/2024 [phone]"),
        ("2024-03-15 10:30 call 09123456789", "2024-03-15 10:30 call [phone]"),
        ("0812-3456-7890/0812-3456-7891", "[phone]/[phone]"),
        ("tel:+442079460958", "tel:[phone]"),
        ("call +1 (415) 555-2671 now", "call [phone] now"),
    ],
)
def test_a_phone_number_beside_other_digits_is_found(text: str, expected: str) -> None:
    assert SCRUB(text)[0] == expected


def test_a_region_libphonenumber_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="'XX' is not a region"):
        Scrubber(regions=["XX"])


# --- what must survive ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # prices
        "It cost $1,299.00 and the shipping was free",
        "Harganya Rp 150.000 saja",
        "Harganya Rp 1.500.000, mahal",
        "Harganya Rp 15.000.000",
        "Saya bayar 1500000 rupiah",
        "قیمت ۱۲۰٬۰۰۰ تومان بود",
        "قیمت ۱۲٬۵۰۰٬۰۰۰ تومان بود",
        "السعر ١٢٠٠ ريال",
        "€ 2.499,99 is too much",
        # order numbers and references
        "Order #A-10023 never arrived",
        "order 4412 was late",
        "order 12345678 was late",
        "Ticket #2024031512 is still open",
        "Invoice No. 2024031512",
        "tracking 1Z999AA10123456784",
        # dates and times
        "Delivered on 2024-03-15, not 2024-03-12",
        "Delivered 15/03/2024 at 14:05",
        "2024-03-15T10:30:00Z",
        "تحویل در ۱۴۰۳/۰۱/۲۵ ساعت ۱۰:۳۰",
        "Opening hours 09:00-17:30",
        # short numbers, a card and an IBAN that fail their checksums
        "Only 3 of 12 items, 45 minutes late, room 1204",
        f"Card {NOT_CARD} was refused",
        f"IBAN {NOT_IBAN} bounced",
        # not an email address
        "Thanks @team and @support!",
        "rated it 5@home",
        "",
    ],
)
def test_what_is_not_personal_data_survives(text: str) -> None:
    assert SCRUB(text) == (text, {})


def test_a_card_is_found_beside_other_numbers_and_an_iban_before_more_words() -> None:
    assert SCRUB(f"{CARD} 2024")[0] == "[card] 2024"
    assert SCRUB(f"IBAN {IBAN} THANKS AGAIN")[0] == "IBAN [iban] THANKS AGAIN"
    assert SCRUB(f"ref {CARD}, {IBAN}.")[0] == "ref [card], [iban]."


# --- the operator's own patterns, and records ------------------------------------------------


def test_custom_patterns_replace_their_hits_after_the_built_in_ones() -> None:
    scrubber = Scrubber(
        [("member_id", re.compile(r"\bM-\d{6}\b")), ("plate", re.compile("B 1234 XY"))]
    )
    text = "Member M-123456 (plate B 1234 XY), mail m@example.com"
    assert scrubber.scrub(text) == (
        "Member [member_id] (plate [plate]), mail [email]",
        {"member_id": 1, "plate": 1, "email": 1},
    )


def _records(comments: list[str | None]) -> list[voxloop_core.Record]:
    events = [
        {"channel": "web", "form": "f", "metric": "csat", "score": 4, "ts": 1_700_000_000_000}
        | ({} if comment is None else {"comment": comment})
        for comment in comments
    ]
    decoded, _ = voxloop_core.decode_batch(msgspec.json.encode({"events": events}))
    records, refused = voxloop_core.validate(
        decoded, voxloop_core.DEFAULT_POLICY, 1_700_000_000_000, b"s" * 32
    )
    assert not refused
    return records


def test_records_keep_everything_but_the_scrubbed_comment() -> None:
    records = _records(["fine, thanks", "call +1 415 555 2671 or a@example.com", None])
    scrubbed, counts = scrub_records(DEFAULT_SCRUBBER, records)
    assert counts == {"phone": 1, "email": 1}
    assert scrubbed[0] is records[0] and scrubbed[2] is records[2]
    assert scrubbed[1].comment == "call [phone] or [email]"
    assert msgspec.structs.replace(scrubbed[1], comment=records[1].comment) == records[1]
