"""Real Chromium for the dashboard's tests: Playwright driving Debian's ``chromium``.

One browser per xdist worker for the module's tests; one served mock per worker,
restored to its seeded state before each test, as the pytest plugin does; a fresh
browser context and page per test. Every page must log no console error that its test did not expect,
and ask nothing of any origin but the mock's. A failing test leaves a screenshot in
``build/browser-failures/``.

Without Chromium (or the ``playwright`` package) the browser tests skip, saying why;
with ``CI=true`` they fail instead: in CI they must run (``.ci/run`` installs Chromium).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kontext_mock import KontextMock
from kontext_mock.core.state import MockSnapshot
from kontext_mock.http.serve import RunningServer, start

from .conftest import NOW

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request

CHROMIUM = Path(os.environ.get("KONTEXT_CHROMIUM", "/usr/bin/chromium"))
#: a name Chromium resolves to 127.0.0.1, as a DNS rebinding attack would make it
REBOUND_NAME = "rebound.attacker.net"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # without these Chromium phones home, and the closed network refuses it noisily
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    f"--host-resolver-rules=MAP {REBOUND_NAME} 127.0.0.1",
    # whole tiles are drawn again on each change, so a screenshot does not depend on what
    # the page showed before (docs/dashboard.png stays the same to the byte)
    "--disable-partial-raster",
]
FAILURES = Path(__file__).resolve().parent.parent / "build" / "browser-failures"
VIEWPORT = {"width": 1400, "height": 900}
#: what the failure hook stashes for the fixture's teardown
FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember a failed test, so that its page's teardown keeps a screenshot."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
    return report


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make install)"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    return None


def require_playwright() -> None:
    """Skip the calling test module when playwright is missing (fail in CI)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the playwright package is not installed (make install)"
        if _in_ci():
            raise
        pytest.skip(reason, allow_module_level=True)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Chromium, launched once per worker for the module's tests.

    Not for the session: while Playwright's synchronous API is started, its event loop
    counts as running in this thread, and a later test's ``asyncio.run()`` would fail.
    """
    reason = browser_unavailable()
    if reason is not None:
        if _in_ci():
            pytest.fail(f"the browser tests must run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    # A loaded machine (2 shared cores, tests in parallel) is slower than a laptop: the
    # assertions wait for the page, up to this long, and stop as soon as it is there.
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Served:
    """A mock served for a worker's browser tests, and the seeded state each test starts from."""

    mock: KontextMock
    server: RunningServer
    baseline: MockSnapshot

    @property
    def url(self) -> str:
        """The mock's origin, as the browser reaches it."""
        return self.server.url

    def fresh(self) -> KontextMock:
        """The mock, back to its seeded state (the last test's event stream ends)."""
        self.mock.events.close_all()
        self.mock.restore(self.baseline)
        return self.mock


@pytest.fixture(scope="session")
def served_mock() -> Iterator[Served]:
    """One mock per worker (seed 7, frozen at ``NOW``), served on a free loopback port."""
    mock = KontextMock(seed=7, now=NOW, frozen=True)
    server = start(mock.app, "127.0.0.1", 0)
    try:
        yield Served(mock, server, mock.snapshot())
    finally:
        mock.events.close_all()
        server.stop()


@dataclass
class Dashboard:
    """A fresh page on a served mock, and what it did: console errors, requests."""

    page: Page
    mock: KontextMock
    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    expected_errors: list[str] = field(default_factory=list)
    other_origins: list[str] = field(default_factory=list)

    def open(self, path: str = "/_mock/ui/") -> Page:
        """Load the dashboard and wait until it shows the application's sessions."""
        from playwright.sync_api import expect

        self.page.goto(self.url + path)
        expect(self.page.get_by_role("status").filter(has_text="Live")).to_be_visible()
        expect(self.sessions.locator("tbody tr").first).to_be_visible()
        return self.page

    @property
    def sessions(self) -> Any:
        """The table named Sessions."""
        return self.page.get_by_role("table", name="Sessions")

    def region(self, name: str) -> Any:
        """A region of the page by its name (Clock, Faults, Journal, Events)."""
        return self.page.get_by_role("region", name=name, exact=True)

    def row(self, session_id: str) -> Any:
        """A session's row."""
        return self.sessions.locator(f'tr[data-session="{session_id}"]')

    def expect_console_error(self, pattern: str) -> None:
        """Console errors matching ``pattern`` are what this test provokes."""
        self.expected_errors.append(pattern)

    def unexpected_errors(self) -> list[str]:
        """Console errors and page errors no test asked for."""
        return [e for e in self.errors if not any(re.search(p, e) for p in self.expected_errors)]

    def foreign_requests(self) -> list[str]:
        """Requests to any origin but the mock's (and the pages a test set up on purpose)."""
        return [
            r.url for r in self.requests
            if not r.url.startswith((self.url + "/", "data:"))
            and not any(r.url.startswith(o) for o in self.other_origins)
        ]


@contextmanager
def dashboard_on(browser: Browser, mock: KontextMock, url: str,
                 request: pytest.FixtureRequest) -> Iterator[Dashboard]:
    """A fresh context and page on the mock served at ``url``; checks it on the way out."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    board = Dashboard(page, mock, url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            board.errors.append(f"console: {message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: board.errors.append(f"page error: {error}"))
    context.on("request", lambda req: board.requests.append(req))
    try:
        yield board
    finally:
        if request.node.stash.get(FAILED, False):
            FAILURES.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            page.screenshot(path=str(FAILURES / f"{name}.png"), full_page=True)
        context.close()
    assert board.unexpected_errors() == []
    assert board.foreign_requests() == []


@pytest.fixture
def dashboard(chromium: Browser, served_mock: Served,
              request: pytest.FixtureRequest) -> Iterator[Dashboard]:
    """A fresh page on the worker's mock, reset to its seeded state (not yet opened)."""
    with dashboard_on(chromium, served_mock.fresh(), served_mock.url, request) as board:
        yield board


@contextmanager
def foreign_page(html: str) -> Iterator[str]:
    """A page of another origin (``http://localhost:<another port>/``) serving ``html``.

    On this machine, as the developer's other local apps are: Chromium refuses a public
    page's requests to loopback by itself (Local Network Access), other browsers do not,
    so a local page is what shows the mock's own defence.
    """
    body = html.encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
