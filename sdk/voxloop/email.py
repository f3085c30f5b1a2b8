"""One-click rating links for emails: sign them, render them, verify them.

A link is ``{base_url}/r/{token}``; the token carries project, campaign, form, metric, score,
recipient and expiry, signed with HMAC-SHA256 and the email signing secret (its exact format is
in the README, "Email rating links", so that another language can make and check tokens)::

    links = rating_links("https://feedback.example.com", secret, project="acme",
                         campaign="2026-11-nps", form="checkout", metric="nps",
                         recipient="c-8f3a2c71", locale="ar")
    html = rating_html(links)   # email-safe HTML of the rating row
    text = rating_text(links)   # the same for the plain-text part

An app that takes the clicks on its own domain checks the token with :func:`verify` and records
the vote with ``vote_key=vote.vote_key``, so a later click on another score replaces it.

Errors, under the SDK's root; both kinds are also a ``ValueError``::

    VoxloopError
    ├── ValidationError(field, rule)  an argument breaks its rule (a short secret, a bad form...)
    └── EmailTokenError               a token that can't be used; record nothing
        ├── ForgedToken               not made with this secret, altered, or malformed (403)
        └── ExpiredToken(vote)        genuine, but past its expiry (410)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from ._errors import ValidationError, VoxloopError
from ._event import METRIC_RANGES
from .i18n import STRINGS, Strings, language_of

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "MAC_BYTES",
    "MAX_EXPIRES",
    "MAX_RECIPIENT_BYTES",
    "MAX_TOKEN_CHARS",
    "MIN_SECRET_BYTES",
    "TOKEN_VERSION",
    "EmailTokenError",
    "ExpiredToken",
    "ForgedToken",
    "RatingLink",
    "Vote",
    "rating_html",
    "rating_links",
    "rating_text",
    "token_project",
    "verify",
]

#: The first part of every token this module makes and the only one it reads.
TOKEN_VERSION: Final = "v1"
#: The email signing secret must be at least this long (32 random bytes: 256 bits).
MIN_SECRET_BYTES: Final = 32
#: How long links stay valid when neither ``expires_in`` nor ``expires_at`` is given.
DEFAULT_EXPIRES_IN: Final = timedelta(days=30)
#: The longest a recipient may be, in bytes of UTF-8.
MAX_RECIPIENT_BYTES: Final = 128
#: The latest expiry a token can carry: 9999-12-31T23:59:59Z, the end of ``datetime``.
MAX_EXPIRES: Final = 253_402_300_799
#: Bytes of HMAC-SHA256 kept in a token: half of it, 128 bits (RFC 2104, section 5).
MAC_BYTES: Final = 16

_SEPARATOR: Final = "\n"
_NAME_RULE: Final = "1-64 characters of A-Z a-z 0-9 . _ -"
_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NUMBER: Final = re.compile(r"0|[1-9][0-9]{0,11}")
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LOCALE: Final = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")
_VOTE_KEY_PREFIX: Final = "email:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


#: No valid token is longer: "v1.", the payload with every field at its longest (345 bytes,
#: 460 characters), ".", the MAC (22 characters).
MAX_TOKEN_CHARS: Final = 486


class EmailTokenError(VoxloopError, ValueError):
    """A rating link's token that must not be used; the message says why."""


class ForgedToken(EmailTokenError):
    """The token wasn't made with this secret, was altered, or isn't a token at all."""


class ExpiredToken(EmailTokenError):
    """The token is genuine but its expiry has passed.

    Attributes:
        vote: what the token says (its signature was checked, so it can be shown to the person).
    """

    def __init__(self, message: str, vote: Vote) -> None:
        super().__init__(message)
        self.vote = vote


@dataclass(frozen=True, slots=True)
class RatingLink:
    """The link of one score, as :func:`rating_links` makes it.

    Attributes:
        metric: the metric, e.g. ``"nps"``.
        score: the score this link votes for.
        label: what the reader sees for it in ``locale``: the score in the language's digits
            (``"9"``, ``"٩"``, ``"۹"``) or, for ``thumbs``, the words for 👎 and 👍.
        url: the whole link, ``{base_url}/r/{token}``.
        token: the signed token inside ``url``.
        locale: the language of ``label``, as given to :func:`rating_links`.
    """

    metric: str
    score: int
    label: str
    url: str
    token: str
    locale: str = "en"


