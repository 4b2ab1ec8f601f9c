"""The dashboard in real Chromium, driven through accessible names, each change it makes
checked through the mock itself (the control plane's Python face), not only on the page.

Every test's page logs no console error it did not expect and asks nothing of any other
origin (``browser.Dashboard``); assertions wait for the page (Playwright's ``expect``),
never for a fixed time.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from kontext_mock import KontextMock, cli, format_instant, parse_instant
from kontext_mock.http.serve import start

from .browser import REBOUND_NAME, Dashboard, dashboard_on, foreign_page, require_playwright
from .conftest import AUTH, DEV_APP, NOW

require_playwright()  # skips the module without it (fails in CI)
from playwright.sync_api import Browser, expect  # noqa: E402

pytestmark = pytest.mark.slow  # browser: real Chromium

LIST = f"/api/v1/applications/{DEV_APP}/sessions"
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "dashboard.png"
KEPT = 100  # the latest events and journal entries a page keeps (dashboard.js)


def connected(mock: KontextMock, app_id: str = DEV_APP) -> int:
    """Sessions of the application whose transport is open (what a revoke-all disconnects)."""
    return sum(s["status"] == "active" for s in mock.list_sessions(app_id, status="all", limit=200))


def rows_of(board: Dashboard) -> list[str | None]:
    """The session ids of the table's rows, in order."""
    ids: list[str | None] = board.sessions.locator("tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.session || null)")
    return ids


def show_all(board: Dashboard) -> None:
    board.page.get_by_role("combobox", name="Status filter").select_option("all")
    expect(board.sessions.locator("tbody tr")).to_have_count(
        len(board.mock.list_sessions(DEV_APP, status="all", limit=200)))


# -- first paint --------------------------------------------------------------------------


def test_first_paint_shows_the_seeded_sessions_as_the_api_lists_them(dashboard: Dashboard) -> None:
    page = dashboard.open()
    listed = dashboard.mock.list_sessions(DEV_APP)
    expect(dashboard.sessions.locator("tbody tr")).to_have_count(len(listed))
    assert rows_of(dashboard) == [s["id"] for s in listed]  # the API's order
    for session in listed[:5]:
        cells = dashboard.row(session["id"]).locator("td")
        expect(dashboard.row(session["id"]).get_by_role("button")).to_have_text(session["name"])
        expect(cells.nth(0)).to_have_text(session["hostname"] or "—")
        info = session["clientInfo"]
        expect(cells.nth(1)).to_have_text(f"{info['name']} {info['version']}" if info else "—")
        expect(cells.nth(2)).to_have_text(session["status"])
        expect(cells.nth(3)).to_have_text(session["derivedStatus"])
        expect(cells.nth(3).locator(".badge")).to_have_class(f"badge derived-{session['derivedStatus']}")
    clock = dashboard.region("Clock")
    expect(clock.locator("time")).to_have_text("2026-01-01T12:00:00.000Z")
    expect(clock).to_contain_text("frozen")
    expect(page).to_have_title("kontext-mock")


def test_times_are_relative_to_the_mocks_clock_with_the_instant_on_hover(
    dashboard: Dashboard,
) -> None:
    made = dashboard.mock.add_session(DEV_APP, "active", lastActiveAt="-3m", tokenExpiresAt="+57m")
    dashboard.open()
    cells = dashboard.row(made["id"]).locator("td")
    expect(cells.nth(4)).to_have_text("3 min ago")
    expect(cells.nth(5)).to_have_text("in 57 min")
    expect(cells.nth(4).locator("time")).to_have_attribute("title", made["lastActiveAt"])
    expect(cells.nth(5).locator("time")).to_have_attribute("title", made["tokenExpiresAt"])


def test_the_application_combobox_holds_every_application_with_its_organization(
    dashboard: Dashboard,
) -> None:
    mock = dashboard.mock
    org = mock.add_organization(name="Globex")
    other = mock.add_application(organization_id=org.id, name="Support Bot")
    ids = [mock.add_session(other.id, "idle")["id"] for _ in range(3)]
    page = dashboard.open()
    application = page.get_by_role("combobox", name="Application")
    options = application.locator("option")
    expect(options).to_have_count(len(mock.store.applications))
    expect(options.filter(has_text="Support Bot — Globex")).to_have_count(1)
    expect(page.get_by_text(f"OAuth client app_{DEV_APP}")).to_be_visible()
    application.select_option(label="Support Bot — Globex")
    expect(dashboard.sessions.locator("tbody tr")).to_have_count(3)
    assert sorted(rows_of(dashboard)) == sorted(ids)
    # the MCP gateway's public client of the application shown
    expect(page.get_by_text(f"OAuth client app_{other.id}")).to_be_visible()


