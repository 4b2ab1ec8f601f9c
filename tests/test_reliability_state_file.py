"""``serve --state-file``: the state survives restarts, SIGTERM and SIGKILL.

The kill test runs the real CLI, hammers it with writes from several threads and kills
it with SIGKILL at a random moment, ``KONTEXT_KILL_ROUNDS`` times (default 20; the long
run uses 200). After every kill the file must be a complete state the mock loads, and
every write acknowledged longer ago than the save window must be in it.
"""

from __future__ import annotations

import os
import random
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from mock_server import KontextMock
from mock_server.persistence import StateFile, StateFileError, read_document, write_atomic

from .conftest import AUTH, DEV_APP, NOW
from .serving import serve_process

ROUNDS = int(os.environ.get("KONTEXT_KILL_ROUNDS", "20"))
SAVE_DELAY = 0.05
# Acknowledged writes older than this at the kill must be on disk: the save delay plus
# two saves (one in progress, the next), with room for a loaded CI machine. A save's time
# grows with the state, so the window adds twice what loading the file takes (an import
# costs at least what an export does).
LOSS_WINDOW = SAVE_DELAY + 0.6
AGENT_BODY = {"tokenIdentifier": "t", "authenticatedUserId": "u", "clientSessionId": "c"}
SERVE = ["--seed", "5", "--now", NOW, "--frozen", "--sessions", "5", "--applications", "1",
         "--state-save-delay", f"{SAVE_DELAY}s"]


def serving(state_file: Path, *args: str) -> Any:
    """``kontext-mock serve --state-file`` on a free port, killed with SIGKILL at the end."""
    return serve_process("--state-file", str(state_file), *SERVE, *args,
                         until="serving on", stop=signal.SIGKILL)


def loadable(path: Path) -> dict[str, object]:
    """The file's document, after proving a fresh mock imports it."""
    doc = read_document(path)
    KontextMock().import_state(doc)
    return doc


def session_ids(doc: dict[str, object]) -> dict[str, str]:
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
    proc = subprocess.run([sys.executable, "-m", "mock_server.cli", "serve", "--port", "0",
                           "--state-file", str(path)], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    assert str(path) in proc.stderr and "Traceback" not in proc.stderr


# -- SIGTERM and restart -----------------------------------------------------------------------


def test_sigterm_saves_at_once_and_a_restart_restores_exactly(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    slow = ("--state-save-delay", "60s", "--state-interval", "60s")  # only the exit save counts
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
    # nothing changed in between: the restarted mock saved the very same document
    assert path.read_bytes() == saved


# -- SIGKILL under heavy writes ----------------------------------------------------------------


@dataclass
class Writes:
    """What the writers had acknowledged, with the time of each acknowledgement."""

    created: list[tuple[float, str]] = field(default_factory=list)
    disconnected: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def hammer(url: str, writes: Writes, stop: threading.Event, seed: int) -> None:
    """Create, heartbeat and disconnect agent sessions until the server dies (bounded)."""
    rng = random.Random(seed)
    mine: list[str] = []
    with requests.Session() as http:
        for _ in range(5000):
            if stop.is_set():
                return
            try:
                if mine and rng.random() < 0.15:
                    sid = mine.pop(rng.randrange(len(mine)))
                    r = http.post(f"{url}/api/v1/agent-sessions/{sid}/disconnect", headers=AUTH,
                                  timeout=5)
                    if r.status_code == 200:
                        with writes.lock:
                            writes.disconnected.append((time.monotonic(), sid))
                elif mine and rng.random() < 0.3:
                    http.post(f"{url}/api/v1/agent-sessions/{rng.choice(mine)}/heartbeat",
                              headers=AUTH, timeout=5)
                else:
                    r = http.post(f"{url}/api/v1/agent-sessions", json=AGENT_BODY, headers=AUTH,
                                  timeout=5)
                    if r.status_code == 201:
                        sid = r.json()["sessionId"]
                        mine.append(sid)
                        with writes.lock:
                            writes.created.append((time.monotonic(), sid))
                    else:
                        writes.errors.append(f"create answered {r.status_code}")
            except requests.RequestException:
                return  # the server died under us: expected


def test_sigkill_during_heavy_writes_never_corrupts_nor_loses_acknowledged_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    rng = random.Random(20261201)
    total_checked = max_lag = 0.0
    lost_late = mid_save = 0
    widest = 0.0
    for round_no in range(ROUNDS):
        writes, stop = Writes(), threading.Event()
        with serving(path) as (url, head, proc):
            assert ("loaded from" if round_no else "created") in head, head
            threads = [threading.Thread(target=hammer, args=(url, writes, stop, round_no * 10 + i))
                       for i in range(4)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.2, 0.6))
            killed_at = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            stop.set()
            for t in threads:
                t.join(10)
        assert not writes.errors, writes.errors[:5]
        # a temporary file left behind: the kill came in the middle of a save
        mid_save += (tmp_path / ".state.json.tmp").exists()
        load_started = time.perf_counter()
        doc = loadable(path)  # complete and importable, never half a file
        window = LOSS_WINDOW + 4 * (time.perf_counter() - load_started)
        widest = max(widest, window)
        stored = session_ids(doc)
        old_enough = killed_at - window
        for acked, sid in writes.created:
            if sid not in stored:
                assert acked > old_enough, (
                    f"round {round_no}: created {killed_at - acked:.3f}s before the kill, lost")
                lost_late += 1
                max_lag = max(max_lag, killed_at - acked)
            else:
                total_checked += 1
        for acked, sid in writes.disconnected:
            if acked <= old_enough:
                assert stored.get(sid) == "disconnected", f"round {round_no}: disconnect lost"
        assert writes.created, "the writers got nothing done before the kill"
    print(f"\nkill test: {ROUNDS} SIGKILLs ({mid_save} in the middle of a save), 0 corrupt files,"
          f" {int(total_checked)} acknowledged"
          f" creates found on disk, {lost_late} not yet saved (window up to {widest:.2f}s)"
          f" (oldest lost: {max_lag:.3f}s before the kill)")
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
    assert sorted(p.name for p in tmp_path.iterdir()) == [".state.json.lock", "state.json"]
    assert orjson.loads(path.read_bytes())["format"].startswith("kontext-mock-state/")
