"""``voxloop_gateway.pages``: one template loader, escaping by default, strict about names."""

from __future__ import annotations

import jinja2
import pytest
from starlette.requests import Request

from voxloop_gateway.pages import TEMPLATE_DIR, TEMPLATES, render

#: Every template, and what renders it: a page function, or the pages that extend or include it.
KNOWN = {
    "base.html": "every page extends it",
    "demo.html": "pages.demo.demo_response",
    "rating/page.html": "every rating page extends it",
    "rating/score.html": "the vote and comment pages include it",
    "rating/vote.html": "pages.rating.vote_page",
    "rating/comment.html": "pages.rating.comment_page",
    "rating/problem.html": "pages.rating.problem_page",
    "app/layout.html": "every dashboard page extends it (test_dashboard.py)",
    "app/followups.html": "pages.followups: test_followups_pages.py",
    "app/followup.html": "pages.followups: test_followups_pages.py",
    "app/webhooks.html": "pages.webhooks: test_webhooks_page.py",
    "app/audit.html": "pages.audit: tests/privacy/test_audit.py",
    "app/login.html": "pages.login: test_login.py",
    "app/password.html": "pages.login: test_login.py",
    "app/projects.html": "pages.dashboard: test_dashboard.py",
    "app/overview.html": "pages.dashboard: test_dashboard.py",
    "app/_stats.html": "the overview includes it",
    "app/responses.html": "pages.inbox: test_dashboard.py",
    "app/response.html": "pages.inbox: test_dashboard.py",
    "app/exports.html": "pages.inbox: test_dashboard.py",
    "app/_filters.html": "the feedback inbox and exports include it",
    "app/_response.html": "the inbox and a response's page include it",
    "app/error.html": "pages.app_layout.refusal: test_login.py",
}


def test_every_template_is_known_to_the_tests() -> None:
    # A new template gets a test of its own here, in test_rating.py or test_demo.py.
    assert sorted(TEMPLATES.env.list_templates()) == sorted(KNOWN)
    assert {p.relative_to(TEMPLATE_DIR).as_posix() for p in TEMPLATE_DIR.rglob("*.*")} == set(KNOWN)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_html_templates_escape_by_default(name: str) -> None:
    assert TEMPLATES.env.autoescape is not False
    assert callable(TEMPLATES.env.autoescape) and TEMPLATES.env.autoescape(name)


def test_a_name_missing_from_the_context_fails_the_render(http_request: Request) -> None:
    assert TEMPLATES.env.undefined is jinja2.StrictUndefined
    with pytest.raises(jinja2.UndefinedError, match="'language' is undefined"):
        render(http_request, "rating/problem.html", {})


def test_a_page_gets_its_status_and_headers(http_request: Request) -> None:
    context = {"language": "en", "direction": "ltr", "title": "t", "status": 418, "text": "x"}
    answer = render(http_request, "rating/problem.html", context, 418, {"X-Test": "1"})
    assert answer.status_code == 418 and answer.headers["x-test"] == "1"
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