def test_the_status_filter_lists_what_the_api_lists(dashboard: Dashboard) -> None:
    page = dashboard.open()
    for status in ("inactive", "all", "active"):
        page.get_by_role("combobox", name="Status filter").select_option(status)
        expected = [s["id"] for s in dashboard.mock.list_sessions(DEV_APP, status=status)]
        expect(dashboard.sessions.locator("tbody tr")).to_have_count(len(expected))
        assert rows_of(dashboard) == expected, status


def test_a_row_opens_the_sessions_json(dashboard: Dashboard) -> None:
    page = dashboard.open()
    session = dashboard.mock.list_sessions(DEV_APP)[2]
    dashboard.row(session["id"]).locator("td").nth(0).click()  # anywhere on the row
    dialog = page.get_by_role("dialog", name=f"Session {session['name']}")
    expect(dialog).to_be_visible()
    shown = json.loads(dialog.locator("pre").inner_text())
    assert shown == dashboard.mock.session_detail(session["id"])
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()


def test_a_large_application_is_paged(dashboard: Dashboard) -> None:
    dashboard.mock.reset(sessions=250)
    page = dashboard.open()
    expected = [s["id"] for s in dashboard.mock.list_sessions(DEV_APP, status="all", limit=200)]
    page.get_by_role("combobox", name="Status filter").select_option("all")
    expect(page.get_by_text("1–100 of 250")).to_be_visible()
    assert rows_of(dashboard) == expected[:100]
    page.get_by_role("button", name="Next page").click()
    expect(page.get_by_text("101–200 of 250")).to_be_visible()
    assert rows_of(dashboard) == expected[100:200]
    page.get_by_role("button", name="Next page").click()
    expect(dashboard.sessions.locator("tbody tr")).to_have_count(50)
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()


# -- the clock --------------------------------------------------------------------------


def test_the_clock_buttons_move_the_mocks_clock(dashboard: Dashboard) -> None:
    dashboard.open()
    mock, clock = dashboard.mock, dashboard.region("Clock")
    start = mock.now()
    for name, moved in (("Advance 1 minute", timedelta(minutes=1)),
                        ("Advance 5 minutes", timedelta(minutes=6)),
                        ("Advance 1 hour", timedelta(minutes=66))):
        clock.get_by_role("button", name=name).click()
        expect(clock.locator("time")).to_have_text(format_instant(start + moved))
        assert mock.now() == start + moved
    clock.get_by_role("textbox", name="Advance by").fill("1h30m")
    clock.get_by_role("button", name="Advance", exact=True).click()
    expect(clock.locator("time")).to_have_text(format_instant(start + timedelta(minutes=156)))
    assert mock.now() == start + timedelta(minutes=156)
    clock.get_by_role("textbox", name="Set time").fill("2026-03-01T08:30:00Z")
    clock.get_by_role("button", name="Set clock").click()
    expect(clock.locator("time")).to_have_text("2026-03-01T08:30:00.000Z")
    assert mock.now() == parse_instant("2026-03-01T08:30:00Z")


def test_freeze_and_unfreeze(dashboard: Dashboard) -> None:
    dashboard.open()
    clock = dashboard.region("Clock")
    expect(clock.get_by_role("button", name="Freeze clock", exact=True)).to_be_disabled()
    clock.get_by_role("button", name="Unfreeze clock").click()
    expect(clock).to_contain_text("running")
    assert not dashboard.mock.clock.frozen
    clock.get_by_role("button", name="Freeze clock", exact=True).click()
    expect(clock).to_contain_text("frozen")
    assert dashboard.mock.clock.frozen


def test_a_duration_the_mock_refuses_is_said_on_the_page(dashboard: Dashboard) -> None:
    dashboard.expect_console_error(r"status of 422")
    page = dashboard.open()
    start = dashboard.mock.now()
    clock = dashboard.region("Clock")
    clock.get_by_role("textbox", name="Advance by").fill("P")
    clock.get_by_role("button", name="Advance", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="unprocessable")).to_be_visible()
    assert dashboard.mock.now() == start


