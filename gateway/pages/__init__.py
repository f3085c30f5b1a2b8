"""The gateway's HTML pages: Jinja2 templates, rendered through Starlette, escaped by default.

The templates live in ``templates/`` beside this module (the wheel carries them): one base
layout, ``base.html``, that every page extends, and a template a page. Every value a page shows
is escaped when the template prints it (autoescape), and a name missing from a page's context
fails the render (``StrictUndefined``) instead of printing nothing. Pages load their styles and
scripts from ``/static/`` only, never inline: the Content-Security-Policy forbids inline code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

__all__ = ["TEMPLATE_DIR", "TEMPLATES", "render"]

#: Where the page templates are, in the source tree and in an installed wheel alike.
TEMPLATE_DIR: Final = Path(__file__).resolve().parent / "templates"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=True, default=True
        ),
        undefined=jinja2.StrictUndefined,
        # Block tags on lines of their own leave no blank lines or indentation behind.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # the templates are part of the release, read once
    )


#: The one template loader of the gateway's pages, made once at import.
TEMPLATES: Final = Jinja2Templates(env=_environment())


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The response of one page: ``name``'s template rendered with ``context``.

    Args:
        request: the request the page answers (Starlette's templates are given it as
            ``request``).
        name: the template, relative to :data:`TEMPLATE_DIR`, e.g. ``"rating/vote.html"``.
        context: the values the template prints, escaped as it prints them.
        status_code: the response's status.
        headers: the response's headers.

    Returns:
        An ``HTMLResponse`` with the rendered page.

    Raises:
        jinja2.UndefinedError: the template uses a name that ``context`` lacks.
    """
    return TEMPLATES.TemplateResponse(request, name, dict(context), status_code, headers)
