"""The short soak in CI: many threads against one live mock for a fixed number of
requests, every invariant of tests/soak.py checked (the long run is ``python -m tests.soak``).

Bounded by counts, not by time: the clock moves once every 60 requests, so what the run
covers does not depend on how fast the machine is that day."""

from __future__ import annotations

import os

import pytest

from .soak import run

pytestmark = pytest.mark.slow  # soak: a mixed concurrent load

REQUESTS = int(os.environ.get("KONTEXT_SOAK_REQUESTS", "4000"))
MOVE_EVERY = 60


def test_the_mock_holds_under_a_mixed_concurrent_load() -> None:
    # the duration is only a safety bound: the run ends when every request is sent
    report = run(duration=600, threads=12, max_requests=REQUESTS, move_every=MOVE_EVERY)
    print("\n" + report.summary())
    assert not report.violations, report.violations[:10]
    assert not report.log_problems, report.log_problems[:10]
    assert not [s for s in report.statuses if s >= 500]
    # the mix really ran: every operation, revokes that disconnected something, reads judged
    assert set(report.ops) == {"list", "get", "revoke", "token", "create", "heartbeat", "disconnect"}
    assert sum(report.ops.values()) == REQUESTS and report.revoked_sum > 0
    assert report.reads_checked >= REQUESTS // 10
    assert report.clock_moves == REQUESTS // MOVE_EVERY


def test_the_judge_refuses_a_status_the_clock_cannot_explain() -> None:
    from datetime import datetime, timedelta

    from .soak import judge_read

    t = datetime.fromisoformat("2026-01-01T12:00:00+00:00")
    session = {"id": "s", "status": "active", "derivedStatus": "active",
               "lastActiveAt": "2026-01-01T11:50:00.000Z", "tokenExpiresAt": "2026-01-01T13:00:00.000Z"}
    idle = timedelta(minutes=5)
    assert judge_read([session], t, t, idle) is not None  # ten minutes quiet: idle, not active
    assert judge_read([{**session, "derivedStatus": "idle"}], t, t, idle) is None
    # each alone is consistent with some instant of the window, not both with one instant
    recent = {**session, "id": "r", "lastActiveAt": "2026-01-01T11:56:00.000Z"}
    window_end = t + timedelta(minutes=2)
    assert judge_read([recent], t, window_end, idle) is None
    assert judge_read([{**recent, "derivedStatus": "idle"}], t, window_end, idle) is None
    expired = {**session, "id": "e", "derivedStatus": "expired", "tokenExpiresAt": "2026-01-01T12:01:30.000Z"}
    assert judge_read([recent, expired], t, window_end, idle) is not None
    assert judge_read([{**session, "status": "disconnected"}], t, t, idle) is not None
