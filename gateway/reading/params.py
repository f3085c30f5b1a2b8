"""A reader's query string, checked: the filter, the channels to read, the page, within scope.

Every read (``/v1/responses``, ``/v1/respondents``, the exports, ``voxloop-gateway export``)
parses its parameters here, so a filter means the same wherever it is given and the same rules
refuse it: an unknown parameter, a value that breaks its rule (400), or a channel or form outside
the asker's scope (403, :func:`~..control.access.narrow`). Each message names the parameter in
the words of whoever asked (``score_min`` for the API, ``--score-min`` for the CLI: a
:data:`Spell`), then the rule.

The asker's scope cuts the query before any store is read (:func:`scope`): the channels are
those the asker may see of the ones asked (all visible ones when none are), and each keeps its
own forms: of the ones asked (all when none are), those the asker may see in that channel. Each
channel's store is read for its own forms, so a store never returns a row the asker may not see.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Final, Protocol, cast, get_args

import msgspec

from voxloop_core import FORM_PATTERN, LOCALE_PATTERN, MAX_LOCALE_CHARS, METRIC_RANGES

from ..control.access import Access, Section, narrow
from ..control.registry import Project
from ..errors import ApiError
from ..stores.reads import HeldFilter, Position, ResponseFilter
from . import cursor

#: How a parameter is named in messages: itself for the API, a flag for the CLI.
Spell = Callable[[str], str]
#: The channels a read reads, in order, each with the forms it keeps there (None: every form).
ChannelForms = dict[str, tuple[str, ...] | None]

#: The filters every read takes (``project`` picks the project of a person's session).
FILTER_PARAMS: Final = (
    "project",
    "channel",
    "form",
    "metric",
    "score_min",
    "score_max",
    "has_comment",
    "q",
    "tag",
    "locale",
    "from",
    "to",
    "held",
)
#: A meta filter is ``meta.KEY=VALUE``.
META_PREFIX: Final = "meta."
#: The parameters of a paged read.
PAGE_PARAMS: Final = ("limit", "cursor")
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500
MAX_SEARCH_CHARS: Final = 200
#: The core's rules for what an event carries: a tag, a meta key and a meta string value.
MAX_TAG_CHARS: Final = 64
MAX_TAGS: Final = 16
MAX_META_KEY_CHARS: Final = 64
MAX_META_VALUE_CHARS: Final = 512
MAX_META: Final = 32
HELD_VALUES: Final[tuple[HeldFilter, ...]] = get_args(HeldFilter)

_FORM: Final = re.compile(FORM_PATTERN)
_LOCALE: Final = re.compile(LOCALE_PATTERN)
_INTEGER: Final = re.compile(r"-?[0-9]{1,9}")
_BOOLEANS: Final = {"true": True, "false": False}


class Params(Protocol):
    """A query string's values by name, as Starlette's ``QueryParams`` holds them."""

    def keys(self) -> Iterable[str]: ...

    def getlist(self, key: str) -> list[str]: ...


def as_given(name: str) -> str:
    """The API's spelling of a parameter: its own name."""
    return name


class ReadQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A checked read: what to keep, which channels to read, where the page starts, how long.

    ``channels`` are visible to the asker and exist in the project, each with the forms to keep
    there (:func:`scope`); a channel's store is read with :meth:`filter_in`, ``filter`` with that
    channel's forms (``filter.forms`` itself is not read). ``after`` None: the first page.
    """

    filter: ResponseFilter
    channels: ChannelForms
    after: Position | None = None
    limit: int = DEFAULT_LIMIT
    oldest_first: bool = False

    def filter_in(self, channel: str) -> ResponseFilter:
        """What ``channel``'s store is asked for: the filter, with the forms of that channel."""
        return msgspec.structs.replace(self.filter, forms=self.channels[channel])

    def context(self) -> bytes:
        """What a cursor of this query is sealed to: the filter, the channels and their forms,
        the order."""
        return msgspec.json.encode((self.filter, self.channels, self.oldest_first))