@dataclass(frozen=True, slots=True)
class Vote:
    """What a genuine, unexpired token says, as :func:`verify` returns it.

    Attributes:
        project: the project the link was made for.
        campaign: the mailing, e.g. ``"2026-11-nps"``.
        form: the touchpoint, e.g. ``"checkout"``.
        metric: one of :data:`METRIC_RANGES`.
        score: the score clicked, within the metric's range.
        recipient: the app's id of the person the email went to.
        expires_at: when the link stops working (UTC).
    """

    project: str
    campaign: str
    form: str
    metric: str
    score: int
    recipient: str
    expires_at: datetime

    @property
    def vote_key(self) -> str:
        """The ``vote_key`` to record this vote with: one vote per campaign, form and recipient.

        ``"email:"`` followed by the unpadded base64url of SHA-256 over the UTF-8 of
        ``campaign + "\\n" + form + "\\n" + recipient`` (49 characters). Every click on a link
        of the same email gives the same key, so the last click counts. It is a stable name,
        not a secret, and doesn't depend on the signing secret, so rotating the secret keeps
        votes together.
        """
        joined = _SEPARATOR.join((self.campaign, self.form, self.recipient))
        return _VOTE_KEY_PREFIX + _b64(hashlib.sha256(joined.encode("utf-8")).digest())


def rating_links(
    base_url: str,
    secret: bytes,
    *,
    project: str,
    campaign: str,
    form: str,
    metric: str,
    recipient: str,
    expires_in: timedelta | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
    locale: str = "en",
) -> list[RatingLink]:
    """Make the signed link of every score of ``metric`` for one recipient of one email.

    Args:
        base_url: where the links point: the gateway's public URL (``https://host``, links are
            ``https://host/r/{token}``), or a template containing ``{token}`` for an app's own
            link handler (``https://shop.example/rate?t={token}``).
        secret: the email signing secret, at least 32 random bytes.
        project: the project id.
        campaign: the mailing, 1-64 characters of ``A-Z a-z 0-9 . _ -``.
        form: the touchpoint, 1-64 characters of ``A-Z a-z 0-9 . _ -``.
        metric: ``nps``, ``csat``, ``ces``, ``likert`` or ``thumbs``.
        recipient: the app's id of the person, 1-128 bytes of UTF-8, no control characters.
            It can be read from the link, so an opaque id beats an email address.
        expires_in: how long the links work, from ``now``; 30 days if neither this nor
            ``expires_at`` is given.
        expires_at: when the links stop working (timezone-aware); instead of ``expires_in``.
        now: the time to count ``expires_in`` from (timezone-aware); default the current time.
        locale: the language of the labels: ``en``, ``ar``, ``fa``, ``id`` or a tag of one of
            them such as ``ar-EG``.

    Returns:
        One link per score, lowest score first.

    Raises:
        ValidationError: a field breaks its rule, the secret is shorter than 32 bytes, the
            expiry isn't in the future, or the locale has no strings; ``field`` says which.
        TypeError: the secret isn't bytes, or a field isn't a string.
    """
    key = _check_secret(secret)
    strings = _strings(locale)
    url_for = _url_maker(base_url, locale)
    for name, value in (("project", project), ("campaign", campaign), ("form", form)):
        _check_name(name, value)
    low, high = _check_metric(metric)
    _check_recipient(recipient)
    expires = _expiry(expires_in, expires_at, now)

    signer = hmac.new(key, digestmod=hashlib.sha256)
    links = []
    for score in range(low, high + 1):
        fields = (project, campaign, form, metric, str(score), recipient, str(expires))
        payload = _b64(_SEPARATOR.join(fields).encode("utf-8"))
        token = f"{TOKEN_VERSION}.{payload}.{_mac(signer, payload)}"
        label = strings.score_label(metric, score)
        links.append(RatingLink(metric, score, label, url_for(token), token, locale))
    return links


