"""The one client of the control plane: the CLI's as it is, the contract kit's with the
kit's errors (``ControlPlane``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kontext_mock.clients.control import ControlClient, ControlError
from kontext_mock.contracts.control import ControlPlane
from kontext_mock.contracts.errors import ContractError, TargetUnavailableError
from kontext_mock.http.serve import RunningServer

from .conftest import AUTH, DEV_APP, LiveMock
from .second_implementation import OtherSessionsApi

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture
def plane(live: LiveMock) -> Iterator[ControlPlane]:
    found = ControlPlane.detect(live.url)
    assert isinstance(found, ControlPlane)
    yield found
    found.close()


def test_the_cli_and_the_kit_drive_the_same_mock_through_one_client(
    live: LiveMock, plane: ControlPlane,
) -> None:
    client = ControlClient(live.url)
    assert client.set_time("+1h", frozen=True)["now"] == "2026-01-01T13:00:00.000Z"
    assert plane.clock() == client.clock() == live.mock.clock_state()
    made = plane.create_session(DEV_APP, "idle", hostname="kit-host")
    assert live.mock.get_session(DEV_APP, made["id"])["hostname"] == "kit-host"
    summary = client.load_scenario_text("organizations:\n  - dev: true\n")
    assert summary["sessions"] == 0 == len(live.mock.list_sessions(DEV_APP, status="all"))


def test_the_cli_gets_the_mocks_own_message_and_the_kit_its_contract_error(
    live: LiveMock, plane: ControlPlane,
) -> None:
    with pytest.raises(ControlError) as refused:
        ControlClient(live.url).advance("soon")
    assert (refused.value.status, str(refused.value)) == (
        422, "by: not a duration: 'soon' (use seconds like 90, ISO 8601 like PT10M, or 1h30m)")

    with pytest.raises(ContractError) as failed:
        plane.advance("soon")
    assert str(failed.value) == ("the control plane refused POST /_mock/clock/advance: 422 by:"
                                 " not a duration: 'soon' (use seconds like 90, ISO 8601 like"
                                 " PT10M, or 1h30m)")


def test_an_unreachable_mock_is_a_short_reason_for_the_cli_and_unavailable_for_the_kit() -> None:
    with pytest.raises(ControlError) as unreachable:
        ControlClient(CLOSED).clock()
    assert unreachable.value.status is None
    assert str(unreachable.value) == f"cannot reach the mock at {CLOSED}: connection refused"

    with pytest.raises(TargetUnavailableError, match="connection refused"):
        ControlPlane(CLOSED).clock()


def test_only_a_target_with_a_control_plane_is_detected(
    second_implementation: tuple[OtherSessionsApi, RunningServer],
) -> None:
    _, server = second_implementation
    assert ControlPlane.detect(server.url) is None
    assert ControlPlane.detect(CLOSED) is None


def test_faults_the_rate_limit_and_the_journal_through_the_client(live: LiveMock) -> None:
    client = ControlClient(live.url)
    made = client.add_fault(method="GET", path="/api/v1/*", status=500, times=1, latency=None)
    assert (made["id"], made["status"], made["remaining"], made["latency"]) == (
        "fault-1", 500, 1, None)
    assert [f["id"] for f in client.faults()] == ["fault-1"] == [
        f["id"] for f in live.mock.faults.export()]
    assert client.set_rate_limit(5) == 5 == client.rate_limit()
    live.http.get(f"{live.url}/api/v1/applications/{DEV_APP}/sessions", headers=AUTH)
    live.http.delete(f"{live.url}/api/v1/applications/{DEV_APP}/sessions", headers=AUTH)
    journal = client.journal(limit=1)
    assert [(e["method"], e["status"]) for e in journal] == [("DELETE", 200)]
    assert [e["fault"] for e in client.journal(method="GET")] == ["fault-1"]
    assert client.clear_journal() == 2 and len(live.mock.journal) == 0
    assert client.add_fault(drop=True)["drop"] is True
    assert client.clear_faults("fault-2") == 1
    assert client.clear_faults() == 0  # fault-1 was spent by its one request
    assert client.set_rate_limit(None) is None is client.rate_limit()


def test_a_refusal_keeps_the_mocks_whole_error_body(live: LiveMock) -> None:
    with pytest.raises(ControlError) as refused:
        ControlClient(live.url).load_scenario_text("organizations:\n  - nope: 1\n")
    assert refused.value.status == 422
    assert refused.value.body is not None
    assert (refused.value.body["error"], refused.value.body["file"], refused.value.body["line"],
            refused.value.body["field"]) == ("invalid_scenario", "<inline>", 2,
                                             "organizations[0].nope")


def test_a_url_that_is_not_http_is_refused_before_anything_is_opened(tmp_path: Path) -> None:
    secret = tmp_path / "_mock" / "clock"
    secret.parent.mkdir()
    secret.write_text('{"now": "x", "frozen": true}')
    with pytest.raises(ControlError, match="not an http:// URL"):
        ControlClient(f"file://{tmp_path}").clock()
    assert ControlClient.detect(f"file://{tmp_path}") is None


def test_connection_problems_are_read_from_types_and_errno_not_words() -> None:
    import socket

    from kontext_mock.clients.control import connection_problem

    assert connection_problem(ConnectionRefusedError(111, "any words")) == "connection refused"
    wrapped = OSError("urlopen error")
    wrapped.__cause__ = socket.gaierror(-2, "unknown")
    assert connection_problem(wrapped) == "name or service not known"
    assert connection_problem(ValueError("Connection refused")) == "connection failed"
