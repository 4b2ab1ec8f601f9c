"""The dashboard's weight, its first paint against a 10,000-session application, and how
soon a change made through the API shows on the page. Not part of the test suite.

    .venv/bin/python bench/dashboard.py [--runs 7]

First paint is read from the browser's own clock (``performance``, from the start of the
navigation): ``first-contentful-paint``, and the dashboard's ``kontext:sessions-rendered``
mark (the first page of sessions in the table). The live delays are from the moment the
request is sent to the moment the page shows its result (a MutationObserver in the page
notes it), medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kontext_mock import KontextMock, format_instant  # noqa: E402
from kontext_mock.http.serve import start  # noqa: E402
from kontext_mock.http.ui import FILES, content  # noqa: E402
from tests.browser import CHROMIUM, LAUNCH_ARGS  # noqa: E402

NOW = "2026-01-01T12:00:00Z"
DEV_APP = "550e8400-e29b-41d4-a716-446655440000"
# Starts watching the page, before the request is sent: window.__shown resolves with the
# time the first row of the table changes, or the clock shows a given text.
WATCH_ROWS = """() => { window.__shown = new Promise((resolve) => {
    const first = () => (document.querySelector('#session-rows tr') || {dataset: {}}).dataset.session;
    const was = first();
    new MutationObserver((_, observer) => {
        if (first() !== was) { observer.disconnect(); resolve(Date.now()); }
    }).observe(document.getElementById('session-rows'), {childList: true});
}); }"""
WATCH_CLOCK = """(text) => { window.__shown = new Promise((resolve) => {
    new MutationObserver((_, observer) => {
        if (document.getElementById('clock-now').textContent === text) {
            observer.disconnect(); resolve(Date.now());
        }
    }).observe(document.getElementById('clock-now'), {childList: true, characterData: true, subtree: true});
}); }"""


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f})"


def main() -> None:
    """Measure and print."""
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs

    weight = {name: len(content(name)) for name in FILES}
    print(f"page weight: {sum(weight.values()):,} bytes uncompressed ({weight})")

    large = KontextMock(seed=7, now=NOW, frozen=True)
    large.load_scenario("large")
    count = len(large.store.application_sessions(DEV_APP))
    small = KontextMock(seed=7, now=NOW, frozen=True)
    servers = [start(large.app, "127.0.0.1", 0), start(small.app, "127.0.0.1", 0)]
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            browser = playwright.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            paint, rendered = [], []
            for _ in range(runs):
                page = browser.new_page()
                page.goto(servers[0].url + "/_mock/ui/")
                page.wait_for_function(
                    "() => performance.getEntriesByName('kontext:sessions-rendered').length > 0")
                paint.append(page.evaluate(
                    "performance.getEntriesByName('first-contentful-paint')[0].startTime"))
                rendered.append(page.evaluate(
                    "performance.getEntriesByName('kontext:sessions-rendered')[0].startTime"))
                page.close()
                large.events.close_all()
            print(f"first paint, {count:,} sessions in the application: "
                  f"first-contentful-paint {median_ms(paint)}; sessions table {median_ms(rendered)}")

            page = browser.new_page()
            url = servers[1].url
            page.goto(url + "/_mock/ui/")
            page.wait_for_selector("#live.on")
            created, moved = [], []
            agent = requests.Session()
            agent.headers["Authorization"] = "Bearer dev-token"
            for n in range(runs):
                # a session opened by an agent through the public API
                body = {"tokenIdentifier": f"t{n}", "authenticatedUserId": "u",
                        "clientSessionId": f"c{n}"}
                page.evaluate(WATCH_ROWS)
                sent = time.time() * 1000
                agent.post(url + "/api/v1/agent-sessions", json=body, timeout=5).raise_for_status()
                created.append(page.evaluate("window.__shown") - sent)
                # a clock moved by another client (what `kontext-mock clock advance` sends)
                target = format_instant(small.now() + timedelta(minutes=1))
                page.evaluate(WATCH_CLOCK, target)
                sent = time.time() * 1000
                requests.post(url + "/_mock/clock/advance", json={"by": "PT1M"},
                              timeout=5).raise_for_status()
                moved.append(page.evaluate("window.__shown") - sent)
            print(f"live: a session opened through the API is on the page in {median_ms(created)}")
            print(f"live: a clock move by another client is on the page in {median_ms(moved)}")
            browser.close()
    finally:
        for mock in (large, small):
            mock.events.close_all()
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
