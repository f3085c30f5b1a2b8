"""Personal data found in comments and replaced by typed placeholders before they are stored.

A customer types what they type: "call me on 0912 345 6789", "refund to DE89 3704 0044 0532
0130 00". A project's policy (:mod:`.policy`) decides whether its comments are scrubbed; a
:class:`Scrubber`, built once per policy and kept on the project, does it. Each hit becomes a
placeholder naming its type (``[email]``, ``[phone]``, ``[card]``, ``[iban]``, or
``[name]`` of a pattern the operator added), so a comment still reads as what it said.

Detection leans on maintained libraries rather than home-made patterns, so that what counts as a
phone number or an IBAN is what their maintainers keep up to date:

- phone numbers: ``phonenumbers`` (Google's libphonenumber), numbers that are *valid* for a
  region (not merely possible), in international form (``+98 912 345 6789``) from anywhere and
  in national form (``0912 345 6789``) for each of :data:`DEFAULT_REGIONS`. It reads
  Arabic-Indic and Persian digits as digits (``۰۹۱۲ ۳۴۵ ۶۷۸۹``). A hit needs 8 digits or more
  and must not be grouped in thousands (``1.500.000``): a valid short or service number of some
  region is more often a price or a count in a comment;
- IBANs: ``stdnum.iban``, by checksum (mod 97), printed in groups or not, any case;
- card numbers: 13-19 digits, spaces or dashes between them allowed, passing Luhn
  (``stdnum.luhn``);
- email addresses: :data:`EMAIL`, the WHATWG HTML "valid email address" (what browsers check
  in ``<input type=email>``) with a dotted domain, so ``@team`` mentions stay.

Most comments hold none of this, and ingest must not pay for what isn't there: a comment goes
to the detectors only when it holds an ``@`` or a decimal digit of any script
(:func:`voxloop_core.suspects`, one scan of the text in C) and then :data:`_SUSPECT` finds in
it an ``@``, a run of 7 digits or more (spaces, dashes, dots, slashes and brackets between them
allowed) or a token that begins like an IBAN; phone numbers are then looked for only in runs of
8 digits or more (:meth:`Scrubber._phones`).

Prices, order numbers, dates and times survive: none of them is a valid phone number of 8
digits or more of a region, passes Luhn over 13 digits or more, or has an IBAN's checksum; an
amount grouped in thousands and a number right after ``#`` or ``No.`` are never read as phone
numbers, though some region may have one that is written alike.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Final

import msgspec
from phonenumbers import Leniency, PhoneMetadata, PhoneNumberMatcher
from stdnum import iban, luhn

import voxloop_core
from voxloop_core import Record

#: The built-in types of personal data, as placeholders and ``/metrics`` labels name them.
TYPES: Final = ("email", "phone", "card", "iban")
#: Where national numbers (no ``+``) are read as phone numbers: the markets of the languages the
#: widgets speak (English, Arabic, Persian, Indonesian) and the largest European ones. Numbers
#: written with ``+`` are found whatever the region.
DEFAULT_REGIONS: Final = ("US", "GB", "IN", "DE", "FR", "SA", "AE", "EG", "IR", "ID")
#: The fewest digits of a phone number found: shorter valid numbers (service numbers, local
#: numbers without their area code) are more often amounts or counts in a comment.
MIN_PHONE_DIGITS: Final = 8

#: An email address: the WHATWG HTML definition of a valid email address (local part of
#: ``a-z A-Z 0-9 .!#$%&'*+/=?^_`{|}~-``, domain of dot-separated labels of 1-63 letters, digits
#: and inner hyphens), with at least two labels, the last of letters.
EMAIL: Final = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![A-Za-z0-9-])"
)
#: A card number's candidates: 13-19 digits (any script's), a space or a dash between any two.
_CARD: Final = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
#: An IBAN's candidates: a country code, two check digits, then 11-30 letters and digits, a
#: space between groups allowed; shortened group by group until one passes the checksum.
_IBAN: Final = re.compile(r"\b[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}\b")
#: What makes a comment worth the detectors (see the module's docstring).
_SUSPECT: Final = re.compile(r"@|\d(?:[ ().\-/]{0,2}\d){6}|\b[A-Za-z]{2}[0-9]{2}")
#: A run of digits that may be a phone number: 8 digits or more (any script's), with what people
#: write between them, and a leading ``+`` or bracket.
_PHONE_RUN: Final = re.compile(r"[+(]?\d(?:[ ().\-/]{0,2}\d){7,}")
#: A date written in digits (``2024-03-15``, ``15/03/2024``, ``۱۴۰۳/۰۱/۲۵``), which the matcher
#: would refuse after trying every region.
_DATE: Final = re.compile(r"\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2\d{4}")
#: How much of the text on either side of a run the matcher reads with it: a ``:30`` after
#: ``2024-03-15 10`` tells it that it is a time.
_CONTEXT: Final = 4
#: A number grouped in thousands (``1.500.000``, ``2,500,000``, ``۱۲٬۵۰۰٬۰۰۰``): an amount.
_THOUSANDS: Final = re.compile(r"\d{1,3}(?:[.,'٬،]\d{3})+")

#: What comes right before a number that is a reference rather than a phone number.
_REFERENCE: Final = re.compile(r"(?:#|№|\b[Nn]o\.?) ?$")

Span = tuple[int, int, str]
"""Where a hit starts and ends in the text, and its type (or a custom pattern's name)."""


class Scrubber:
    """Finds personal data in a comment and replaces it; one per policy, shared by requests.

    Args:
        patterns: the operator's own (name, compiled pattern) pairs, applied after the built-in
            detectors on what they left; each hit becomes ``[name]``.
        regions: where national phone numbers are read (:data:`DEFAULT_REGIONS`).
    """

    def __init__(
        self,
        patterns: Sequence[tuple[str, re.Pattern[str]]] = (),
        regions: Sequence[str] = DEFAULT_REGIONS,
    ) -> None:
        self.patterns: tuple[tuple[str, re.Pattern[str]], ...] = tuple(patterns)
        self.regions: tuple[str, ...] = tuple(regions)
        #: The regions whose national numbers are written with a leading 0 (not the US's).
        self._trunk_zero = tuple(r for r in self.regions if _trunk_prefix(r).startswith("0"))

    def scrub(self, text: str) -> tuple[str, Counter[str]]:
        """``text`` with each hit replaced by its placeholder, and the hits counted per type.

        The counts name the types (``phone``) or the custom patterns' names, never what was found.
        """
        counts: Counter[str] = Counter()
        if _suspect(text):
            text = self._built_in(text, counts)
        for name, pattern in self.patterns:
            text, found = pattern.subn(f"[{name}]", text)
            if found:
                counts[name] += found
        return text, counts

    def _built_in(self, text: str, counts: Counter[str]) -> str:
        """``text`` with the built-in detectors' hits replaced; ``counts`` counted.

        Emails, IBANs and cards first; phone numbers then in what they left, each earlier hit
        cut out and its placeholder in its place: an IBAN or a card holds runs of digits that
        some region may also read as a phone number.
        """
        spans: list[Span] = []
        if "@" in text:
            spans += [(m.start(), m.end(), "email") for m in EMAIL.finditer(text)]
        spans += _ibans(text)
        spans += [(m.start(), m.end(), "card") for m in _CARD.finditer(text) if _luhn(m.group())]
        if spans:
            text = _substitute(text, _disjoint(spans), counts)
        phones = list(self._phones(text))
        if phones:
            text = _substitute(text, _disjoint(phones), counts)
        return text

    def _phones(self, text: str) -> Iterable[Span]:
        """Valid phone numbers of :attr:`regions` (any region when written with ``+``).

        libphonenumber's matcher reads a text once per region, and tries hard (inner groups,
        several parses) on what is no number of that region. So it reads only the runs of
        digits that could be one (:data:`_PHONE_RUN`, with a little context for its own tests of
        dates and times), a run in the regions that may write it (a leading ``+``: any one; a
        leading 0: those whose trunk prefix is 0), until one of them finds a number there.

        A run in which none finds one may be a number beside other digits (``0912 345 6789
        10am``, ``15/03/2024 0912 345 6789``), which the matcher doesn't take apart: the run is
        read again without its first groups, then without its last ones; unless it is glued to
        a letter, as the digits of an IBAN or a tracking code are.
        """
        for run in _PHONE_RUN.finditer(text):
            if _DATE.fullmatch(run.group()):
                continue
            start = max(0, run.start() - _CONTEXT)
            found = list(self._numbers(text, start, run.end() + _CONTEXT, run.group()))
            glued = run.start() > 0 and text[run.start() - 1].isalpha()  # a code: DE89 3704…
            for begin, end in [] if found or glued else _shorter(run):
                found = list(self._numbers(text, begin, end, text[begin:end]))
                if found:
                    break
            yield from found

    def _numbers(self, text: str, start: int, end: int, run: str) -> Iterable[Span]:
        """The phone numbers in ``text[start:end]``, in the first region finding any."""
        window = text[start:end]
        for region in self._regions_of(run):
            found = False
            for match in PhoneNumberMatcher(window, region, leniency=Leniency.VALID):
                at = start + match.start
                if _phone_like(text, at, match.raw_string):
                    found = True
                    yield at, start + match.end, "phone"
            if found:
                return

    def _regions_of(self, run: str) -> tuple[str, ...]:
        """The regions in which ``run`` may be a phone number as it is written."""
        run = run.lstrip()
        if run.startswith("+"):
            return self.regions[:1]
        first = next(c for c in run if c.isdecimal())
        return self._trunk_zero if int(first) == 0 else self.regions

    def __repr__(self) -> str:
        names = ", ".join(name for name, _ in self.patterns)
        return f"Scrubber(patterns=[{names}], regions={list(self.regions)})"


def _shorter(run: re.Match[str]) -> Iterable[tuple[int, int]]:
    """Where ``run`` is without its first space-separated groups, then without its last ones,
    as long as 8 digits are left."""
    text = run.group()
    cuts = [m.end() for m in re.finditer(r" +", text)]
    for cut in cuts:
        if _digits(text[cut:]) >= MIN_PHONE_DIGITS:
            yield run.start() + cut, run.end()
    for cut in reversed([m.start() for m in re.finditer(r" +", text)]):
        if _digits(text[:cut]) >= MIN_PHONE_DIGITS:
            yield run.start(), run.start() + cut


def _digits(text: str) -> int:
    return sum(c.isdecimal() for c in text)


def _trunk_prefix(region: str) -> str:
    """What a national number of ``region`` begins with (``0``; ``1`` in the US; or nothing)."""
    metadata = PhoneMetadata.metadata_for_region(region.upper())
    if metadata is None:
        raise ValueError(f"{region!r} is not a region libphonenumber knows")
    return metadata.national_prefix or ""


def _suspect(text: str) -> bool:
    """Whether ``text`` may hold personal data of a built-in type."""
    return _SUSPECT.search(text) is not None


def _phone_like(text: str, start: int, raw: str) -> bool:
    """Whether a valid number as written reads as a phone number rather than an amount or a
    reference (``#2024031512``, ``No. 2024031512``)."""
    if _digits(raw) < MIN_PHONE_DIGITS:
        return False
    if _THOUSANDS.fullmatch(raw.strip("+ ")) is not None:
        return False
    return _REFERENCE.search(text, 0, start) is None


def _disjoint(spans: list[Span]) -> list[Span]:
    """``spans`` by position, the earlier (then the longer) kept where two overlap."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s[0], -s[1])):
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


def _substitute(text: str, spans: list[Span], counts: Counter[str]) -> str:
    parts: list[str] = []
    at = 0
    for start, end, kind in spans:
        parts += [text[at:start], f"[{kind}]"]
        counts[kind] += 1
        at = end
    parts.append(text[at:])
    return "".join(parts)


def _ascii_digits(text: str) -> str:
    """The digits of ``text``, whatever their script, as ASCII digits."""
    return "".join(str(int(c)) for c in text if c.isdecimal())


def _luhn(candidate: str) -> bool:
    return luhn.is_valid(_ascii_digits(candidate))


def _ibans(text: str) -> list[Span]:
    """IBANs in ``text``: each candidate, then shorter by a group at a time, by checksum."""
    spans: list[Span] = []
    for found in _IBAN.finditer(text):
        candidate = found.group()
        while len(candidate.replace(" ", "")) >= 15:
            if iban.is_valid(candidate):
                spans.append((found.start(), found.start() + len(candidate), "iban"))
                break
            cut = candidate.rfind(" ")
            if cut < 0:
                break
            candidate = candidate[:cut]
    return spans


def scrub_records(scrubber: Scrubber, records: list[Record]) -> tuple[list[Record], Counter[str]]:
    """``records`` with their comments scrubbed (the others as they were), and the hits per type.

    Run after validation (a comment is then within its length) and before the dedup window and
    the store, so no copy of the personal data is kept anywhere. Every comment of every request
    passes here: the core's :func:`voxloop_core.suspects` finds, in one scan in C, the few that
    hold an ``@`` or a digit, and only those reach the detectors (all of them do when the
    operator added patterns of their own, which may match anything).
    """
    counts: Counter[str] = Counter()
    if scrubber.patterns:
        places = [i for i, record in enumerate(records) if record.comment is not None]
    else:
        places = voxloop_core.suspects(records)
    if not places:
        return records, counts
    scrubbed = list(records)
    for place in places:
        record = records[place]
        comment, found = scrubber.scrub(record.comment or "")
        if found:
            counts += found
            scrubbed[place] = msgspec.structs.replace(record, comment=comment)
    return scrubbed, counts


#: The scrubber of a policy without patterns of its own: most projects share it.
DEFAULT_SCRUBBER: Final = Scrubber()

__all__ = ["DEFAULT_REGIONS", "DEFAULT_SCRUBBER", "EMAIL", "TYPES", "Scrubber", "scrub_records"]