def verify(token: str, secret: bytes, *, now: datetime | None = None) -> Vote:
    """Check a rating link's token and return the vote it carries.

    The signature is checked before any field is trusted, and the expiry only once the
    signature holds, so a forged token is never reported as expired.

    Args:
        token: the token, as it appears in the link (the part after ``/r/``).
        secret: the email signing secret the links were made with.
        now: the time to check the expiry against (timezone-aware); default the current time.

    Returns:
        The vote. Record it with ``vote_key=vote.vote_key``.

    Raises:
        ForgedToken: not a token of this secret: altered, cut, made with another secret, of an
            unknown version, or with a field that breaks its rule.
        ExpiredToken: genuine but ``now`` is at or past its expiry; ``error.vote`` says what
            it was for.
        ValidationError: the secret is shorter than 32 bytes, or ``now`` is naive.
        TypeError: the token isn't a string or the secret isn't bytes.
    """
    key = _check_secret(secret)
    moment = _aware("now", now)
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, not {type(token).__name__}")
    if len(token) > MAX_TOKEN_CHARS:
        raise ForgedToken(
            f"token is {len(token)} characters, longer than any valid one ({MAX_TOKEN_CHARS})"
        )
    parts = token.split(".")
    if len(parts) != 3:
        raise ForgedToken(
            f"token must be 3 parts separated by '.' (version.payload.mac), got {len(parts)}"
        )
    version, payload, mac = parts
    if version != TOKEN_VERSION:
        raise ForgedToken(f"unknown token version {version[:16]!r}; expected {TOKEN_VERSION!r}")
    if not (_BASE64URL.fullmatch(payload) and _BASE64URL.fullmatch(mac)):
        raise ForgedToken("token payload and MAC must be base64url (A-Z a-z 0-9 - _, no '=')")
    expected = _mac(hmac.new(key, digestmod=hashlib.sha256), payload)
    if not hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii")):
        raise ForgedToken("token signature doesn't match: altered, or made with another secret")
    try:
        vote = _parse(payload)
    except ValidationError as error:
        raise ForgedToken(f"token is signed but malformed: {error.rule}") from None
    if moment >= vote.expires_at:
        raise ExpiredToken(f"token expired at {vote.expires_at.isoformat()}", vote)
    return vote


def token_project(token: str) -> str | None:
    """The project a token names, read WITHOUT checking its signature; None if unreadable.

    Only for choosing which project's secrets to :func:`verify` the token with: nothing else
    in an unverified token may be trusted.
    """
    parts = token.split(".") if isinstance(token, str) else []
    if len(token) > MAX_TOKEN_CHARS or len(parts) != 3 or parts[0] != TOKEN_VERSION:
        return None
    try:
        text = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    project = text.split(_SEPARATOR, 1)[0]
    return project if _NAME.fullmatch(project) else None


def rating_html(
    links: Sequence[RatingLink], *, locale: str | None = None, question: str | None = None
) -> str:
    """Email-safe HTML of a rating row: the question, a link per score, the scale's ends.

    Layout tables with ``role="presentation"``, inline styles only: no ``<style>``, no script,
    nothing fetched. Each score is a block link at least 44 pixels tall. Arabic and Persian
    get ``dir="rtl"`` (the lowest score on the right) and their own digits. The result is a
    fragment to place in the app's email template, one element a line so that no line comes
    near the 998-byte limit of RFC 5322.

    Args:
        links: every score's link of one metric, as :func:`rating_links` returns them.
        locale: the language of the words and digits; default the links' own.
        question: the question above the row; default the metric's usual question in
            ``locale``. Escaped like everything else: pass plain text, not HTML.

    Returns:
        The HTML fragment, a single ``<table>``.

    Raises:
        ValidationError: ``links`` isn't one link per score of one metric, or the locale has
            no strings.
    """
    metric, ordered, tag = _check_links(links, locale)
    strings = _strings(tag)
    direction, start, end = ("rtl", "right", "left") if strings.rtl else ("ltr", "left", "right")
    text = question if question is not None else strings.questions[metric]

    out = [
        f'<table role="presentation" dir="{direction}" lang="{_e(tag)}" width="100%" border="0"'
        f' cellpadding="0" cellspacing="0" style="max-width:560px;font-family:{_FONT};">',
        "<tr>",
        f'<td align="{start}" style="padding:0 4px 8px;font-size:18px;line-height:26px;'
        f'color:{_INK};text-align:{start};">{_e(text)}</td>',
        "</tr>",
        "<tr>",
        "<td>",
    ]
    thumbs = metric == "thumbs"
    width = "" if thumbs else ' width="100%"'
    out.append(
        f'<table role="presentation" dir="{direction}"{width} border="0" cellpadding="0"'
        ' cellspacing="4">'
    )
    out.append("<tr>")
    for link in ordered:
        label = title = strings.score_label(metric, link.score)
        if not thumbs and link.score in (ordered[0].score, ordered[-1].score):
            title += " – " + strings.anchors[metric][link.score != ordered[0].score]
        cell = ' width="96"' if thumbs else f' width="{100 // len(ordered)}%"'
        out.append(
            f'<td{cell} align="center" bgcolor="{_FACE}" style="background-color:{_FACE};'
            f'border:1px solid {_EDGE};border-radius:6px;">'
        )
        if thumbs:
            face = "👍" if link.score else "👎"
            content = (
                f'<span aria-hidden="true" style="font-size:28px;line-height:32px;">{face}</span>'
                f'<br><span style="font-size:13px;line-height:18px;font-weight:normal;">'
                f"{_e(label)}</span>"
            )
        else:
            content = _e(label)
        out.append(
            f'<a href="{_e(link.url)}" title="{_e(title)}" style="display:block;padding:12px 0;'
            f"font-size:16px;line-height:20px;font-weight:bold;color:{_INK};"
            f'text-decoration:none;text-align:center;">{content}</a>'
        )
        out.append("</td>")
    out += ["</tr>", "</table>", "</td>", "</tr>"]
    if not thumbs:
        low, high = strings.anchors[metric]
        out += [
            "<tr>",
            "<td>",
            f'<table role="presentation" dir="{direction}" width="100%" border="0"'
            ' cellpadding="0" cellspacing="0">',
            "<tr>",
            f'<td align="{start}" style="{_ANCHOR}text-align:{start};">{_e(low)}</td>',
            f'<td align="{end}" style="{_ANCHOR}text-align:{end};">{_e(high)}</td>',
            "</tr>",
            "</table>",
            "</td>",
            "</tr>",
        ]
    out.append("</table>")
    return "\n".join(out)