def test_moving_the_clock_moves_rows_from_active_to_idle_to_expired(dashboard: Dashboard) -> None:
    made = dashboard.mock.add_session(DEV_APP, "active", lastActiveAt="-1m", tokenExpiresAt="+30m")
    dashboard.open()
    show_all(dashboard)
    derived = dashboard.row(made["id"]).locator("td").nth(3)
    expect(derived).to_have_text("active")
    dashboard.region("Clock").get_by_role("button", name="Advance 5 minutes").click()
    expect(derived).to_have_text("idle")
    # moved by another client this time: the page follows without a reload
    requests.post(dashboard.url + "/_mock/clock/advance", json={"by": "PT30M"}, timeout=5)
    expect(derived).to_have_text("expired")
    expect(derived.locator(".badge")).to_have_class("badge derived-expired")
    assert dashboard.mock.session_detail(made["id"])["session"]["derivedStatus"] == "expired"


def test_a_clock_move_from_the_cli_shows_without_a_reload(dashboard: Dashboard) -> None:
    dashboard.open()
    # the CLI's own code, in this process (a new interpreter would only add its start-up)
    assert cli.main(["clock", "advance", "2h", "--url", dashboard.url]) == 0
    expect(dashboard.region("Clock").locator("time")).to_have_text("2026-01-01T14:00:00.000Z")


# -- sessions: revoke, add, live ---------------------------------------------------------


def test_revoke_all_asks_with_the_count_then_disconnects_them(dashboard: Dashboard) -> None:
    page = dashboard.open()
    mock = dashboard.mock
    count = connected(mock)
    assert count > 0
    page.get_by_role("button", name="Revoke all sessions").click()
    dialog = page.get_by_role("dialog", name="Revoke all sessions?")
    expect(dialog).to_contain_text(f"This disconnects {count} connected sessions of Dev Application")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert connected(mock) == count  # cancelled: nothing changed
    page.get_by_role("button", name="Revoke all sessions").click()
    dialog.get_by_role("button", name="Revoke", exact=True).click()
    expect(page.get_by_role("status").filter(
        has_text=f"Revoked: {count} sessions disconnected.")).to_be_visible()
    assert connected(mock) == 0
    expect(page.get_by_text("No sessions match the filter.")).to_be_visible()


def test_add_session_in_each_state(dashboard: Dashboard) -> None:
    page = dashboard.open()
    show_all(dashboard)
    for state in ("active", "idle", "expired", "disconnected"):
        before = {s["id"] for s in dashboard.mock.list_sessions(DEV_APP, status="all", limit=200)}
        page.get_by_role("combobox", name="New session state").select_option(state)
        page.get_by_role("button", name="Add session").click()
        expect(page.get_by_role("status").filter(has_text=f"Added {state} session")).to_be_visible()
        after = dashboard.mock.list_sessions(DEV_APP, status="all", limit=200)
        (made,) = [s for s in after if s["id"] not in before]
        assert made["derivedStatus"] == state
        expect(dashboard.row(made["id"]).locator("td").nth(3)).to_have_text(state)


def test_sessions_made_through_the_api_show_live(dashboard: Dashboard) -> None:
    page = dashboard.open()
    events = dashboard.region("Events").get_by_role("listitem")
    agent = requests.Session()
    agent.headers.update(AUTH)
    opened = agent.post(dashboard.url + "/api/v1/agent-sessions", timeout=5, json={
        "tokenIdentifier": "tok-1", "authenticatedUserId": "user-1", "clientSessionId": "c-1",
        "hostname": "live-test.local", "clientInfo": {"name": "claude-code", "version": "2.1.0"},
    }).json()
    row = dashboard.row(opened["sessionId"])
    expect(row.locator("td").nth(0)).to_have_text("live-test.local")  # no reload
    expect(events.first).to_contain_text("session.created")
    expect(events.first).to_contain_text(opened["sessionId"])
    assert agent.post(f"{dashboard.url}/api/v1/agent-sessions/{opened['sessionId']}/heartbeat",
                      timeout=5).ok
    expect(events.first).to_contain_text("session.heartbeat")
    revoked = agent.delete(dashboard.url + LIST, timeout=5).json()["disconnectedCount"]
    assert revoked > 0
    expect(events.filter(has_text="session.disconnected")).to_have_count(revoked)
    expect(page.get_by_text("No sessions match the filter.")).to_be_visible()


