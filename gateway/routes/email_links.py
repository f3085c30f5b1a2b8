"""``/r/{token}``: the email rating link (CONTRACT.md, "Email rating links").

``GET`` (and ``HEAD``) check the token and show the vote page; they record nothing, so link
scanners and mail-client prefetches never vote. The page's script confirms with a ``POST`` once
the page is really shown to a person (a button does it without JavaScript); that POST records
the vote in the ``email`` channel's store, with the email's ``vote_key`` so that the last click
of one email counts. A second POST with a comment attaches it to the same vote. ``OPTIONS`` (and
the 405 of any other method) lists them all in ``Allow``: :class:`RatingLinkEndpoint` serves the
path with every method.

The store judges each click (see :class:`~voxloop_gateway.stores.VoteRule`): a click after the
edit window is kept as history only, and a burst of clicks on different scores of one email
within seconds is held apart as quarantined, counted in the stats, never in the score.
"""

from __future__ import annotations

import re
import time
from typing import Final
from urllib.parse import parse_qsl

import msgspec
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response

import voxloop_core
from voxloop import new_id
from voxloop.email import ExpiredToken, ForgedToken, Vote, token_project, verify
from voxloop_core import DAY_MS, Policy, Record

from ..errors import ApiError
from ..http.auth import check_limit, request_address
from ..http.body import media_type, read_body
from ..http.responses import error_response, json_response
from ..ingest.pipeline import commit
from ..pages.rating import PAGE_HEADERS, comment_page, pick_language, problem_page, vote_page
from ..privacy.scrub import scrub_records
from ..service import Service
from ..stores import VoteRule

#: The largest confirmation a page posts: a view id and a comment of 4,000 characters, which a
#: form post without JavaScript sends percent-encoded (up to 12 bytes a character).
MAX_BODY: Final = 64 * 1024
_VIEW: Final = re.compile(r"[A-Za-z0-9-]{1,64}")
EMAIL_CHANNEL: Final = "email"
#: The media type of the no-JavaScript button's post.
FORM: Final = "application/x-www-form-urlencoded"
#: The methods ``/r/{token}`` serves, as ``Allow`` lists them.
ALLOW: Final = "GET, HEAD, POST, OPTIONS"


class Confirmation(msgspec.Struct, forbid_unknown_fields=True):
    """What the page posts: the id of the page view, and optionally a comment."""

    view: str
    comment: str | None = None


class Recorded(msgspec.Struct):
    """The answer to a confirmation posted as JSON."""

    recorded: bool
    commented: bool


def _language(request: Request) -> str:
    return pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def check_token(service: Service, token: str) -> tuple[Vote, str]:
    """The vote a link carries and its project; ApiError 403 (forged) or 410 (expired)."""
    project_id = token_project(token) or ""
    known = service.registry.project_of(project_id) is not None
    expired: ExpiredToken | None = None
    for secret in service.registry.signing_secrets(project_id) if known else []:
        try:
            return verify(token, secret), project_id
        except ExpiredToken as exc:
            expired = exc
        except ForgedToken:
            continue
    if expired is not None:
        raise ApiError(410, str(expired))
    raise ApiError(403, "this rating link is not valid: altered, or not signed by this gateway")


def refusal(request: Request, refused: ApiError) -> Response:
    """How a rating link answers a refusal: a page for a browser, JSON for the page's script.

    A link opened (GET, HEAD) or the no-JavaScript button's form post gets the problem page in
    the visitor's language; the page's script, which posts JSON, gets the contract's
    ``{"error": ...}``. ``create_app``'s one exception handler calls this for the link's route.
    """
    language = _language(request)
    if request.method in ("GET", "HEAD"):
        return problem_page(request, language, refused.status)
    if media_type(request) == FORM:
        return problem_page(request, language, refused.status, refused.message, refused.headers)
    return error_response(refused, {**PAGE_HEADERS, **refused.headers})


async def show_vote(request: Request) -> Response:
    """``GET /r/{token}``: the vote page; records nothing."""
    service: Service = request.app.state.service
    language = _language(request)
    vote, _ = check_token(service, request.path_params["token"])
    service.metrics.request("rating", 200)
    # Each showing of the page gets its own id, the id its vote is stored under: a repeated
    # confirmation of one showing is a duplicate, a new click a new vote of the same email.
    return vote_page(request, language, vote.metric, vote.score, new_id())


