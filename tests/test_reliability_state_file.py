"""``serve --state-file``: every acknowledged write survives SIGTERM and SIGKILL.

The kill test runs the real CLI, hammers it with creates, heartbeats, disconnects and
revoke-alls from several threads, and kills it with SIGKILL at a random moment,
``KONTEXT_KILL_ROUNDS`` times (default 20; the long run uses 200). After every kill the
file must load, and every write the mock acknowledged before the kill must be in it:
no window, no exceptions.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from kontext_mock import KontextMock
from kontext_mock.statefile import StateFile, StateFileError, read_state_file, write_atomic

from .conftest import AUTH, DEV_APP, NOW
from .serving import serve_process

ROUNDS = int(os.environ.get("KONTEXT_KILL_ROUNDS", "20"))
AGENT_BODY = {"tokenIdentifier": "t", "authenticatedUserId": "u", "clientSessionId": "c"}
SERVE = ["--seed", "5", "--now", NOW, "--frozen", "--sessions", "5", "--applications", "1"]


def serving(state_file: Path, *args: str) -> Any:
    """``kontext-mock serve --state-file`` on a free port, killed with SIGKILL at the end."""
    return serve_process("--state-file", str(state_file), *SERVE, *args,
                         until="serving on", stop=signal.SIGKILL)


def loadable(path: Path) -> dict[str, Any]:
    """The state the files hold, after proving a fresh mock imports it."""
    doc, _ = read_state_file(path)
    KontextMock().import_state(doc)
    return doc


def session_ids(doc: dict[str, Any]) -> dict[str, str]:
    sessions = doc["sessions"]
    assert isinstance(sessions, list)
    return {s["id"]: s["status"] for s in sessions}


# -- the atomic write and the file ---------------------------------------------------------


def test_write_atomic_replaces_the_file_whole_and_private(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_atomic(target, b"first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # it holds secrets and tokens
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_stale_temporary_file_from_a_killed_save_is_harmless(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    (tmp_path / ".state.json.tmp").write_bytes(b'{"half a sa')
    write_atomic(target, b"{}")
    assert target.read_bytes() == b"{}"


def test_save_then_load_gives_an_identical_mock(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = KontextMock(seed=3, now=NOW, frozen=True)
    first.revoke_all(DEV_APP)
    first.advance("PT7M")
    state = StateFile(path, first)
    assert state.open() is False  # created
    state.close()
    assert path.with_name("state.json.log").exists() is False  # nothing logged yet
    second = KontextMock(seed=99)
    again = StateFile(path, second)
    assert again.open() is True  # loaded
    again.close()
    assert second.export_state() == first.export_state()
    assert second.now() == first.now() and second.clock.frozen


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"format": "something else"}',
                                     b"\xff\xfe", b'{"format": "kontext-mock-state/1"}'])
def test_a_corrupt_or_foreign_file_is_refused_and_left_untouched(tmp_path: Path,
                                                                 content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateFileError, match=re.escape(str(path))):
        StateFile(path, KontextMock()).open()
    assert path.read_bytes() == content


def test_a_second_server_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = StateFile(path, KontextMock())
    first.open()
    try:
        with pytest.raises(StateFileError, match="another kontext-mock"):
            StateFile(path, KontextMock()).open()
    finally:
        first.close()
    StateFile(path, KontextMock()).open()  # free again once the first is closed


def test_the_cli_refuses_a_corrupt_file_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"format": "kontext-mock-state/1", "clock": {}}')
    proc = subprocess.run([sys.executable, "-m", "kontext_mock.cli", "serve", "--port", "0",
                           "--state-file", str(path)], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    assert str(path) in proc.stderr and "Traceback" not in proc.stderr


# -- the log ------------------------------------------------------------------------------------


@contextlib.contextmanager
def writing(path: Path) -> Iterator[tuple[KontextMock, StateFile]]:
    """A frozen mock whose state file is open and its writer started (closed after)."""
    mock = KontextMock(seed=3, now=NOW, frozen=True)
    state = StateFile(path, mock)
    state.open()
    state.start()
    try:
        yield mock, state
    finally:
        state.close()


def test_a_write_is_on_disk_when_commit_returns(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with writing(path) as (mock, state):
        made = mock.add_session(state="active")
        state.commit()
        doc, replayed = read_state_file(path)  # what a restart would read, right now
        assert session_ids(doc)[made["id"]] == "active" and replayed >= 1
        mock.revoke_all(DEV_APP)
        state.commit()
        assert session_ids(read_state_file(path)[0])[made["id"]] == "disconnected"
    assert path.with_name("state.json.log").read_bytes() == b""  # folded into the whole state


def test_a_torn_last_line_of_the_log_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    log = path.with_name("state.json.log")
    with writing(path) as (mock, state):
        first = mock.add_session(state="active")["id"]
        state.commit()
        second = mock.add_session(state="active")["id"]
        state.commit()
        # the files as they are now (the close folds the log into the whole state)
        snapshot, whole = path.read_bytes(), log.read_bytes()
    # what SIGKILL in the middle of the last append leaves: the line cut short
    path.write_bytes(snapshot)
    log.write_bytes(whole[: len(whole) - 7])
    ids = session_ids(loadable(path))
    assert first in ids and second not in ids


def test_every_line_of_the_log_carries_its_checksum(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with writing(path) as (mock, state):
        mock.add_session()
        state.commit()
        lines = path.with_name("state.json.log").read_bytes().splitlines()
        assert lines
        for line in lines:
            crc, _, data = line.partition(b" ")
            assert int(crc, 16) == zlib.crc32(data)


# -- SIGTERM and restart -----------------------------------------------------------------------


def test_sigterm_saves_at_once_and_a_restart_restores_exactly(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    slow = ("--state-interval", "60s")  # nothing is written but what requests ask for
    with serving(path, *slow) as (url, head, proc):
        assert "state file created" in head
        created = requests.post(f"{url}/api/v1/agent-sessions", json=AGENT_BODY, headers=AUTH,
                                timeout=5).json()["sessionId"]
        revoked = requests.delete(f"{url}/api/v1/applications/{DEV_APP}/sessions", headers=AUTH,
                                  timeout=5).json()["disconnectedCount"]
        assert revoked >= 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    saved = path.read_bytes()
    doc = loadable(path)
    assert session_ids(doc)[created] == "disconnected"
    with serving(path, *slow) as (url, head, proc):
        assert "state file loaded from" in head
        session = requests.get(f"{url}/api/v1/applications/{DEV_APP}/sessions/{created}",
                               headers=AUTH, timeout=5).json()["session"]
        assert session["status"] == "disconnected"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    # nothing changed in between: the restarted mock saved the very same state
    assert orjson.loads(path.read_bytes()) == {**orjson.loads(saved),
                                               "logSeq": orjson.loads(path.read_bytes())["logSeq"]}


# -- SIGKILL under heavy writes ----------------------------------------------------------------


@dataclass
class Writes:
    """What the writers had acknowledged before the kill."""

    created: list[str] = field(default_factory=list)
    disconnected: list[str] = field(default_factory=list)
    #: for each acknowledged revoke-all: the sessions acknowledged as created before it was sent
    revoked: list[list[str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def hammer(url: str, writes: Writes, stop: threading.Event, seed: int) -> None:
    """Create, heartbeat, disconnect and revoke until the server dies (bounded)."""
    rng = random.Random(seed)
    mine: list[str] = []
    with requests.Session() as http:
        for _ in range(5000):
            if stop.is_set():
                return
            try:
                roll = rng.random()
                if mine and roll < 0.15:
                    sid = mine.pop(rng.randrange(len(mine)))
                    r = http.post(f"{url}/api/v1/agent-sessions/{sid}/disconnect", headers=AUTH,
                                  timeout=10)
                    if r.status_code == 200:
                        with writes.lock:
                            writes.disconnected.append(sid)
                elif roll < 0.2:
                    with writes.lock:
                        before = list(writes.created)
                    r = http.delete(f"{url}/api/v1/applications/{DEV_APP}/sessions", headers=AUTH,
                                    timeout=10)
                    if r.status_code == 200:
                        with writes.lock:
                            writes.revoked.append(before)
                elif mine and roll < 0.4:
                    http.post(f"{url}/api/v1/agent-sessions/{rng.choice(mine)}/heartbeat",
                              headers=AUTH, timeout=10)
                else:
                    r = http.post(f"{url}/api/v1/agent-sessions", json=AGENT_BODY, headers=AUTH,
                                  timeout=10)
                    if r.status_code == 201:
                        sid = r.json()["sessionId"]
                        mine.append(sid)
                        with writes.lock:
                            writes.created.append(sid)
                    else:
                        writes.errors.append(f"create answered {r.status_code}")
            except requests.RequestException:
                return  # the server died under us: expected


@pytest.mark.slow
def test_sigkill_during_heavy_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    rng = random.Random(20261201)
    found = {"created": 0, "disconnected": 0, "revoked": 0}
    for round_no in range(ROUNDS):
        writes, stop = Writes(), threading.Event()
        with serving(path) as (url, head, proc):
            assert ("loaded from" if round_no else "created") in head, head
            threads = [threading.Thread(target=hammer, args=(url, writes, stop, round_no * 10 + i))
                       for i in range(4)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.2, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            stop.set()
            for t in threads:
                t.join(10)
        assert not writes.errors, writes.errors[:5]
        stored = session_ids(loadable(path))  # complete and importable, never half a file
        for sid in writes.created:
            assert sid in stored, f"round {round_no}: an acknowledged create is lost"
        for sid in writes.disconnected:
            assert stored[sid] == "disconnected", f"round {round_no}: a disconnect is lost"
        for before in writes.revoked:
            undone = [sid for sid in before if stored[sid] != "disconnected"]
            assert not undone, f"round {round_no}: a revoke-all is undone for {undone[:3]}"
        assert writes.created, "the writers got nothing done before the kill"
        found["created"] += len(writes.created)
        found["disconnected"] += len(writes.disconnected)
        found["revoked"] += len(writes.revoked)
    print(f"\nkill test: {ROUNDS} SIGKILLs, every file loaded; found after restart every"
          f" acknowledged write: {found['created']} creates, {found['disconnected']} disconnects,"
          f" {found['revoked']} revoke-alls")
    # the last file still serves
    with serving(path) as (url, head, _):
        assert "loaded from" in head
        assert requests.get(f"{url}/api/v1/applications/{DEV_APP}/sessions", headers=AUTH,
                            timeout=5).status_code == 200


def test_no_temporary_file_is_left_after_a_clean_stop(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with serving(path) as (url, _, proc):
        requests.post(f"{url}/api/v1/agent-sessions", json=AGENT_BODY, headers=AUTH, timeout=5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".state.json.lock", "state.json", "state.json.log"]
    assert path.with_name("state.json.log").read_bytes() == b""
    assert orjson.loads(path.read_bytes())["format"].startswith("kontext-mock-state/")