def test_the_page_keeps_only_the_latest_events(dashboard: Dashboard) -> None:
    dashboard.open()
    made = [dashboard.mock.add_session(DEV_APP, "active")["id"] for _ in range(KEPT + 30)]
    events = dashboard.region("Events").get_by_role("listitem")
    expect(events.first).to_contain_text(made[-1])  # newest first
    expect(events).to_have_count(KEPT)
    expect(events.last).to_contain_text(made[-KEPT])


# -- scenarios, reset -------------------------------------------------------------------


def test_load_a_scenario_then_reset(dashboard: Dashboard) -> None:
    page = dashboard.open()
    mock = dashboard.mock
    seeded = mock.summary()
    page.get_by_role("combobox", name="Scenario").select_option("two-orgs")
    page.get_by_role("button", name="Load scenario").click()
    expect(page.get_by_role("status").filter(has_text="Loaded two-orgs")).to_be_visible()
    assert mock.summary()["organizations"] == 2 and mock.summary()["sessions"] == 24
    application = page.get_by_role("combobox", name="Application")
    expect(application.locator("option")).to_have_count(2)
    application.select_option(label="Globex Support Bot — Globex Corporation")
    globex = "6ba7b810-9dad-41d1-80b4-00c04fd430c8"
    expect(dashboard.sessions.locator("tbody tr")).to_have_count(len(mock.list_sessions(globex)))
    page.get_by_role("button", name="Reset").click()
    expect(page.get_by_role("status").filter(has_text="Reset:")).to_be_visible()
    assert {k: mock.summary()[k] for k in ("organizations", "applications", "sessions")} == {
        k: seeded[k] for k in ("organizations", "applications", "sessions")}
    expect(application.locator("option")).to_have_count(seeded["applications"])


# -- faults, rate limit --------------------------------------------------------------------


def test_faults_are_added_listed_removed_and_cleared(dashboard: Dashboard) -> None:
    dashboard.open()
    faults, mock = dashboard.region("Faults"), dashboard.mock
    rules = faults.get_by_role("table", name="Fault rules").locator("tbody tr")
    faults.get_by_role("combobox", name="Method").select_option("GET")
    faults.get_by_role("textbox", name="Path").fill("/api/v1/applications/*/sessions")
    faults.get_by_role("spinbutton", name="Status code").fill("503")
    faults.get_by_role("spinbutton", name="Times").fill("2")
    faults.get_by_role("button", name="Add fault").click()
    expect(rules.locator("th")).to_have_text(["fault-1"])
    (rule,) = mock.faults.export()
    assert (rule["method"], rule["path"], rule["status"], rule["remaining"]) == (
        "GET", "/api/v1/applications/*/sessions", 503, 2)
    # the rule applies: the next public request is answered 503, and the page counts it
    assert requests.get(dashboard.url + LIST, headers=AUTH, timeout=5).status_code == 503
    expect(rules.first.locator("td").nth(2)).to_have_text("1")
    faults.get_by_role("combobox", name="Effect").select_option("latency")
    faults.get_by_role("spinbutton", name="Latency (s)").fill("0.25")
    faults.get_by_role("spinbutton", name="Times").fill("")
    faults.get_by_role("spinbutton", name="Probability").fill("0.5")
    faults.get_by_role("button", name="Add fault").click()
    expect(rules).to_have_count(2)
    assert [(r["latency"], r["probability"], r["status"]) for r in mock.faults.export()][1] == (
        0.25, 0.5, None)
    faults.get_by_role("combobox", name="Effect").select_option("drop")
    faults.get_by_role("spinbutton", name="Probability").fill("")
    faults.get_by_role("button", name="Add fault").click()
    expect(rules).to_have_count(3)
    assert mock.faults.export()[2]["drop"] is True
    first = mock.faults.export()[0]["id"]
    faults.get_by_role("button", name=f"Remove {first}").click()
    expect(rules).to_have_count(2)
    assert first not in {r["id"] for r in mock.faults.export()}
    faults.get_by_role("button", name="Clear faults").click()
    expect(rules).to_have_text(["No fault rules."])
    assert mock.faults.export() == []


def test_the_rate_limit_switch(dashboard: Dashboard) -> None:
    dashboard.open()
    switch = dashboard.region("Faults").get_by_role("switch", name="Rate limit")
    expect(switch).not_to_be_checked()
    switch.check()
    expect(dashboard.page.get_by_role("status").filter(has_text="Rate limit on")).to_be_visible()
    assert dashboard.mock.limiter.per_minute == 120
    switch.uncheck()
    expect(dashboard.page.get_by_role("status").filter(has_text="Rate limit off")).to_be_visible()
    assert dashboard.mock.limiter.per_minute is None


