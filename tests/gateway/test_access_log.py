"""The access log never shows a key or a rating link's token, wherever a client put it.

Clients put keys in odd places: a server key in ``?authorization=Bearer …``, after a ``;``, in
the path of a route that doesn't exist, a token behind a doubled slash. A real gateway in a
process of its own serves each, and its whole output is searched for every secret part.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from voxloop_gateway.http.access_log import redacted_path, redacted_query

from .conftest import Spawn, free_port, make_project, spawn, wait_ready

__all__ = ["spawn"]  # a fixture

KEY = "sk_AbCdEfGh" + "s3cretRestOfTheKey_-0123456789abcdefghijk"


@pytest.mark.parametrize(
    "query",
    [
        f"key={KEY}",
        f"metric=nps&authorization=Bearer%20{KEY}",
        f"metric=nps;key={KEY}",
        f"a={KEY}&b={KEY}",
        f"key={KEY.replace('_', '%5F', 1)}",
        f"x=[{KEY}]",
    ],
)
def test_a_key_anywhere_in_the_query_is_cut_to_its_public_id(query: str) -> None:
    shown = redacted_query(query.encode()).decode()
    assert "s3cret" not in shown
    assert "AbCdEfGh..." in shown


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        (f"/v1/events/{KEY}", "/v1/events/sk_AbCdEfGh..."),
        ("/r/v1.payload.mac", "/r/..."),
        ("//r/v1.payload.mac", "//r/..."),
        ("/x/r/v1.payload.mac", "/x/r/..."),
        ("/v1/events", "/v1/events"),
        ("/v1/respondents/ana@example.com/responses", "/v1/respondents/.../responses"),
        ("/v1/respondents/a/b%0Ac/responses", "/v1/respondents/.../responses"),
    ],
)
def test_a_key_a_token_or_a_respondent_in_the_path_is_left_out(path: str, shown: str) -> None:
    assert redacted_path(path) == shown


def test_the_access_log_of_a_real_gateway_shows_no_key(tmp_path: Path, spawn: Spawn) -> None:
    site, server = make_project(tmp_path)
    port = free_port()
    log = tmp_path / "gateway.log"
    with log.open("w") as output:
        process = spawn(
            tmp_path,
            "serve",
            "--port",
            str(port),
            env={"VOXLOOP_DRAIN_SECONDS": "0"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process)
        with httpx.Client(base_url=url, timeout=10) as client:
            for target in [
                f"/v1/stats?metric=nps&authorization=Bearer%20{server}",
                f"/v1/stats?metric=nps;key={server}",
                f"/v1/events/{server}",
                f"/v1/stats?metric=nps&key={site}",
                "//r/v1.c2hvcA.c2VjcmV0bWFj",
            ]:
                # As sent: a URL library would read a leading "//" as a host.
                client.get(httpx.URL(url).copy_with(raw_path=target.encode()))
        process.terminate()
        assert process.wait(timeout=15) == 0
    printed = log.read_text()
    assert "GET /v1/events/sk_" in printed  # the access log is on, and was searched
    for secret in (server, site, server[11:], site[11:], "c2VjcmV0bWFj"):
        assert secret not in printed
