"""Keep keys and rating-link tokens out of the server's access log, wherever a client put them."""

from __future__ import annotations

import re
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

#: A key as it may appear anywhere in a URL: its kind's prefix (``pk_``, ``sk_``; the underscore
#: maybe percent-encoded), the 8 characters of its public id, then the secret rest.
_KEY_IN_URL: Final = re.compile(rb"([a-z]k(?:_|%5[fF])[A-Za-z0-9_-]{8})[A-Za-z0-9_%-]+")
#: A rating link's path, however many slashes lead to it: the token names its recipient.
_TOKEN_PATH: Final = re.compile(r"/r/.*", re.DOTALL)
#: A respondent's id as the client knows it: personal data, never logged.
_RESPONDENT_PATH: Final = re.compile(r"(/v1/respondents/).*?((?:/responses)?)\Z", re.DOTALL)


class KeepSecretsOutOfLogs:
    """Keeps keys sent in the URL and rating-link tokens out of the server's access log.

    A site key may come as ``?key=`` (``sendBeacon``), a server key sent in a URL by mistake is
    refused but was still sent, and a rating link's path carries a token that names its
    recipient. The server logs the request's path and query from the scope it handed the app
    once the answer is sent; the routes read a copy of that scope with everything as sent, and
    the server's own shows every key, wherever it stands in the path or query, by its public id
    only (``pk_AbCdEfGh...``), and no token.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        path: str = scope.get("path", "")
        shown_path = redacted_path(path)
        if not query and shown_path == path:
            await self.app(scope, receive, send)
            return
        as_sent = dict(scope)
        scope["query_string"] = redacted_query(query)
        scope["path"] = shown_path
        scope["raw_path"] = shown_path.encode()
        await self.app(as_sent, receive, send)


def redacted_query(query: bytes) -> bytes:
    """``query`` with every key in it cut to the key's public id."""
    return _KEY_IN_URL.sub(rb"\1...", query)


def redacted_path(path: str) -> str:
    """``path`` with a rating link's token left out and every key cut to its public id."""
    if "/r/" in path:
        path = _TOKEN_PATH.sub("/r/...", path)
    if "/v1/respondents/" in path:
        path = _RESPONDENT_PATH.sub(r"\1...\2", path)
    if "k_" not in path and "k%" not in path:
        return path
    return _KEY_IN_URL.sub(rb"\1...", path.encode()).decode()