# -- the journal ---------------------------------------------------------------------------


def test_the_journal_shows_what_another_client_sent(dashboard: Dashboard) -> None:
    dashboard.open()
    journal = dashboard.region("Journal")
    other = {**AUTH, "User-Agent": "other-client/1.0"}
    assert requests.get(dashboard.url + LIST + "?limit=3", headers=other, timeout=5).ok
    assert requests.delete(dashboard.url + LIST, headers=other, timeout=5).ok
    entries = journal.get_by_role("table", name="Requests").locator("tbody tr")
    expect(entries).to_have_count(2)
    newest, oldest = entries.nth(0).locator("td"), entries.nth(1).locator("td")
    expect(newest.nth(1)).to_have_text("DELETE")  # newest first
    expect(oldest.nth(1)).to_have_text("GET")
    expect(oldest.nth(2)).to_have_text(LIST + "?limit=3")
    expect(oldest.nth(3)).to_have_text("200")
    expect(oldest.nth(4)).to_have_text(re.compile(r"^\d+\.\d ms$"))
    expect(oldest.nth(5)).to_have_text("other-client/1.0")
    # expanded: the headers as recorded (the credential redacted) and the body
    oldest.nth(0).get_by_role("button").click()
    expect(entries.nth(1).locator("td").nth(0).get_by_role("button")).to_have_attribute(
        "aria-expanded", "true")
    detail = json.loads(entries.nth(2).inner_text())
    assert detail["headers"] == dashboard.mock.journal.entries(method="GET")[0]["headers"]
    assert detail["headers"]["authorization"] == "Bearer [redacted]"
    # filtered by method, then by path
    journal.get_by_role("combobox", name="Method").select_option("DELETE")
    expect(entries).to_have_count(1)
    expect(entries.first.locator("td").nth(1)).to_have_text("DELETE")
    journal.get_by_role("combobox", name="Method").select_option("")
    journal.get_by_role("searchbox", name="Path").fill("agent-sessions")
    expect(entries).to_have_text(["No requests yet."])


def test_the_page_keeps_only_the_latest_journal_entries(dashboard: Dashboard) -> None:
    dashboard.open()
    with requests.Session() as client:
        for n in range(KEPT + 20):
            client.get(f"{dashboard.url}{LIST}?limit={n % 200 + 1}", headers=AUTH, timeout=5)
    entries = dashboard.region("Journal").get_by_role("table", name="Requests").locator("tbody tr")
    expect(entries).to_have_count(KEPT)
    expect(entries.first.locator("td").nth(2)).to_have_text(f"{LIST}?limit={KEPT + 20}")


# -- the event stream --------------------------------------------------------------------


def test_one_stream_per_tab_resumed_with_the_last_event_id_after_a_restart(
    chromium: Browser, request: pytest.FixtureRequest,
) -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True)
    server = start(mock.app, "127.0.0.1", 0)
    port = server.port
    with dashboard_on(chromium, mock, server.url, request) as board:
        # while the mock is down the page's requests fail, as they should
        board.expect_console_error(r"net::ERR_|Failed to fetch")
        page = board.open()
        first = mock.add_session(DEV_APP, "active")["id"]
        events = board.region("Events").get_by_role("listitem")
        expect(events.first).to_contain_text(first)
        seen = mock.events.history[-1].id
        assert mock.events.streams_open == 1
        mock.events.close_all()  # ends the stream within its tick, so the server can stop
        server.stop()
        mock.events.close_all()  # and any the page opened while the server was stopping
        expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_be_visible()
        meanwhile = mock.add_session(DEV_APP, "idle")["id"]  # published while no one listened
        server = start(mock.app, "127.0.0.1", port)
        try:
            expect(events.first).to_contain_text(meanwhile)
            expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
            streams = [r for r in board.requests if r.url.endswith("/_mock/events")]
            assert streams[0].header_value("last-event-id") is None
            resumed = [r.header_value("last-event-id") for r in streams[1:]]
            assert resumed and set(resumed) == {str(seen)}
            assert mock.events.streams_open == 1  # one stream for the tab, again
        finally:
            mock.events.close_all()
    server.stop()


# -- protection -----------------------------------------------------------------------------