def rating_text(
    links: Sequence[RatingLink], *, locale: str | None = None, question: str | None = None
) -> str:
    """The rating row for the plain-text part of the email: the question, then a line a score.

    Args:
        links: every score's link of one metric, as :func:`rating_links` returns them.
        locale: the language of the words and digits; default the links' own.
        question: the question on the first line; default the metric's usual one.

    Returns:
        Lines like ``9 (Extremely likely): https://…``, ending with a newline.

    Raises:
        ValidationError: as :func:`rating_html`.
    """
    metric, ordered, tag = _check_links(links, locale)
    strings = _strings(tag)
    lines = [question if question is not None else strings.questions[metric], ""]
    ends = strings.anchors.get(metric)
    for index, link in enumerate(ordered):
        label = strings.score_label(metric, link.score)
        if ends is not None and index in (0, len(ordered) - 1):
            label += f" ({ends[0] if index == 0 else ends[1]})"
        lines.append(f"{label}: {link.url}")
    return "\n".join(lines) + "\n"


# Email clients keep inline styles; system fonts first, then ones with Arabic-script glyphs.
_FONT: Final = "-apple-system,'Segoe UI',Tahoma,Arial,sans-serif"
_INK: Final = "#101828"
_FACE: Final = "#f2f4f7"
_EDGE: Final = "#d0d5dd"
_ANCHOR: Final = "padding:2px 4px 0;font-size:13px;line-height:18px;color:#475467;"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _mac(signer: hmac.HMAC, payload: str) -> str:
    # The MAC covers "v1." and the payload exactly as they appear in the token, so a verifier
    # checks it before decoding anything.
    mac = signer.copy()
    mac.update(f"{TOKEN_VERSION}.{payload}".encode("ascii"))
    return _b64(mac.digest()[:MAC_BYTES])


def _parse(payload: str) -> Vote:
    if len(payload) % 4 == 1:
        raise ValidationError("token", "payload isn't valid base64url")
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if _b64(data) != payload:
        raise ValidationError("token", "payload isn't canonical base64url")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("token", "payload isn't UTF-8") from None
    fields = text.split(_SEPARATOR)
    if len(fields) != 7:
        raise ValidationError("token", f"payload must have 7 fields, got {len(fields)}")
    project, campaign, form, metric, score_text, recipient, expires_text = fields
    for name, value in (("project", project), ("campaign", campaign), ("form", form)):
        _check_name(name, value)
    low, high = _check_metric(metric)
    score = _number("score", score_text)
    if not low <= score <= high:
        raise ValidationError("score", f"{metric} score must be {low}..{high}, got {score}")
    _check_recipient(recipient)
    expires = _number("expiry", expires_text)
    if not 0 < expires <= MAX_EXPIRES:
        raise ValidationError(
            "expiry", f"expiry must be 1..{MAX_EXPIRES} epoch seconds, got {expires}"
        )
    expires_at = datetime.fromtimestamp(expires, UTC)
    return Vote(project, campaign, form, metric, score, recipient, expires_at)


