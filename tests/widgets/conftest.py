"""Real parts for the widget's tests: a gateway on loopback, a host page server, a browser.

- ``host``: a threaded ``http.server`` on another loopback port than the gateway (so the page's
  origin differs from the gateway's, as on a real site) serving per-test HTML with per-test
  headers, e.g. a strict Content-Security-Policy.
- ``shop``: project ``shop`` in a data dir, its site key allowed from the host's origin; and
  ``gateway``, a gateway over it shared by a test module (each test uses a form of its own, so
  tests don't see each other's answers).
- ``embed()`` writes the page that embeds the widget with a script tag; ``rows()`` reads the
  stored events from the real SQLite file; ``queued()`` reads the widget's localStorage queue.
"""

from __future__ import annotations

import html
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Locator, Page

from tests.browser import Watched, watch
from tests.gateway.conftest import Gateway, start_gateway
from voxloop_gateway.control.registry import Registry

#: A policy that allows nothing but what comes from the gateway.
STRICT_CSP = (
    "default-src 'none'; script-src {gw}; style-src {gw}; connect-src {gw}; img-src {gw}; "
    "base-uri 'none'; form-action 'none'"
)


@dataclass
class Host:
    """The host pages' server: ``serve(html, headers)`` publishes a page and returns its URL."""

    server: ThreadingHTTPServer
    pages: dict[str, tuple[bytes, dict[str, str]]] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, body: str, headers: dict[str, str] | None = None, path: str = "") -> str:
        path = path or f"/page/{uuid.uuid4().hex}"
        self.pages[path] = (body.encode(), headers or {})
        return self.origin + path


def _handler(host: Host) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = host.pages.get(self.path.partition("?")[0])
            if self.path == "/favicon.ico":  # none, and no 404 in the console either
                self.send_response(204)
                self.end_headers()
                return
            if found is None:
                self.send_error(404)
                return
            body, headers = found
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def host() -> Iterator[Host]:
    """The server of the pages that embed the widget, for the whole run."""
    host = Host(ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler))
    host.server.RequestHandlerClass = _handler(host)
    thread = threading.Thread(target=host.server.serve_forever, daemon=True)
    thread.start()
    yield host
    host.server.shutdown()
    host.server.server_close()


@dataclass
class Shop:
    """Project ``shop`` in ``data_dir``: a site key for web from the host's origin, a server key."""

    data_dir: Path
    site_key: str
    server_key: str

    def start(self, port: int = 0) -> Gateway:
        return start_gateway(
            self.data_dir, self.site_key, self.server_key, port=port, drain_seconds=0
        )


def make_shop(data_dir: Path, origin: str) -> Shop:
    registry = Registry(data_dir)
    registry.create_project("shop")
    site, _ = registry.create_key("shop", "site", ["web"], [origin])
    server, _ = registry.create_key("shop", "server")
    return Shop(data_dir, site, server)


@pytest.fixture
def shop(tmp_path: Path, host: Host) -> Shop:
    """A project of this test's own, for tests that stop and start their gateway."""
    return make_shop(tmp_path / "gateway", host.origin)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, host: Host) -> Iterator[Gateway]:
    """A gateway shared by the tests of a module; each test uses a form of its own."""
    shop = make_shop(tmp_path_factory.mktemp("gateway"), host.origin)
    running = shop.start()
    yield running
    running.stop()


@pytest.fixture
def form() -> str:
    """A form name of this test's own (1–64 chars of ``[A-Za-z0-9._-]``)."""
    return f"t-{uuid.uuid4().hex[:12]}"


def embed(
    gw: Gateway,
    *,
    lang: str = "en",
    head: str = "",
    body: str = "",
    key: str | None = None,
    **data: str,
) -> str:
    """A page embedding the widget with one script tag; ``data`` become its data- attributes.

    ``data_target="#slot"`` renders it inline in ``<div id="slot">``, which the page always has.
    """
    attrs = " ".join(
        f'{name.replace("_", "-")}="{html.escape(value)}"'
        for name, value in {"data_key": key or gw.site_key, **data}.items()
    )
    rtl = lang.split("-")[0] in ("ar", "fa")
    lang_attr = (f' lang="{lang}"' if lang else "") + (' dir="rtl"' if rtl else "")
    return (
        f"<!doctype html><html{lang_attr}><head>"
        '<meta charset="utf-8"><title>shop</title>'
        f'{head}<script src="{gw.url}/widgets/v1/voxloop.js" {attrs} async></script></head>'
        f'<body><h1>Checkout</h1>{body}<div id="slot"></div></body></html>'
    )


def csp_header(gw: Gateway) -> dict[str, str]:
    """The strict Content-Security-Policy header, allowing only the gateway's origin."""
    return {"Content-Security-Policy": STRICT_CSP.format(gw=gw.url)}


def rows(gw: Gateway, form: str) -> list[dict[str, Any]]:
    """The stored events of ``form``, oldest first, with their body decoded."""
    db = sqlite3.connect(gw.data_dir / "stores" / "web.sqlite3")
    db.row_factory = sqlite3.Row
    try:
        found = db.execute(
            "SELECT id, form, metric, score, vote_key, counted, ts_ms, body FROM events"
            " WHERE form = ? ORDER BY ts_ms, id",
            (form,),
        ).fetchall()
    finally:
        db.close()
    return [{**dict(r), "body": json.loads(r["body"])} for r in found]


def count(gw: Gateway, form: str, metric: str = "nps") -> int:
    """How many answers of ``form`` the stats count."""
    total: int = gw.stats(metric=metric, form=form)["total"]["count"]
    return total


def queued(page: Page) -> list[dict[str, Any]]:
    """The widget's queue of events not yet stored, from the page's localStorage."""
    raw = page.evaluate("localStorage.getItem('voxloop:queue')")
    found: list[dict[str, Any]] = json.loads(raw) if raw else []
    return found


# Counts the page's securitypolicyviolation events (an init script runs whatever the page's CSP).
_RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI), true);
"""


def visit(
    context: BrowserContext, url: str, *, expected_errors: tuple[str, ...] = ()
) -> tuple[Page, Watched]:
    """Open ``url`` in a new page of ``context``, watched, once the widget's script has run."""
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.add_init_script(_RECORD_VIOLATIONS)
    watched = watch(page, expected_errors=expected_errors)
    page.goto(url)
    # A function, not an expression: Playwright evals expressions, which a strict CSP blocks.
    page.wait_for_function("() => window.voxloop && window.voxloop.version")
    return page, watched


def violations(page: Page) -> list[str]:
    """The securitypolicyviolation events the page has seen."""
    found: list[str] = page.evaluate("window.__violations")
    return found


def shown(page: Page) -> bool:
    """Whether the widget is on the page."""
    return page.locator("[data-voxloop]").count() > 0


def status(page: Page) -> str:
    """The text of the widget's live region."""
    text: str = page.locator("[data-voxloop] [role=status]").text_content() or ""
    return text


def wait_queue_empty(page: Page) -> None:
    """Wait until the widget's queue in localStorage is empty."""
    page.wait_for_function(
        "() => !JSON.parse(localStorage.getItem('voxloop:queue') || '[]').length", timeout=10_000
    )


def radio(page: Page, score: int) -> Locator:
    """The widget's radio for ``score``."""
    return page.locator(f"[data-voxloop] [role=radio][value='{score}']")