def test_off_loopback_the_page_asks_for_the_admin_token_once_per_tab(
    chromium: Browser, request: pytest.FixtureRequest,
) -> None:
    admin = "browser-admin-token-0123456789"
    mock = KontextMock(seed=7, now=NOW, frozen=True, host="0.0.0.0", admin_token=admin)
    server = start(mock.app, "127.0.0.1", 0)  # as --host 0.0.0.0 configures it; bound to loopback
    try:
        with dashboard_on(chromium, mock, server.url, request) as board:
            board.expect_console_error(r"status of 401")
            page = board.page
            page.goto(board.url + "/_mock/ui/")
            form = page.get_by_role("form", name="Admin token")
            expect(form).to_be_visible()
            assert requests.get(board.url + "/_mock/applications", timeout=5).status_code == 401
            form.get_by_label("Admin token").fill("not-the-token")
            form.get_by_role("button", name="Use token").click()
            expect(page.get_by_role("status").filter(has_text="not accepted")).to_be_visible()
            form.get_by_label("Admin token").fill(admin)
            form.get_by_role("button", name="Use token").click()
            expect(form).to_be_hidden()
            expect(board.sessions.locator("tbody tr")).to_have_count(len(mock.list_sessions(DEV_APP)))
            expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
            board.region("Clock").get_by_role("button", name="Advance 1 minute").click()
            expect(board.region("Clock").locator("time")).to_have_text("2026-01-01T12:01:00.000Z")
            assert mock.now() == parse_instant(NOW) + timedelta(minutes=1)
            # kept for the tab: a reload does not ask again
            assert page.evaluate("sessionStorage.getItem('kontext-mock.admin-token')") == admin
            page.reload()
            expect(board.sessions.locator("tbody tr").first).to_be_visible()
            expect(form).to_be_hidden()
            # the token travels in a header (the event stream's too), never in a URL
            stream = [r for r in board.requests if r.url.endswith("/_mock/events")][-1]
            assert stream.header_value("authorization") == f"Bearer {admin}"
            assert not [r.url for r in board.requests if admin in r.url]
    finally:
        mock.events.close_all()
        server.stop()


def test_a_foreign_page_cannot_drive_the_mock(dashboard: Dashboard) -> None:
    """CSRF: a page of another origin posts to the control plane, by script and by form."""
    mock, url = dashboard.mock, dashboard.url
    kept = mock.add_session(DEV_APP, "active")["id"]  # a reset would remove it
    before = connected(mock)
    dashboard.expect_console_error(r"status of 403")
    page = dashboard.page
    with foreign_page(f"""<title>prize</title><link rel="icon" href="data:,">
            <form method="post" action="{url}/_mock/reset" target="sink"></form>
            <iframe name="sink"></iframe>
            <script>
              fetch("{url}/_mock/applications/{DEV_APP}/revoke", {{method: "POST", mode: "no-cors"}});
              document.forms[0].submit();
            </script>""") as evil:
        dashboard.other_origins.append(evil)
        with page.expect_response(lambda r: r.url.endswith("/revoke")) as by_script, \
                page.expect_response(lambda r: r.url.endswith("/_mock/reset")) as by_form:
            page.goto(f"{evil}/prize")
        assert by_script.value.status == by_form.value.status == 403
    assert connected(mock) == before
    assert mock.session_detail(kept)["session"]["status"] == "active"


def test_a_rebound_dns_name_cannot_reach_the_control_plane(dashboard: Dashboard) -> None:
    """DNS rebinding: an attacker's name resolving to 127.0.0.1 makes its page the mock's
    own origin under that name; the Host tells it apart."""
    mock = dashboard.mock
    rebound = dashboard.url.replace("127.0.0.1", REBOUND_NAME)
    dashboard.other_origins.append(rebound)
    dashboard.expect_console_error(r"status of 4\d\d")  # the refusals, and /favicon.ico
    page = dashboard.page
    refused = page.goto(rebound + "/_mock/ui/")
    assert refused is not None and not refused.ok
    assert refused.json()["error"] == "host_refused"
    # a script of that origin (the attacker's page, once its name points here)
    answers = page.evaluate("""async () => {
        const write = await fetch('/_mock/clock/advance', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({by: 'PT1H'})});
        const read = await fetch('/_mock/applications');
        return [write.ok, (await write.json()).error, read.ok, (await read.json()).error];
    }""")
    assert answers == [False, "host_refused", False, "host_refused"]
    assert mock.now() == parse_instant(NOW)