def instant(text: str | None, name: str) -> int | None:
    """An RFC 3339 time with its zone, as epoch milliseconds; ApiError 400 naming ``name``."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.upper())  # RFC 3339 allows a lower-case t and z
    except ValueError:
        raise ApiError(400, f"{name} must be an RFC 3339 time, got {text!r}") from None
    if moment.tzinfo is None:
        raise ApiError(400, f"{name} must carry a time zone (Z or +hh:mm), got {text!r}")
    return int(moment.timestamp() * 1000)


def check_known(
    params: Params, known: Collection[str], *, meta: bool = False, spell: Spell = as_given
) -> None:
    """ApiError 400 naming the first parameter not in ``known`` (``meta.KEY`` when ``meta``)."""
    for name in sorted(params.keys()):
        if name in known or (meta and name.startswith(META_PREFIX)):
            continue
        listed = ", ".join(sorted(known)) + (", meta.KEY" if meta else "")
        raise ApiError(400, f"unknown query parameter {spell(name)!r}; known: {listed}")


def single(params: Params, name: str, spell: Spell = as_given) -> str | None:
    """The one value of ``name``, or None; ApiError 400 when it is given more than once."""
    values = params.getlist(name)
    if len(values) > 1:
        raise ApiError(400, f"{spell(name)} may be given once, got it {len(values)} times")
    if values and "\x00" in values[0]:
        raise ApiError(400, f"{spell(name)} must not hold a NUL character")
    return values[0] if values else None


def repeated(params: Params, name: str, spell: Spell = as_given) -> tuple[str, ...] | None:
    """Every value of ``name`` in order, or None when it is not given."""
    values = tuple(params.getlist(name))
    if any("\x00" in value for value in values):
        raise ApiError(400, f"{spell(name)} must not hold a NUL character")
    return values or None


def scope(
    access: Access,
    section: Section,
    project: Project,
    channels: tuple[str, ...] | None,
    forms: tuple[str, ...] | None,
    spell: Spell = as_given,
) -> ChannelForms:
    """The channels to read and the forms to keep in each: those asked for (all when none are),
    cut to the asker's scope.

    Forms are cut channel by channel, to those the asker may see in that channel
    (:meth:`~..control.access.Access.visible`); a channel that keeps none of the forms asked is
    not read. A form asked that the asker may see in none of the channels read is "outside your
    access" (403), as a channel outside the scope is. A channel the project doesn't have is a
    400 naming the project's channels when the asker sees them all; to a scoped asker it is a
    403 too, so the answer tells nothing of channels beyond the scope.
    """
    seen = access.visible(section, project.id, project.channels)
    for channel in channels or ():
        if channel not in project.channels and seen.keys() == project.channels:
            listed = ", ".join(sorted(project.channels))
            raise ApiError(
                400, f"{spell('channel')} {channel!r} is not one of this project's: {listed}"
            )
    for form in forms or ():
        if not _FORM.fullmatch(form):
            raise ApiError(
                400, f"{spell('form')} {form!r} must be 1-64 characters of A-Z a-z 0-9 . _ -"
            )
    # Cut to a set of channels, narrow() always gives a tuple (``or ()`` is for the type).
    read = {c: seen[c] for c in narrow(channels, frozenset(seen), spell("channel")) or ()}
    if forms is None:
        return {c: None if shown is None else tuple(sorted(shown)) for c, shown in read.items()}
    asked = tuple(dict.fromkeys(forms))
    every = any(shown is None for shown in read.values())
    anywhere = None if every else frozenset(f for shown in read.values() for f in shown or ())
    narrow(asked, anywhere, spell("form"))
    kept = {c: tuple(f for f in asked if shown is None or f in shown) for c, shown in read.items()}
    return {c: mine for c, mine in kept.items() if mine}


def read_query(
    params: Params,
    project: Project,
    access: Access,
    section: Section,
    *,
    paged: bool,
    oldest_first: bool = False,
    respondent: str | None = None,
    extra: Collection[str] = (),
    spell: Spell = as_given,
) -> ReadQuery:
    """Check ``params`` and make the read they ask for, within ``access`` on ``section``.

    Args:
        params: the query string (or the CLI's flags as pairs).
        project: the project read; ``access`` must show ``section`` of it.
        paged: whether ``limit`` and ``cursor`` are taken (an export takes neither).
        oldest_first: the order (the respondent view reads oldest first).
        respondent: the stored pseudonym to keep only (the respondent view).
        extra: the route's own parameters, checked by the route (``bom``).
        spell: how messages name a parameter.

    Raises:
        ApiError: 400 naming the parameter and its rule; Denied (403) for a channel or form
            outside the asker's scope, or a section not granted.
    """
    known = (*FILTER_PARAMS, *(PAGE_PARAMS if paged else ()), *extra)
    check_known(params, known, meta=True, spell=spell)
    channels = scope(
        access,
        section,
        project,
        repeated(params, "channel", spell),
        repeated(params, "form", spell),
        spell,
    )
    metrics = repeated(params, "metric", spell)
    for metric in metrics or ():
        if metric not in METRIC_RANGES:
            expected = ", ".join(METRIC_RANGES)
            raise ApiError(400, f"{spell('metric')} must be one of {expected}; got {metric!r}")
    low, high = _scale(metrics)
    score_min = _score(single(params, "score_min", spell), "score_min", low, high, metrics, spell)
    score_max = _score(single(params, "score_max", spell), "score_max", low, high, metrics, spell)
    if score_min is not None and score_max is not None and score_max < score_min:
        raise ApiError(400, f"{spell('score_max')} must be at least {spell('score_min')}")
    start = instant(single(params, "from", spell), spell("from"))
    end = instant(single(params, "to", spell), spell("to"))
    if start is not None and end is not None and end <= start:
        raise ApiError(400, f"{spell('to')} must be after {spell('from')}")
    found = ResponseFilter(
        project=project.id,
        metrics=None if metrics is None else tuple(dict.fromkeys(metrics)),
        score_min=score_min,
        score_max=score_max,
        has_comment=boolean(single(params, "has_comment", spell), "has_comment", spell),
        text=_search(single(params, "q", spell), spell),
        tags=_tags(repeated(params, "tag", spell), spell),
        meta=_meta(params, spell),
        locale=_locale(single(params, "locale", spell), spell),
        start_ms=start,
        end_ms=end,
        held=_held(single(params, "held", spell), spell),
        respondent=respondent,
    )
    query = ReadQuery(filter=found, channels=channels, oldest_first=oldest_first)
    if not paged:
        return query
    limit = _limit(single(params, "limit", spell), spell)
    text = single(params, "cursor", spell)
    after = None
    if text is not None:
        try:
            after = cursor.decode(text, project.secret, query.context())
        except cursor.CursorError as exc:
            raise ApiError(400, f"{spell('cursor')} is not valid: {exc}") from None
        if after.channel not in channels:
            raise ApiError(400, f"{spell('cursor')} is not valid: given for another query")
    return msgspec.structs.replace(query, after=after, limit=limit)


def boolean(text: str | None, name: str, spell: Spell = as_given) -> bool | None:
    """``true`` or ``false`` (None when not given); ApiError 400 otherwise."""
    if text is None:
        return None
    if text not in _BOOLEANS:
        raise ApiError(400, f"{spell(name)} must be true or false, got {text!r}")
    return _BOOLEANS[text]


def _scale(metrics: tuple[str, ...] | None) -> tuple[int, int]:
    """The scores possible for ``metrics`` (every metric when None)."""
    ranges = [METRIC_RANGES[m] for m in metrics or METRIC_RANGES]
    return min(low for low, _ in ranges), max(high for _, high in ranges)


def _score(
    text: str | None,
    name: str,
    low: int,
    high: int,
    metrics: tuple[str, ...] | None,
    spell: Spell,
) -> int | None:
    if text is None:
        return None
    value = int(text) if _INTEGER.fullmatch(text) else None
    if value is None or not low <= value <= high:
        scale = f" (the {metrics[0]} scale)" if metrics and len(set(metrics)) == 1 else ""
        raise ApiError(400, f"{spell(name)} must be an integer {low}..{high}{scale}, got {text!r}")
    return value


def _search(text: str | None, spell: Spell) -> str | None:
    if text is None:
        return None
    if not 1 <= len(text) <= MAX_SEARCH_CHARS:
        raise ApiError(
            400, f"{spell('q')} must be 1-{MAX_SEARCH_CHARS} characters, got {len(text)}"
        )
    return text


def _tags(tags: tuple[str, ...] | None, spell: Spell) -> tuple[str, ...]:
    if tags is None:
        return ()
    if len(tags) > MAX_TAGS:
        raise ApiError(400, f"{spell('tag')} may be given at most {MAX_TAGS} times")
    for tag in tags:
        if not 1 <= len(tag) <= MAX_TAG_CHARS:
            raise ApiError(400, f"{spell('tag')} must be 1-{MAX_TAG_CHARS} characters, got {tag!r}")
    return tuple(dict.fromkeys(tags))


def _meta(params: Params, spell: Spell) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for name in params.keys():
        if not name.startswith(META_PREFIX):
            continue
        key = name[len(META_PREFIX) :]
        if not 1 <= len(key) <= MAX_META_KEY_CHARS:
            raise ApiError(
                400,
                f"{spell(name)}: a meta key must be 1-{MAX_META_KEY_CHARS} characters"
                f" (meta.KEY=VALUE), got {len(key)}",
            )
        if "\x00" in key:
            raise ApiError(400, f"{spell(name)}: a meta key must not hold a NUL character")
        value = cast(str, single(params, name, spell))
        if len(value) > MAX_META_VALUE_CHARS:
            raise ApiError(400, f"{spell(name)} must be at most {MAX_META_VALUE_CHARS} characters")
        pairs.append((key, value))
    if len(pairs) > MAX_META:
        raise ApiError(400, f"at most {MAX_META} meta.KEY filters, got {len(pairs)}")
    return tuple(sorted(dict(pairs).items()))


def _locale(text: str | None, spell: Spell) -> str | None:
    if text is not None and not (len(text) <= MAX_LOCALE_CHARS and _LOCALE.fullmatch(text)):
        raise ApiError(
            400,
            f"{spell('locale')} must be a BCP 47 tag of at most {MAX_LOCALE_CHARS} characters,"
            f" like en or fa-IR; got {text!r}",
        )
    return text


def _held(text: str | None, spell: Spell) -> HeldFilter | None:
    if text is None:
        return None
    if text not in HELD_VALUES:
        raise ApiError(
            400, f"{spell('held')} must be one of {', '.join(HELD_VALUES)}; got {text!r}"
        )
    return text


def _limit(text: str | None, spell: Spell) -> int:
    if text is None:
        return DEFAULT_LIMIT
    value = int(text) if _INTEGER.fullmatch(text) else None
    if value is None or not 1 <= value <= MAX_LIMIT:
        raise ApiError(400, f"{spell('limit')} must be an integer 1..{MAX_LIMIT}, got {text!r}")
    return value


#: The core's rule for a respondent id: at most 128 characters.
MAX_RESPONDENT_CHARS: Final = 128


def respondent(text: str, spell: Spell = as_given) -> str:
    """A client's respondent id, checked against the core's rule; ApiError 400 otherwise."""
    if not 1 <= len(text) <= MAX_RESPONDENT_CHARS:
        raise ApiError(
            400,
            f"{spell('respondent')} must be 1-{MAX_RESPONDENT_CHARS} characters, got {len(text)}",
        )
    return text