def _number(field: str, text: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise ValidationError(
            field, f"{field} must be a decimal integer without sign or leading zeros"
        )
    return int(text)


def _check_secret(secret: bytes) -> bytes:
    if not isinstance(secret, bytes):
        raise TypeError(
            f"the email signing secret must be bytes, not {type(secret).__name__}"
            " (decode it from hex or base64 first)"
        )
    if len(secret) < MIN_SECRET_BYTES:
        raise ValidationError(
            "secret",
            f"the email signing secret must be at least {MIN_SECRET_BYTES} random bytes,"
            f" got {len(secret)}",
        )
    return secret


def _check_name(field: str, value: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, not {type(value).__name__}")
    if not _NAME.fullmatch(value):
        raise ValidationError(field, f"{field} must be {_NAME_RULE}, got {value[:80]!r}")


def _check_metric(metric: str) -> tuple[int, int]:
    try:
        return METRIC_RANGES[metric]
    except (KeyError, TypeError):
        known = ", ".join(METRIC_RANGES)
        raise ValidationError(
            "metric", f"unknown metric {metric!r}; expected one of {known}"
        ) from None


def _check_recipient(recipient: str) -> None:
    if not isinstance(recipient, str):
        raise TypeError(f"recipient must be a str, not {type(recipient).__name__}")
    try:
        size = len(recipient.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationError(
            "recipient", "recipient must be valid Unicode (it has a lone surrogate)"
        ) from None
    if not 0 < size <= MAX_RECIPIENT_BYTES:
        raise ValidationError(
            "recipient",
            f"recipient must be 1-{MAX_RECIPIENT_BYTES} bytes of UTF-8, got {size} bytes",
        )
    if _CONTROL.search(recipient):
        raise ValidationError(
            "recipient", "recipient must not contain control characters (newline, tab, ...)"
        )


def _strings(locale: str) -> Strings:
    if not isinstance(locale, str) or not _LOCALE.fullmatch(locale):
        raise ValidationError(
            "locale", f"locale must be a BCP 47 tag such as 'en' or 'ar-EG', got {locale!r}"
        )
    language = language_of(locale)
    if language is None:
        known = ", ".join(sorted(STRINGS))
        raise ValidationError(
            "locale", f"no rating strings for locale {locale!r}; available: {known}"
        )
    return STRINGS[language]


def _aware(name: str, moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(name, f"{name} must be timezone-aware, e.g. datetime.now(UTC)")
    return moment


def _expiry(expires_in: timedelta | None, expires_at: datetime | None, now: datetime | None) -> int:
    if expires_in is not None and expires_at is not None:
        raise ValidationError("expiry", "give expires_in or expires_at, not both")
    start = _aware("now", now)
    if expires_at is None:
        end = start + (DEFAULT_EXPIRES_IN if expires_in is None else expires_in)
    else:
        end = _aware("expires_at", expires_at)
    expires = int(end.timestamp())  # whole seconds, rounded down: never later than asked
    if expires <= start.timestamp():
        raise ValidationError(
            "expiry", f"the links would expire at {end.isoformat()}, not after now"
        )
    if expires > MAX_EXPIRES:
        raise ValidationError("expiry", "the expiry must be before the year 10000")
    return expires


def _url_maker(base_url: str, locale: str = "en") -> Callable[[str], str]:
    # The gateway's page shows itself in the email's language when the link says which
    # (``?lang=``, outside the signature: it changes only the words on the page).
    suffix = "" if locale == "en" else "?lang=" + locale
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    template = "{token}" in base_url
    parts = urlsplit(base_url.replace("{token}", "token"))
    if parts.scheme not in ("http", "https") or not parts.netloc or _CONTROL.search(base_url):
        raise ValidationError(
            "base_url", f"base_url must be an http(s) URL such as https://host, got {base_url!r}"
        )
    if " " in base_url:
        raise ValidationError("base_url", f"base_url must not contain spaces, got {base_url!r}")
    if template:
        return lambda token: base_url.replace("{token}", token)
    if parts.query or parts.fragment:
        raise ValidationError(
            "base_url",
            "base_url has a query or fragment: put {token} where the token goes, e.g."
            " https://shop.example/rate?t={token}",
        )
    prefix = base_url.rstrip("/") + "/r/"
    return lambda token: prefix + token + suffix


def _check_links(
    links: Sequence[RatingLink], locale: str | None
) -> tuple[str, list[RatingLink], str]:
    if not links:
        raise ValidationError("links", "links is empty: pass what rating_links returned")
    metric = links[0].metric
    low, high = _check_metric(metric)
    if any(link.metric != metric for link in links):
        raise ValidationError("links", "links must all be of one metric")
    ordered = sorted(links, key=lambda link: link.score)
    scores = [link.score for link in ordered]
    if scores != list(range(low, high + 1)):
        raise ValidationError(
            "links", f"links must be one per {metric} score {low}..{high}, got {scores}"
        )
    return metric, ordered, links[0].locale if locale is None else locale