def test_nothing_leaves_the_mocks_origin(dashboard: Dashboard) -> None:
    page = dashboard.open()
    dashboard.region("Clock").get_by_role("button", name="Advance 1 minute").click()
    page.get_by_role("button", name="Add session").click()
    expect(page.get_by_role("status").filter(has_text="Added")).to_be_visible()
    origins = Counter(r.url.split("/_mock/")[0] for r in dashboard.requests)
    assert origins.keys() == {dashboard.url}
    kinds = {r.resource_type for r in dashboard.requests}
    assert {"document", "script", "stylesheet", "fetch"} <= kinds
    assert dashboard.foreign_requests() == []  # and every test's teardown checks it too


# -- keyboard -------------------------------------------------------------------------------


def _focused_name(page: Any) -> str:
    return str(page.evaluate("""() => {
        const el = document.activeElement;
        if (el.labels && el.labels.length) return el.labels[0].textContent.trim();
        return (el.getAttribute('aria-label') || el.textContent || '').trim();
    }"""))


def test_the_main_controls_work_from_the_keyboard(dashboard: Dashboard) -> None:
    page = dashboard.open()
    mock = dashboard.mock
    order = []
    for _ in range(80):
        page.keyboard.press("Tab")
        order.append(_focused_name(page))
        if order[-1] == "Set clock":
            break
    # (Load scenario waits, disabled, until a scenario is chosen; Freeze clock while frozen)
    main = ["Application", "Status filter", "Revoke all sessions", "New session state",
            "Add session", "Scenario", "Reset", "Advance 1 minute",
            "Advance 5 minutes", "Advance 1 hour", "Advance by", "Advance", "Unfreeze clock",
            "Set time", "Set clock"]
    assert [name for name in order if name in main] == main  # reachable, in reading order
    # the status filter, with arrow keys
    page.get_by_role("combobox", name="Status filter").focus()
    page.keyboard.press("ArrowDown")
    expect(dashboard.sessions.locator("tbody tr")).to_have_count(
        len(mock.list_sessions(DEV_APP, status="inactive")))
    # a row opens with Enter, closes with Escape, and focus comes back to it
    opener = dashboard.sessions.get_by_role("button").first
    opener.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(opener).to_be_focused()
    # the clock: Enter and Space on buttons, Enter in the duration field
    page.get_by_role("button", name="Advance 1 minute").focus()
    page.keyboard.press("Enter")
    expect(dashboard.region("Clock").locator("time")).to_have_text("2026-01-01T12:01:00.000Z")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    expect(dashboard.region("Clock").locator("time")).to_have_text("2026-01-01T12:06:00.000Z")
    page.get_by_role("textbox", name="Advance by").focus()
    page.keyboard.type("90s")
    page.keyboard.press("Enter")
    expect(dashboard.region("Clock").locator("time")).to_have_text("2026-01-01T12:07:30.000Z")
    assert mock.now() == parse_instant("2026-01-01T12:07:30Z")
    # revoke-all: Enter opens the question with its answer focused, Enter confirms
    count = connected(mock)
    page.get_by_role("button", name="Revoke all sessions").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Revoke", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text=f"Revoked: {count} sessions")).to_be_visible()
    assert connected(mock) == 0


# -- layout at 1400 px ------------------------------------------------------------------------

#: pieces of a cell's text that must stay on one line: a break may come at a space, or
#: after a separator of a path, host or id, never inside a word ("Stat/us", "activ/e")
BROKEN_WORDS = """(root) => {
  // how many lines some boxes take: tops a line apart (a badge's box and its text are not)
  const lines = (rects) => {
    const tops = rects.filter((r) => r.width > 0 && r.height > 0).map((r) => r.top).sort((a, b) => a - b);
    return tops.filter((top, i) => i === 0 || top - tops[i - 1] > 8).length;
  };
  window.kontextLines = lines;
  const broken = [];
  for (const cell of root.querySelectorAll('table.grid th, table.grid td')) {
    if (!cell.getClientRects().length) continue;
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT, (text) =>
      text.parentElement.closest('.visually-hidden') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/[^\\s/@?&=-]+[/@?&=-]*/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        if (lines([...range.getClientRects()]) > 1) {
          const table = cell.closest('table').getAttribute('aria-label') || 'Sessions';
          broken.push(`${table}: ${cell.textContent.trim()}`);
        }
      }
    }
  }
  return broken;
}"""
#: cells whose whole text must be on one line: headers, statuses, times, counts (all but
#: the few that may wrap between words, marked ``wraps``)
WRAPPED_SHORT_CELLS = """(root) => [...root.querySelectorAll('table.grid thead th, table.grid td')]
  .filter((cell) => cell.getClientRects().length && cell.colSpan === 1
    && !cell.classList.contains('wraps'))
  .filter((cell) => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    return window.kontextLines([...range.getClientRects()]) > 1;
  })
  .map((cell) => cell.textContent.trim())"""


