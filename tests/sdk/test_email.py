"""``voxloop.email``: signed rating links, their round trip, tampering, expiry and the HTML row."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import re
import subprocess
import sys
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxloop import email
from voxloop._errors import ValidationError, VoxloopError
from voxloop.email import (
    MAX_TOKEN_CHARS,
    METRIC_RANGES,
    EmailTokenError,
    ExpiredToken,
    ForgedToken,
    RatingLink,
    Vote,
    rating_html,
    rating_links,
    rating_text,
    verify,
)
from voxloop.i18n import STRINGS

SECRET = bytes(range(32))  # 00 01 … 1f: the test vector's secret, easy to type anywhere
OTHER_SECRET = bytes(range(1, 33))
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
EXPIRES = datetime(2026, 12, 23, 12, tzinfo=UTC)  # 1798027200
BASE = "https://feedback.example.com"
FIELDS: dict[str, Any] = {
    "project": "acme",
    "campaign": "2026-11-nps",
    "form": "checkout",
    "metric": "nps",
    "recipient": "c-8f3a2c71",
}
# The README's test vector: another implementation must make exactly this token.
VECTOR_TOKEN = (
    "v1.YWNtZQoyMDI2LTExLW5wcwpjaGVja291dApucHMKOQpjLThmM2EyYzcxCjE3OTgwMjcyMDA"
    ".Jq_Ow75zXTGeyTr3NV64Ow"
)
VECTOR_VOTE_KEY = "email:x-mR3Ks-E-SpxEkDoyvoYd2T9kVESQxtsi3lA0-hIBE"
TYPICAL_TOKEN_CHARS = 100  # documented: "about 100 characters"
URL_SAFE = re.compile(r"[A-Za-z0-9._-]+")


def links(**changes: Any) -> list[RatingLink]:
    arguments = {**FIELDS, "expires_at": EXPIRES, "now": NOW, **changes}
    return rating_links(arguments.pop("base_url", BASE), SECRET, **arguments)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(payload: bytes, secret: bytes = SECRET, version: str = "v1") -> str:
    """The token format as the README states it, written again from the text."""
    body = b64(payload)
    mac = hmac.new(secret, f"{version}.{body}".encode("ascii"), hashlib.sha256).digest()
    return f"{version}.{body}.{b64(mac[:16])}"


def payload(**changes: str) -> bytes:
    fields = {
        "project": "acme",
        "campaign": "2026-11-nps",
        "form": "checkout",
        "metric": "nps",
        "score": "9",
        "recipient": "c-8f3a2c71",
        "expires": "1798027200",
        **changes,
    }
    return "\n".join(fields.values()).encode("utf-8")


# --- the format -----------------------------------------------------------------------------


def test_the_readme_test_vector() -> None:
    [token] = [link.token for link in links() if link.score == 9]
    assert token == VECTOR_TOKEN == sign(payload())
    vote = verify(VECTOR_TOKEN, SECRET, now=NOW)
    assert vote == Vote("acme", "2026-11-nps", "checkout", "nps", 9, "c-8f3a2c71", EXPIRES)
    assert vote.vote_key == VECTOR_VOTE_KEY


@pytest.mark.parametrize("metric", list(METRIC_RANGES))
def test_round_trip_every_score(metric: str) -> None:
    made = links(metric=metric)
    low, high = METRIC_RANGES[metric]
    assert [link.score for link in made] == list(range(low, high + 1))
    for link in made:
        assert link.url == f"{BASE}/r/{link.token}"
        assert link.metric == metric
        vote = verify(link.token, SECRET, now=NOW)
        assert (vote.project, vote.campaign, vote.form) == ("acme", "2026-11-nps", "checkout")
        assert (vote.metric, vote.score, vote.recipient) == (metric, link.score, "c-8f3a2c71")
        assert vote.expires_at == EXPIRES


def test_one_vote_key_per_campaign_form_and_recipient() -> None:
    keys = {verify(link.token, SECRET, now=NOW).vote_key for link in links()}
    assert keys == {VECTOR_VOTE_KEY}
    joined = b"2026-11-nps\ncheckout\nc-8f3a2c71"
    assert VECTOR_VOTE_KEY == "email:" + b64(hashlib.sha256(joined).digest())
    assert len(VECTOR_VOTE_KEY) == 49  # within the contract's 128 characters
    for other in ({"campaign": "2026-12-nps"}, {"form": "support"}, {"recipient": "c-2"}):
        [link] = links(metric="thumbs", **other)[:1]
        assert verify(link.token, SECRET, now=NOW).vote_key != VECTOR_VOTE_KEY
    # The metric and the project don't take part: one answer per email and form.
    same = links(metric="csat", project="acme-eu")[0]
    assert verify(same.token, SECRET, now=NOW).vote_key == VECTOR_VOTE_KEY


def test_votes_are_frozen() -> None:
    vote = verify(VECTOR_TOKEN, SECRET, now=NOW)
    with pytest.raises(FrozenInstanceError):
        vote.score = 10  # type: ignore[misc]


def test_a_recipient_in_any_script_round_trips() -> None:
    for recipient in ("مشتری-۴۲", "pelanggan 42", "a@example.com", "<script>x</script>"):
        [link] = links(metric="thumbs", recipient=recipient)[1:]
        assert verify(link.token, SECRET, now=NOW).recipient == recipient
        assert URL_SAFE.fullmatch(link.token)


# --- URLs and length ------------------------------------------------------------------------


def test_links_are_url_safe_and_short() -> None:
    for link in links():
        assert URL_SAFE.fullmatch(link.token)
        assert quote(link.token, safe="") == link.token  # nothing to percent-encode
        assert len(link.token) <= TYPICAL_TOKEN_CHARS
        assert len(link.url) <= len(BASE) + len("/r/") + TYPICAL_TOKEN_CHARS


def test_no_token_is_longer_than_the_documented_maximum() -> None:
    longest = links(
        project="p" * 64,
        campaign="c" * 64,
        form="f" * 64,
        metric="likert",
        recipient="ر" * 64,  # 128 bytes of UTF-8
        expires_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    )
    assert max(len(link.token) for link in longest) == MAX_TOKEN_CHARS == 486
    vote = verify(longest[-1].token, SECRET, now=NOW)
    assert vote.expires_at.year == 9999


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://feedback.example.com/", "https://feedback.example.com/r/TOKEN"),
        ("https://example.com/voxloop", "https://example.com/voxloop/r/TOKEN"),
        ("http://localhost:8000", "http://localhost:8000/r/TOKEN"),
        ("https://shop.example/rate?t={token}", "https://shop.example/rate?t=TOKEN"),
        ("https://shop.example/rate/{token}/", "https://shop.example/rate/TOKEN/"),
    ],
    ids=["trailing-slash", "path-prefix", "http-port", "template-query", "template-path"],
)
def test_base_url(base_url: str, url: str) -> None:
    link = links(base_url=base_url)[0]
    assert link.url == url.replace("TOKEN", link.token)


# --- tampering ------------------------------------------------------------------------------


def _flip(text: str, index: int) -> str:
    swapped = "A" if text[index] != "A" else "B"
    return text[:index] + swapped + text[index + 1 :]


def _swap_mac(token: str) -> str:
    other = links(recipient="c-someone-else")[9].token
    return token.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]


def _swap_payload(token: str) -> str:
    other = links(recipient="c-someone-else")[9].token
    return other.rsplit(".", 1)[0] + "." + token.rsplit(".", 1)[1]


TAMPERS = {
    "payload-first-char": lambda t: _flip(t, 3),
    "payload-middle-char": lambda t: _flip(t, 40),
    "payload-last-char": lambda t: _flip(t, t.rindex(".") - 1),
    "mac-first-char": lambda t: _flip(t, t.rindex(".") + 1),
    "mac-last-char": lambda t: _flip(t, len(t) - 1),
    "version-v2": lambda t: "v2" + t[2:],
    "version-V1": lambda t: "V1" + t[2:],
    "no-version": lambda t: t[3:],
    "separator-dash": lambda t: t[: t.rindex(".")] + "-" + t[t.rindex(".") + 1 :],
    "separator-tilde": lambda t: t.replace(".", "~"),
    "extra-part": lambda t: t + ".AAAA",
    "truncated-by-one": lambda t: t[:-1],
    "truncated-mac": lambda t: t[: t.rindex(".") + 8],
    "mac-removed": lambda t: t[: t.rindex(".")] + ".",
    "payload-removed": lambda t: "v1.." + t.rsplit(".", 1)[1],
    "padding-added": lambda t: t + "==",
    "space-appended": lambda t: t + " ",
    "percent-encoded": lambda t: t.replace("_", "%5F").replace("-", "%2D"),
    "non-ascii": lambda t: t[:10] + "é" + t[11:],
    "upper-cased": lambda t: t[:3] + t[3:].upper(),
    "mac-of-another-recipient": _swap_mac,
    "payload-of-another-recipient": _swap_payload,
    "made-with-another-secret": lambda t: sign(payload(), OTHER_SECRET),
    "empty": lambda t: "",
    "too-long": lambda t: t + "A" * MAX_TOKEN_CHARS,
}


@pytest.mark.parametrize("tamper", list(TAMPERS.values()), ids=list(TAMPERS))
def test_tampered_tokens_are_forged(tamper: Any) -> None:
    with pytest.raises(ForgedToken):
        verify(tamper(VECTOR_TOKEN), SECRET, now=NOW)


def test_every_single_character_change_is_forged() -> None:
    for index in range(len(VECTOR_TOKEN)):
        for replacement in "A_-.0z":
            if VECTOR_TOKEN[index] == replacement:
                continue
            token = VECTOR_TOKEN[:index] + replacement + VECTOR_TOKEN[index + 1 :]
            with pytest.raises(ForgedToken):
                verify(token, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (VECTOR_TOKEN.replace("v1.", "v2.", 1), "unknown token version 'v2'; expected 'v1'"),
        (VECTOR_TOKEN + ".x", "3 parts separated by '.'"),
        (VECTOR_TOKEN.replace("_", "/"), "must be base64url"),
        (VECTOR_TOKEN[:-1] + "B", "signature doesn't match"),
        (sign(payload(), OTHER_SECRET), "signature doesn't match"),
        ("A" * (MAX_TOKEN_CHARS + 1), f"longer than any valid one ({MAX_TOKEN_CHARS})"),
    ],
    ids=["version", "parts", "alphabet", "mac", "other-secret", "length"],
)
def test_forged_messages_say_why(token: str, message: str) -> None:
    with pytest.raises(ForgedToken, match=re.escape(message)):
        verify(token, SECRET, now=NOW)


SIGNED_BUT_BAD = {
    "score-out-of-range": (payload(score="11"), "nps score must be 0..10, got 11"),
    "score-negative": (payload(score="-1"), "score must be a decimal integer"),
    "score-leading-zero": (payload(score="09"), "score must be a decimal integer"),
    "score-plus-sign": (payload(score="+9"), "score must be a decimal integer"),
    "score-arabic-digit": (payload(score="٩"), "score must be a decimal integer"),
    "score-float": (payload(score="9.0"), "score must be a decimal integer"),
    "score-empty": (payload(score=""), "score must be a decimal integer"),
    "csat-zero": (payload(metric="csat", score="0"), "csat score must be 1..5, got 0"),
    "metric-unknown": (payload(metric="stars"), "unknown metric 'stars'"),
    "metric-upper-case": (payload(metric="NPS"), "unknown metric 'NPS'"),
    "project-empty": (payload(project=""), "project must be 1-64 characters"),
    "campaign-space": (payload(campaign="nov nps"), "campaign must be 1-64 characters"),
    "form-too-long": (payload(form="f" * 65), "form must be 1-64 characters"),
    "recipient-empty": (payload(recipient=""), "recipient must be 1-128 bytes"),
    "recipient-tab": (payload(recipient="a\tb"), "recipient must not contain control"),
    "expiry-zero": (payload(expires="0"), "expiry must be 1..253402300799"),
    "expiry-year-10000": (payload(expires="253402300800"), "expiry must be 1..253402300799"),
    "expiry-float": (payload(expires="1798027200.5"), "expiry must be a decimal integer"),
    "six-fields": (payload().rsplit(b"\n", 1)[0], "payload must have 7 fields, got 6"),
    "eight-fields": (payload() + b"\nx", "payload must have 7 fields, got 8"),
    "crlf": (payload().replace(b"\n", b"\r\n"), "must be"),
    "not-utf8": (payload(recipient="x").replace(b"\nx\n", b"\n\xff\n"), "isn't UTF-8"),
}


@pytest.mark.parametrize(
    ("data", "message"), list(SIGNED_BUT_BAD.values()), ids=list(SIGNED_BUT_BAD)
)
def test_signed_but_malformed_payloads_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ForgedToken, match=r"signed but malformed: .*" + re.escape(message)):
        verify(sign(data), SECRET, now=NOW)


def test_non_canonical_base64_is_refused_even_when_signed() -> None:
    body = b64(payload())  # 74 characters: the last one carries 2 unused bits
    loose = body[:-1] + chr(ord(body[-1]) + 1)
    assert base64.urlsafe_b64decode(loose + "==") == payload()
    mac = hmac.new(SECRET, f"v1.{loose}".encode(), hashlib.sha256).digest()[:16]
    with pytest.raises(ForgedToken, match="isn't canonical base64url"):
        verify(f"v1.{loose}.{b64(mac)}", SECRET, now=NOW)


# --- expiry ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [EXPIRES, EXPIRES + timedelta(microseconds=1), EXPIRES + timedelta(days=400)],
    ids=["at-expiry", "just-after", "long-after"],
)
def test_expired(now: datetime) -> None:
    with pytest.raises(ExpiredToken, match="expired at 2026-12-23T12:00:00") as caught:
        verify(VECTOR_TOKEN, SECRET, now=now)
    assert caught.value.vote.score == 9
    assert caught.value.vote.vote_key == VECTOR_VOTE_KEY


def test_valid_just_before_expiry() -> None:
    vote = verify(VECTOR_TOKEN, SECRET, now=EXPIRES - timedelta(microseconds=1))
    assert vote.score == 9


def test_expiry_is_an_instant_whatever_the_time_zone() -> None:
    tokyo = EXPIRES.astimezone(timezone(timedelta(hours=9)))
    with pytest.raises(ExpiredToken):
        verify(VECTOR_TOKEN, SECRET, now=tokyo)
    assert verify(VECTOR_TOKEN, SECRET, now=tokyo - timedelta(seconds=1)).score == 9


def test_a_forged_expired_token_is_reported_as_forged() -> None:
    forged = sign(payload(expires="1000"), OTHER_SECRET)
    with pytest.raises(ForgedToken):
        verify(forged, SECRET, now=NOW)


def test_verify_checks_the_current_time_by_default() -> None:
    with pytest.raises(ExpiredToken):
        verify(sign(payload(expires="1000000000")), SECRET)  # 2001
    assert verify(sign(payload(expires="253402300799")), SECRET).score == 9


def test_expiry_defaults_to_30_days_rounded_down_to_the_second() -> None:
    now = NOW + timedelta(microseconds=700_000)
    vote = verify(links(expires_at=None, now=now)[0].token, SECRET, now=NOW)
    assert vote.expires_at == NOW + timedelta(days=30)
    vote = verify(links(expires_at=None, expires_in=timedelta(hours=1))[0].token, SECRET, now=NOW)
    assert vote.expires_at == NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"expires_in": timedelta(days=1)}, "give expires_in or expires_at, not both"),
        ({"expires_at": NOW}, "not after now"),
        ({"expires_at": None, "expires_in": timedelta(seconds=-5)}, "not after now"),
        ({"expires_at": datetime(2026, 12, 1)}, "expires_at must be timezone-aware"),
        ({"now": datetime(2026, 11, 1)}, "now must be timezone-aware"),
    ],
    ids=["both", "at-now", "negative", "naive-expires-at", "naive-now"],
)
def test_expiry_arguments(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        links(**changes)


def test_verify_wants_an_aware_now() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        verify(VECTOR_TOKEN, SECRET, now=datetime(2026, 11, 23))


# --- secrets and fields ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 16, 31], ids=lambda n: f"{n}-bytes")
def test_short_secrets_are_refused(size: int) -> None:
    message = f"secret: the email signing secret must be at least 32 random bytes, got {size}"
    with pytest.raises(ValidationError, match=message):
        rating_links(BASE, bytes(size), **FIELDS)
    with pytest.raises(ValidationError, match=message):
        verify(VECTOR_TOKEN, bytes(size))


def test_secrets_of_32_bytes_and_more_work() -> None:
    for secret in (bytes(32), bytes(range(32)), bytes(64)):
        token = rating_links(BASE, secret, **FIELDS)[0].token
        assert verify(token, secret).score == 0


def test_a_text_secret_is_refused() -> None:
    with pytest.raises(TypeError, match="must be bytes, not str"):
        rating_links(BASE, "x" * 64, **FIELDS)  # type: ignore[arg-type]


BAD_FIELDS = {
    "metric-unknown": (
        {"metric": "stars"},
        "metric",
        "unknown metric 'stars'; expected one of nps, csat, ces, likert, thumbs",
    ),
    "project-empty": (
        {"project": ""},
        "project",
        "project must be 1-64 characters of A-Z a-z 0-9 . _ -, got ''",
    ),
    "campaign-script": (
        {"campaign": "<script>"},
        "campaign",
        "campaign must be 1-64 characters of A-Z a-z 0-9 . _ -, got '<script>'",
    ),
    "campaign-newline": ({"campaign": "a\nb"}, "campaign", "campaign must be 1-64 characters"),
    "form-too-long": ({"form": "f" * 65}, "form", "form must be 1-64 characters"),
    "recipient-empty": ({"recipient": ""}, "recipient", "must be 1-128 bytes of UTF-8, got 0"),
    "recipient-too-long": ({"recipient": "ر" * 65}, "recipient", "1-128 bytes of UTF-8, got 130"),
    "recipient-newline": ({"recipient": "a\nb"}, "recipient", "must not contain control"),
    "recipient-surrogate": ({"recipient": "a\ud800"}, "recipient", "lone surrogate"),
    "locale-unknown": ({"locale": "de"}, "locale", "no rating strings for locale 'de'; available"),
    "locale-garbage": ({"locale": "a r"}, "locale", "locale must be a BCP 47 tag"),
    "base-url-ftp": ({"base_url": "ftp://x.example"}, "base_url", "base_url must be an http"),
    "base-url-relative": ({"base_url": "/r"}, "base_url", "base_url must be an http"),
    "base-url-space": ({"base_url": "https://x.example/a b"}, "base_url", "contain spaces"),
    "base-url-query": ({"base_url": "https://x.example/?a=1"}, "base_url", "put {token} where"),
}


@pytest.mark.parametrize(
    ("changes", "field", "message"), list(BAD_FIELDS.values()), ids=list(BAD_FIELDS)
)
def test_bad_fields_are_refused_with_clear_messages(
    changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)) as caught:
        links(**changes)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_a_field_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="recipient must be a str, not int"):
        links(recipient=42)
    with pytest.raises(TypeError, match="token must be a str, not bytes"):
        verify(VECTOR_TOKEN.encode(), SECRET)  # type: ignore[arg-type]


def test_errors_share_the_sdks_root() -> None:
    assert issubclass(ForgedToken, EmailTokenError)
    assert issubclass(ExpiredToken, EmailTokenError)
    assert issubclass(EmailTokenError, VoxloopError)
    assert issubclass(EmailTokenError, ValueError)
    assert issubclass(ValidationError, VoxloopError)


def test_all_is_complete_and_sorted() -> None:
    tree = ast.parse(Path(email.__file__).read_text(encoding="utf-8"))
    defined = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
    assert {name for name in defined if not name.startswith("_")} == set(email.__all__)
    assert email.__all__ == sorted(email.__all__, key=lambda name: (not name.isupper(), name))


def test_imports_nothing_but_the_standard_library() -> None:
    # orjson is the SDK's one optional speed-up, used when present.
    code = (
        "import sys, voxloop\n"
        "before = set(sys.modules)\n"
        "import voxloop.email\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "assert new <= sys.stdlib_module_names | {'voxloop', 'orjson'}, new\n"
        "assert not [m for m in sys.modules if m.startswith(('voxloop_', 'msgspec'))]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- properties -----------------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)
recipients = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=32
).filter(lambda r: len(r.encode("utf-8")) <= 128)


@st.composite
def emails(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    metric = draw(st.sampled_from(list(METRIC_RANGES)))
    fields = {
        "project": draw(names),
        "campaign": draw(names),
        "form": draw(names),
        "metric": metric,
        "recipient": draw(recipients),
        "expires_in": timedelta(seconds=draw(st.integers(1, 10 * 365 * 86400))),
    }
    return fields, draw(st.integers(*METRIC_RANGES[metric]))


@settings(max_examples=300)
@given(emails())
def test_any_payload_round_trips(email_and_score: tuple[dict[str, Any], int]) -> None:
    fields, score = email_and_score
    low = METRIC_RANGES[fields["metric"]][0]
    link = rating_links(BASE, SECRET, now=NOW, **fields)[score - low]
    vote = verify(link.token, SECRET, now=NOW)
    assert vote.score == score
    assert (vote.project, vote.campaign, vote.form) == (
        fields["project"],
        fields["campaign"],
        fields["form"],
    )
    assert (vote.metric, vote.recipient) == (fields["metric"], fields["recipient"])
    assert vote.expires_at == NOW + fields["expires_in"]
    assert URL_SAFE.fullmatch(link.token) and len(link.token) <= MAX_TOKEN_CHARS


@settings(max_examples=300)
@given(emails(), st.data())
def test_any_single_character_change_is_forged(
    email_and_score: tuple[dict[str, Any], int], data: st.DataObject
) -> None:
    fields, score = email_and_score
    token = rating_links(BASE, SECRET, now=NOW, **fields)[0].token
    index = data.draw(st.integers(0, len(token) - 1), label="index")
    replacement = data.draw(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(lambda c: c != token[index]),
        label="replacement",
    )
    with pytest.raises(ForgedToken):
        verify(token[:index] + replacement + token[index + 1 :], SECRET, now=NOW)


# --- HTML -----------------------------------------------------------------------------------


class Row(HTMLParser):
    """What an email client would see: every tag with its attributes, and each link's text."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._open: list[str] | None = None
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "a":
            self._open = []
            self.anchors.append((dict(attrs), ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            attrs, _ = self.anchors[-1]
            self.anchors[-1] = (attrs, "".join(self._open))
            self._open = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._open is not None:
            self._open.append(data)

    def attribute(self, name: str) -> set[str | None]:
        return {attrs.get(name) for tag, attrs in self.tags if tag == "table"}


LOCALES = ["en", "ar", "fa", "id"]
DIGITS = {"en": "0123456789", "id": "0123456789", "ar": "٠١٢٣٤٥٦٧٨٩", "fa": "۰۱۲۳۴۵۶۷۸۹"}


@pytest.mark.parametrize("metric", list(METRIC_RANGES))
@pytest.mark.parametrize("locale", LOCALES)
def test_html_is_email_safe(locale: str, metric: str) -> None:
    made = links(metric=metric, locale=locale)
    markup = rating_html(made)
    row = Row(markup)
    tags = {tag for tag, _ in row.tags}
    assert tags <= {"table", "tr", "td", "a", "span", "br"}, tags
    for tag, attrs in row.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert "class" not in attrs and "id" not in attrs
    assert [attrs["href"] for attrs, _ in row.anchors] == [link.url for link in made]
    assert all(attrs["style"] and "display:block" in attrs["style"] for attrs, _ in row.anchors)
    assert {attrs.get("role") for tag, attrs in row.tags if tag == "table"} == {"presentation"}
    assert "javascript:" not in markup.lower() and "<style" not in markup.lower()
    assert all(len(line.encode("utf-8")) < 998 for line in markup.splitlines())


@pytest.mark.parametrize("locale", LOCALES + ["ar-EG", "fa-IR", "id-ID", "en-GB"])
def test_html_direction(locale: str) -> None:
    row = Row(rating_html(links(locale=locale)))
    rtl = locale[:2] in ("ar", "fa")
    assert row.attribute("dir") == ({"rtl"} if rtl else {"ltr"})
    first_td = next(attrs for tag, attrs in row.tags if tag == "td")
    assert first_td["align"] == ("right" if rtl else "left")
    assert f"text-align:{'right' if rtl else 'left'}" in (first_td["style"] or "")
    assert row.attribute("lang") >= {locale}


@pytest.mark.parametrize("locale", LOCALES)
def test_html_digits(locale: str) -> None:
    row = Row(rating_html(links(locale=locale)))
    digits = DIGITS[locale]
    expected = [*digits, digits[1] + digits[0]]  # 0…9, 10
    assert [text for _, text in row.anchors] == expected
    assert [link.label for link in links(locale=locale)] == expected


def test_html_locale_can_be_chosen_after_the_links() -> None:
    row = Row(rating_html(links(), locale="fa"))
    assert row.anchors[10][1] == "۱۰"
    assert row.attribute("dir") == {"rtl"}


@pytest.mark.parametrize(
    ("locale", "question", "low", "high"),
    [
        ("en", "How likely are you to recommend us", "Not at all likely", "Extremely likely"),
        ("ar", "ما مدى احتمال أن توصي بنا", "غير محتمل إطلاقًا", "محتمل للغاية"),
        ("fa", "چقدر احتمال دارد ما را به یک دوست", "اصلاً محتمل نیست", "کاملاً محتمل است"),
        ("id", "Seberapa besar kemungkinan Anda", "Sangat tidak mungkin", "Sangat mungkin"),
    ],
    ids=LOCALES,
)
def test_html_words(locale: str, question: str, low: str, high: str) -> None:
    row = Row(rating_html(links(locale=locale)))
    text = [t for t in row.text if t.strip()]
    assert text[0].startswith(question)
    assert text[-2:] == [low, high]


def test_persian_uses_persian_letters() -> None:
    text = rating_html(links(locale="fa")) + rating_html(links(locale="fa", metric="ces"))
    assert "ي" not in text and "ك" not in text  # Arabic yeh and kaf
    assert "\u200c" in text  # the zero-width non-joiner of "مشکل‌تان"


@pytest.mark.parametrize("locale", LOCALES)
def test_html_thumbs(locale: str) -> None:
    row = Row(rating_html(links(metric="thumbs", locale=locale)))
    (down, down_text), (up, up_text) = row.anchors
    assert down_text.startswith("👎") and up_text.startswith("👍")
    words = STRINGS[locale].thumbs
    assert (down["title"], up["title"]) == words
    assert down_text.endswith(words[0]) and up_text.endswith(words[1])  # visible, not only emoji


def test_html_escapes_the_question() -> None:
    markup = rating_html(links(), question='<script>alert("x")</script> & <b onclick=x>')
    row = Row(markup)
    assert "script" not in {tag for tag, _ in row.tags}
    assert "b" not in {tag for tag, _ in row.tags}
    assert [t for t in row.text if t.strip()][0] == '<script>alert("x")</script> & <b onclick=x>'
    assert "&lt;script&gt;" in markup and "&amp;" in markup


def test_html_escapes_the_urls() -> None:
    made = links(base_url='https://shop.example/"><script>x</script>?a=1&t={token}')
    markup = rating_html(made)
    row = Row(markup)
    assert {tag for tag, _ in row.tags} <= {"table", "tr", "td", "a"}
    assert [attrs["href"] for attrs, _ in row.anchors] == [link.url for link in made]
    assert "&amp;t=" in markup and '"><script>' not in markup


@pytest.mark.parametrize(
    ("made", "message"),
    [
        ([], "links is empty"),
        (links()[:5], "links must be one per nps score 0..10, got [0, 1, 2, 3, 4]"),
        (links() + links()[:1], "links must be one per nps score 0..10"),
        (links() + links(metric="csat"), "links must all be of one metric"),
    ],
    ids=["empty", "missing-scores", "duplicate-score", "mixed-metrics"],
)
def test_html_needs_one_link_per_score(made: list[RatingLink], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        rating_html(made)


def test_html_orders_links_by_score() -> None:
    made = links(metric="csat")
    row = Row(rating_html(list(reversed(made))))
    assert [attrs["href"] for attrs, _ in row.anchors] == [link.url for link in made]


def test_text_part() -> None:
    made = links(locale="ar")
    lines = rating_text(made).splitlines()
    assert lines[0] == "ما مدى احتمال أن توصي بنا لصديق أو زميل؟"
    assert lines[2] == f"٠ (غير محتمل إطلاقًا): {made[0].url}"
    assert lines[3] == f"١: {made[1].url}"
    assert lines[-1] == f"١٠ (محتمل للغاية): {made[-1].url}"
    assert rating_text(links(metric="thumbs"), question="Q?").splitlines()[2:] == [
        f"Dislike: {links(metric='thumbs')[0].url}",
        f"Like: {links(metric='thumbs')[1].url}",
    ]
