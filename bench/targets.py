"""Starting, probing and stopping the benchmark's targets, each in its own process."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"
PYTHON = sys.executable
PRISM = WORK / "node_modules" / ".bin" / "prism"
DEV_APP = "550e8400-e29b-41d4-a716-446655440000"
DEV_SESSION = "44444444-4444-4444-8444-444444444444"
PROBE = f"/api/v1/applications/{DEV_APP}/sessions/{DEV_SESSION}"


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str = PROBE, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET with the dev token: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": "Bearer dev-token"})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def request(port: int, method: str, path: str, body: str = "", content_type: str = "",
            auth: bool = True) -> tuple[int, bytes]:
    """One request: (status, body)."""
    headers = {"Authorization": "Bearer dev-token"} if auth else {}
    if content_type:
        headers["Content-Type"] = content_type
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


@dataclass
class Running:
    """A target process and the port it answers on."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    started: float
    ready_after: float = 0.0  # seconds from spawn to the first 200

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (and its children) so far."""
        return tree_cpu_seconds(self.process.pid)

    def rss_mb(self) -> float:
        """Resident memory of the process (and its children), in MiB."""
        return sum(_rss_kb(pid) for pid in [self.process.pid, *_children(self.process.pid)]) / 1024

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s); the process group takes node's children with it."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def spawn(name: str, cmd: list[str], port: int, *, log: Path, timeout: float = 300.0,
          poll: float = 0.002, probe: str = PROBE, env: dict[str, str] | None = None) -> Running:
    """Start ``cmd`` and wait for the first 200 on ``probe``; time it from the spawn."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("wb")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    started = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                               start_new_session=True)
    running = Running(name, process, port, started)
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
        try:
            status, _ = get(port, probe, timeout=2)
        except OSError:
            time.sleep(poll)
            continue
        if status == 200:
            running.ready_after = time.perf_counter() - started
            return running
        time.sleep(poll)
    running.stop()
    raise RuntimeError(f"{name} gave no 200 within {timeout} s; see {log}")


def mock_cmd(port: int, serve_args: list[str], fresh_apps: int = 0,
             fresh_ids: Path | None = None) -> list[str]:
    """The mock: ``kontext-mock serve`` itself, or the launcher when fresh apps are wanted."""
    if not fresh_apps:
        return [PYTHON, "-m", "kontext_mock.cli", "serve", "--port", str(port), *serve_args]
    return [PYTHON, str(HERE / "mock_target.py"), "--fresh-apps", str(fresh_apps),
            "--fresh-ids", str(fresh_ids), "--", "--port", str(port), *serve_args]


def cli_cmd(port: int, serve_args: list[str]) -> list[str]:
    """``kontext-mock serve`` through its console script, as a user starts it."""
    script = Path(PYTHON).parent / "kontext-mock"
    return [str(script), "serve", "--port", str(port), *serve_args]


def ceiling_cmd(port: int, bodies: Path) -> list[str]:
    """The bare Flask app on the same server."""
    return [PYTHON, str(HERE / "ceiling.py"), "--port", str(port), "--bodies", str(bodies)]


def prism_cmd(port: int, dynamic: bool, verbosity: str) -> list[str]:
    """Prism 5 mocking openapi.yaml."""
    cmd = [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), "-v", verbosity]
    if dynamic:
        cmd.append("-d")
    return [*cmd, str(ROOT / "openapi.yaml")]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far."""
    return sum(_cpu(p) for p in [pid, *_children(pid)])


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    kids = [int(k) for k in found]
    return kids + [g for k in kids for g in _children(k)]