async def confirm_vote(request: Request) -> Response:
    """``POST /r/{token}``: record the vote (and attach a comment); JSON or form posts."""
    service: Service = request.app.state.service
    language = _language(request)
    as_form = media_type(request) == FORM
    check_limit(service, "address", request_address(request, service), time.monotonic())
    vote, project_id = check_token(service, request.path_params["token"])
    confirmation = await _confirmation(request, as_form)
    commented = await _record(service, project_id, vote, confirmation, language)
    service.metrics.request("rating", 200)
    if not as_form:
        return json_response(200, Recorded(True, commented), PAGE_HEADERS)
    if commented:
        return comment_page(request, language, vote.metric, vote.score)
    return vote_page(request, language, vote.metric, vote.score, confirmation.view, recorded=True)


class RatingLinkEndpoint(HTTPEndpoint):
    """``/r/{token}`` with every method it serves: GET and HEAD show the page, POST records.

    One route for all of them, so that ``OPTIONS`` and the 405 of any other method name them
    all in ``Allow`` (``GET, HEAD, POST, OPTIONS``). Mount it as ``Route("/r/{token}",
    RatingLinkEndpoint)``.
    """

    async def get(self, request: Request) -> Response:
        return await show_vote(request)

    async def post(self, request: Request) -> Response:
        return await confirm_vote(request)

    async def options(self, request: Request) -> Response:
        """What the link takes; no CORS: only the page itself, on this origin, posts."""
        return Response(status_code=204, headers={**PAGE_HEADERS, "Allow": ALLOW})


async def _confirmation(request: Request, as_form: bool) -> Confirmation:
    media = media_type(request)
    if not as_form and media != "application/json":
        raise ApiError(415, f"Content-Type must be application/json, got {media or 'none'}")
    body = await read_body(request, limit=MAX_BODY)
    if as_form:  # the no-JavaScript button: view (and comment) as form fields
        try:
            pairs = parse_qsl(body.decode("utf-8"), max_num_fields=4, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "the form is not UTF-8 form fields") from None
        body = msgspec.json.encode(dict(pairs))
    try:
        found = msgspec.json.decode(body, type=Confirmation)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"invalid confirmation: {exc}") from None
    except msgspec.DecodeError:
        raise ApiError(400, "the body is not JSON") from None
    if not _VIEW.fullmatch(found.view):
        raise ApiError(400, "view must be 1-64 characters of A-Z a-z 0-9 -")
    if found.comment is not None and not found.comment.strip():
        found.comment = None
    return found


def _record_of(
    service: Service, project_id: str, vote: Vote, confirmation: Confirmation, language: str
) -> Record:
    """The vote as a validated ``email`` event: the core applies the contract's rules."""
    project = service.registry.project(project_id)
    event = {
        "id": confirmation.view,
        "channel": EMAIL_CHANNEL,
        "form": vote.form,
        "metric": vote.metric,
        "score": vote.score,
        "respondent": vote.recipient,
        "vote_key": vote.vote_key,
        "locale": language,
        "meta": {"campaign": vote.campaign},
    }
    if confirmation.comment is not None:
        event["comment"] = confirmation.comment
    events, rejected = voxloop_core.decode_batch(msgspec.json.encode({"events": [event]}))
    now_ms = int(time.time() * 1000)
    records, refused = voxloop_core.validate(
        events, Policy(channels=project.channels), now_ms, project.secret
    )
    for rejection in rejected + refused:
        raise ApiError(400, f"{rejection.field}: {rejection.error}")
    if project.scrubber is not None:  # the comment, scrubbed as any other before it is kept
        records, found = scrub_records(project.scrubber, records)
        service.metrics.scrubbed(found)
    return records[0]


async def _record(
    service: Service, project_id: str, vote: Vote, confirmation: Confirmation, language: str
) -> bool:
    """Store the vote (a repeat of one view is a duplicate); attach the comment; commented?"""
    service.check_taking_writes()
    record = _record_of(service, project_id, vote, confirmation, language)
    settings = service.settings
    rule = VoteRule(
        edit_window_ms=int(settings.email_edit_days * DAY_MS),
        burst_ms=int(settings.email_burst_seconds * 1000),
    )
    stored, _ = await commit(
        service, project_id, EMAIL_CHANNEL, [record], int(time.time() * 1000), rule=rule
    )
    if record.comment is None or stored:
        return record.comment is not None
    assert record.vote_key is not None
    store = await service.store(EMAIL_CHANNEL)  # StoreError: 503
    return await store.attach_comment(project_id, record.key, record.vote_key, record.comment)
