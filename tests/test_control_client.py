"""The one client of the control plane: the CLI's as it is, the contract kit's with the
kit's errors (``ControlPlane``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kontext_mock.clients.control import ControlClient, ControlError
from kontext_mock.contracts.control import ControlPlane
from kontext_mock.contracts.errors import ContractError, TargetUnavailableError
from kontext_mock.http.serve import RunningServer

from .conftest import DEV_APP, LiveMock
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