def test_at_1400_px_no_header_or_value_breaks_mid_word(dashboard: Dashboard) -> None:
    mock = dashboard.mock
    page = dashboard.open()
    assert page.viewport_size == {"width": 1400, "height": 900}
    # every kind of row: sessions in each state, journal entries, fault rules
    for state in ("active", "idle", "expired", "disconnected"):
        mock.add_session(DEV_APP, state, hostname="a-rather-long-hostname-of-a-laptop.local",
                         clientInfo={"name": "gemini-cli-mcp-client", "version": "0.36.0"})
    http = requests.Session()
    http.headers["User-Agent"] = "python-requests/2.32.3 (a client with a long user agent)"
    http.get(f"{dashboard.url}{LIST}?status=all&limit=200", headers=AUTH, timeout=10)
    http.get(f"{dashboard.url}{LIST}/44444444-4444-4444-8444-444444444444", headers=AUTH,
             timeout=10)
    mock.add_fault("DELETE", "/api/v1/applications/*/sessions", status=503, times=3)
    mock.add_fault("GET", "/api/v1/applications/*/sessions/*", latency=(0.25, 1.5))
    show_all(dashboard)
    expect(dashboard.region("Journal").locator("tbody tr")).to_have_count(2)
    expect(dashboard.region("Faults").locator("tbody tr")).to_have_count(2)
    broken = page.evaluate(BROKEN_WORDS, page.locator("main").element_handle())
    assert broken == [], "\n".join(broken)
    assert page.evaluate(WRAPPED_SHORT_CELLS, page.locator("main").element_handle()) == []


def test_the_scenario_chooser_starts_on_a_placeholder_and_load_waits_for_a_choice(
    dashboard: Dashboard,
) -> None:
    page = dashboard.open()
    chooser = page.get_by_role("combobox", name="Scenario")
    load = page.get_by_role("button", name="Load scenario")
    expect(chooser.locator("option").first).to_have_text("choose a scenario…")
    expect(chooser).to_have_value("")
    expect(load).to_be_disabled()
    chooser.select_option("mixed")
    expect(load).to_be_enabled()
    chooser.select_option("")
    expect(load).to_be_disabled()


# -- the README's picture ---------------------------------------------------------------------


def test_the_readme_screenshot_is_taken_from_a_seeded_mock(dashboard: Dashboard) -> None:
    """docs/dashboard.png: the seeded mock with its clock frozen, a session added and
    heartbeated, the clock moved 4m45s: every pixel follows from the seed."""
    mock = dashboard.mock
    page = dashboard.open()
    made = mock.add_session(DEV_APP, "active", hostname="alice-mbp.local",
                            clientInfo={"name": "claude-code", "version": "2.1.4"})
    page.get_by_role("combobox", name="Status filter").select_option("all")
    mock.heartbeat(DEV_APP, made["id"])
    clock = dashboard.region("Clock")
    clock.get_by_role("textbox", name="Advance by").fill("4m45s")
    clock.get_by_role("button", name="Advance", exact=True).click()
    expect(clock.locator("time")).to_have_text("2026-01-01T12:04:45.000Z")
    went_idle = [e for e in mock.events.history if e.type == "session.idle"]
    assert went_idle  # the picture shows sessions going idle as the clock moved
    expect(dashboard.region("Events").get_by_role("listitem")).to_have_count(2 + len(went_idle))
    expect(dashboard.sessions.locator("tbody tr")).to_have_count(
        len(mock.list_sessions(DEV_APP, status="all", limit=200)))
    # no hover and no focus ring on the picture: the pointer rests on the page's title
    page.mouse.move(1, 1)
    page.evaluate("() => document.activeElement.blur()")
    page.set_viewport_size({"width": 1600, "height": 1000})
    expect(page.get_by_role("button", name="Advance 5 minutes")).to_have_css(
        "border-color", "rgb(209, 217, 224)")  # --line, as when not hovered
    picture = page.screenshot(animations="disabled", caret="hide")
    assert picture[:8] == b"\x89PNG\r\n\x1a\n"
    if not SCREENSHOT.exists() or SCREENSHOT.read_bytes() != picture:
        SCREENSHOT.write_bytes(picture)
