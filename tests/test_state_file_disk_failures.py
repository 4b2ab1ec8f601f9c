"""The state file when the disk fails: a write it refused is 503 and nothing later is
lost, a refused request is still answered as such, closing stops the writer first, a dead
writer fails its waiting writes, a log compacted many times loads what was acknowledged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from kontext_mock import KontextMock
from kontext_mock.statefile import NotSavedError, StateFile, read_state_file

from .conftest import AUTH, DEV_APP, NOW
from .serving import AGENT, AGENT_BODY

# -- state files -----------------------------------------------------------------------------------


class FailingDisk:
    """Stands in for the state file's write: the next ``failures`` writes write half their
    bytes and fail as a full disk would."""

    def __init__(self, write: Any, failures: int = 1) -> None:
        self.write, self.failures = write, failures

    def __call__(self, fd: int, data: bytes) -> None:
        if self.failures:
            self.failures -= 1
            self.write(fd, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        self.write(fd, data)


@pytest.fixture
def state_file(tmp_path: Path) -> Iterator[tuple[KontextMock, StateFile]]:
    mock = KontextMock(seed=7, now=NOW, frozen=True)
    state = StateFile(tmp_path / "state.json", mock, flush_interval=0.05)
    state.open()
    state.start()
    try:
        yield mock, state
    finally:
        state.close()


def test_a_write_the_disk_refused_is_503_and_no_later_write_is_lost(
    state_file: tuple[KontextMock, StateFile], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kontext_mock.statefile as statefile

    mock, state = state_file
    first = mock.add_session(DEV_APP)["id"]
    state.commit()
    monkeypatch.setattr(statefile, "_write_all", FailingDisk(statefile._write_all))
    refused = mock.add_session(DEV_APP)["id"]
    with pytest.raises(NotSavedError):
        state.commit()  # half a line is in the log now
    later = mock.add_session(DEV_APP)["id"]
    state.commit()  # acknowledged: so it must load back
    last = mock.add_session(DEV_APP)["id"]
    state.commit()
    document, _ = read_state_file(state.path)
    saved = {s["id"] for s in document["sessions"]}
    assert {first, later, last} <= saved
    assert refused in saved  # (made in memory; the whole state written after the failure has it)


def test_a_refused_write_is_answered_503_state_not_saved(
    state_file: tuple[KontextMock, StateFile], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kontext_mock.statefile as statefile

    mock, _ = state_file
    monkeypatch.setattr(statefile, "_write_all", FailingDisk(statefile._write_all, failures=1000))
    response = mock.app.test_client().post(AGENT, json=orjson.loads(AGENT_BODY), headers=AUTH)
    assert response.status_code == 503, response.data
    assert response.json == {"error": "state_not_saved", "message": response.json["message"]}
    assert "No space left" in response.json["message"]
    assert response.headers["Retry-After"] and response.headers["x-request-id"]
    assert mock.journal.entries(method="POST")[-1]["status"] == 503  # the journal says so too


def test_a_refused_request_is_answered_as_such_while_the_disk_fails(
    state_file: tuple[KontextMock, StateFile], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kontext_mock.statefile as statefile

    mock, _ = state_file
    monkeypatch.setattr(statefile, "_write_all", FailingDisk(statefile._write_all, failures=1000))
    client = mock.app.test_client()
    assert client.post(AGENT, json=orjson.loads(AGENT_BODY), headers=AUTH).status_code == 503
    # a request refused for itself changed nothing, so it waits for no write: its own 4xx
    bad = client.post(AGENT, json={"tokenIdentifier": 1}, headers=AUTH)
    assert bad.status_code == 400 and bad.json["error"] == "validation_error", bad.data
    gone = client.delete(f"/api/v1/applications/{'0' * 8}-0000-4000-8000-{'0' * 12}/sessions",
                         headers=AUTH)
    assert gone.status_code == 404, gone.data


def test_closing_while_the_disk_fails_stops_the_writer_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kontext_mock.statefile as statefile

    mock = KontextMock(seed=7, now=NOW, frozen=True)
    state = StateFile(tmp_path / "state.json", mock, flush_interval=0.05)
    state.open()
    state.start()
    monkeypatch.setattr(statefile, "_write_all", FailingDisk(statefile._write_all, failures=1000))
    mock.add_session(DEV_APP)
    with pytest.raises(NotSavedError):
        state.commit()
    # the writer stops trying once asked to stop, so that the last whole-state write is
    # the only one (two at once would share the temporary file)
    with pytest.raises(OSError, match="No space left"):
        state.close()
    assert state._thread is not None and not state._thread.is_alive()


def test_a_writer_that_dies_fails_the_waiting_writes_instead_of_hanging(
    state_file: tuple[KontextMock, StateFile], monkeypatch: pytest.MonkeyPatch,
) -> None:
    mock, state = state_file

    def broken(data: bytes) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(state, "_append", broken)
    mock.add_session(DEV_APP)
    with pytest.raises(NotSavedError, match="writer stopped"):
        state.commit()
    with pytest.raises(NotSavedError, match="writer stopped"):
        state.commit()  # and every later one, at once


def test_a_log_compacted_many_times_loads_what_was_acknowledged(tmp_path: Path) -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True)
    state = StateFile(tmp_path / "state.json", mock, compact_bytes=4096, flush_interval=0.05)
    state.open()
    state.start()
    try:
        made = []
        for _ in range(60):
            made.append(mock.add_session(DEV_APP)["id"])
            state.commit()
        assert state.stats.snapshots > 3  # compacted along the way
    finally:
        state.close()
    document, _ = read_state_file(tmp_path / "state.json")
    assert set(made) <= {s["id"] for s in document["sessions"]}
