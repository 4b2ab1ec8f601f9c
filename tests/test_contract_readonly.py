"""A read-only run sends nothing that changes state: no DELETE, no agent-side write.

Proved twice: by a recorder in front of the mock (every request the kit sent, whatever
the mock does with it) and by the mock's own request journal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from kontext_mock import KontextMock, MockConfig
from kontext_mock.contracts import Options, Target, run_contract
from kontext_mock.http.serve import start

pytestmark = pytest.mark.slow  # whole kit runs

DEV_APP = MockConfig().dev_application_id
SAFE = {"GET", "HEAD", "OPTIONS", "TRACE"}

WsgiApp = Callable[..., Iterable[bytes]]


def recording(app: WsgiApp, seen: list[tuple[str, str]],
              control_plane: bool = True) -> WsgiApp:
    """Record (method, path) of every request; without ``control_plane``, /_mock is 404."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        seen.append((environ["REQUEST_METHOD"], path))
        if path.startswith("/_mock") and not control_plane:
            start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
            return [b"not found"]
        return app(environ, start_response)

    return wrapped


def writes(seen: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(m, p) for m, p in seen
            if (m not in SAFE and p != "/oauth2/token") or p.startswith("/api/v1/agent-sessions")]


def test_a_read_only_run_sends_no_delete_and_no_agent_side_write() -> None:
    mock = KontextMock(seed=7)
    seen: list[tuple[str, str]] = []
    server = start(recording(mock.app, seen), "127.0.0.1", 0)
    try:
        report = run_contract(Target(server.url, token="dev-token", application_id=DEV_APP),
                              Options(destructive=False, max_examples=10, seed=5))
    finally:
        server.stop()
    assert report.ok, report.render()
    assert not report.destructive
    public = [(m, p) for m, p in seen if not p.startswith("/_mock")]
    assert len(public) > 100  # every layer ran
    assert report.result("schema-response-schema-conformance").status == "passed"
    assert writes(seen) == []
    assert not [p for m, p in seen if p.startswith("/_mock") and m != "GET"]
    journal = getattr(mock, "journal", None)
    if journal is not None:  # the mock's own record agrees
        assert journal.entries(method="DELETE") == []
        assert journal.entries(path="/api/v1/agent-sessions*") == []
        assert len(journal.entries()) >= len(public) - 10


def test_without_a_control_plane_the_default_is_read_only() -> None:
    mock = KontextMock(seed=7)
    seen: list[tuple[str, str]] = []
    server = start(recording(mock.app, seen, control_plane=False), "127.0.0.1", 0)
    try:
        report = run_contract(Target(server.url, token="dev-token", application_id=DEV_APP),
                              Options(max_examples=3, seed=5, layers=("semantic", "stateful")))
    finally:
        server.stop()
    assert report.ok, report.render()
    assert not report.destructive and not report.control_plane
    assert report.result("revoke-count").status == "skipped"
    assert "read-only" in report.result("revoke-count").detail
    assert writes(seen) == []
