"""MCP clients nobody here wrote, against the mock's gateway over HTTP: the official
TypeScript SDK (through tests/mcp_clients/ts_client.mjs, a line-driven harness) with a
bearer token and with its own OAuth support, and MCP Inspector's CLI. Both are pinned in
tests/mcp_clients/package-lock.json; the fixture installs them (``npm ci``) when missing.
Every answer the mock sends them that is not a stream is held to the spec."""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.datastructures import Headers

from kontext_mock import KontextMock
from kontext_mock.http.serve import RunningServer, start

from .conftest import DEV_APP, check_response

pytestmark = pytest.mark.slow  # Node.js clients: the TypeScript SDK and MCP Inspector

CLIENTS = Path(__file__).resolve().parent / "mcp_clients"
# Guards only: each step is a local round trip; npm ci downloads.
STEP_GUARD = 60.0
INSTALL_GUARD = 600.0


@pytest.fixture(scope="session")
def node_clients(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/mcp_clients with its pinned packages installed (``npm ci`` once)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tests/test_mcp_clients.py needs Node.js 18+ and npm (then "
                        "npm ci --prefix tests/mcp_clients)", pytrace=False)
        pytest.skip("Node.js and npm are not installed (CI=true makes this a failure)")
    # (the base temporary directory's parent is shared by every xdist worker)
    with (tmp_path_factory.getbasetemp().parent / "mcp-clients.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one npm ci for every xdist worker
        if not (CLIENTS / "node_modules").is_dir():
            done = subprocess.run([npm, "ci", "--prefix", str(CLIENTS)], capture_output=True,
                                  text=True, timeout=INSTALL_GUARD)
            assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return CLIENTS


class Checked:
    """The mock's WSGI app, every answer but a stream held to the spec; what fails is
    kept (a failure raised here would reach the client as a 500, not the test)."""

    def __init__(self, mock: KontextMock) -> None:
        self.mock = mock
        self.problems: list[str] = []

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"], seen["headers"] = status, headers
            return start_response(status, headers, exc_info)

        body = self.mock.app(environ, capture)
        headers = Headers(seen.get("headers", []))
        kind = headers.get("Content-Type")
        if kind is not None and kind.startswith("text/event-stream"):
            return body
        chunks = list(body)
        close = getattr(body, "close", None)
        if close is not None:
            close()
        try:
            check_response(self.mock.app, environ["REQUEST_METHOD"], environ["PATH_INFO"],
                           int(seen["status"][:3]), headers, b"".join(chunks), kind)
        except Exception as exc:  # kept for the test to assert on
            self.problems.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}: {exc}")
        return chunks


@pytest.fixture
def gateway(mock: KontextMock) -> Iterator[tuple[RunningServer, Checked]]:
    checked = Checked(mock)
    server = start(checked, "127.0.0.1", 0)
    yield server, checked
    server.stop()
    assert checked.problems == []


class TsClient:
    """The TypeScript SDK's harness: one command a line in, one JSON answer a line out."""

    def __init__(self, clients: Path, url: str, *mode: str, log: Path) -> None:
        self.stderr: IO[str] = log.open("w")
        self.process = subprocess.Popen(
            ["node", str(clients / "ts_client.mjs"), url, *mode], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.log = log

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def __call__(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        try:
            line = self.lines.get(timeout=STEP_GUARD)
        except queue.Empty:
            raise AssertionError(f"no answer to {command!r}; stderr:\n"
                                 f"{self.log.read_text()}") from None
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            try:
                self.process.wait(STEP_GUARD)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()


@pytest.fixture
def ts_clients(node_clients: Path, tmp_path: Path) -> Iterator[Callable[..., TsClient]]:
    started: list[TsClient] = []

    def launch(url: str, *mode: str) -> TsClient:
        client = TsClient(node_clients, url, *mode, log=tmp_path / f"ts-{len(started)}.log")
        started.append(client)
        return client

    yield launch
    for client in started:
        client.stop()


def token_for(mock: KontextMock, server: RunningServer) -> str:
    return str(mock.oauth.gateway_token(DEV_APP, resource=f"{server.url}/mcp")["access_token"])


def record(mock: KontextMock, session_id: str) -> dict[str, Any]:
    return mock.get_session(DEV_APP, session_id)


def test_a_ts_sdk_client_is_listed_moves_and_closes(
    mock: KontextMock, gateway: tuple[RunningServer, Checked],
    ts_clients: Callable[..., TsClient],
) -> None:
    server, _ = gateway
    client = ts_clients(f"{server.url}/mcp", "--token", token_for(mock, server))
    connected = client("connect")
    assert connected["ok"], connected
    assert connected["protocolVersion"] == "2025-11-25"
    session = record(mock, connected["sessionId"])  # the Mcp-Session-Id is the record's id
    assert session["clientInfo"] == {"name": "ts-sdk-test", "version": "1.2.3"}
    # The SDK sets no User-Agent of its own: Node's fetch sends "node".
    assert session["userAgent"] == "node"
    assert session["agentId"] == DEV_APP and session["status"] == "active"
    assert session["lastActiveAt"] == "2026-01-01T12:00:00.000Z"
    assert session["tokenExpiresAt"] == "2026-01-01T13:00:00.000Z"
    listed = requests.get(f"{server.url}/api/v1/applications/{DEV_APP}/sessions",
                          headers={"Authorization": "Bearer dev-token"}, timeout=STEP_GUARD)
    assert connected["sessionId"] in {s["id"] for s in listed.json()["items"]}

    mock.advance("3m")
    assert client("ping")["ok"]
    assert record(mock, connected["sessionId"])["lastActiveAt"] == "2026-01-01T12:03:00.000Z"
    assert client("tools") == {"ok": True, "result": {"tools": []}}

    assert client("close")["ok"]
    ended = record(mock, connected["sessionId"])
    assert ended["status"] == "disconnected"
    assert ended["disconnectedAt"] == "2026-01-01T12:03:00.000Z"


def test_revoke_all_ends_a_connected_ts_sdk_client(
    mock: KontextMock, gateway: tuple[RunningServer, Checked],
    ts_clients: Callable[..., TsClient],
) -> None:
    server, _ = gateway
    first = ts_clients(f"{server.url}/mcp", "--token", token_for(mock, server))
    second = ts_clients(f"{server.url}/mcp", "--token", token_for(mock, server))
    one, two = first("connect"), second("connect")
    assert one["ok"] and two["ok"] and one["sessionId"] != two["sessionId"]
    assert first("close")["ok"]
    revoked = requests.delete(f"{server.url}/api/v1/applications/{DEV_APP}/sessions",
                              headers={"Authorization": "Bearer dev-token"}, timeout=STEP_GUARD)
    assert revoked.json()["disconnectedCount"] >= 1
    assert record(mock, two["sessionId"])["status"] == "disconnected"
    after = second("ping")
    assert not after["ok"], after
    # the first client had closed before: its session's end is its own DELETE's
    assert record(mock, one["sessionId"])["disconnectedAt"] == "2026-01-01T12:00:00.000Z"


def test_the_ts_sdk_oauth_support_discovers_authorizes_and_connects(
    mock: KontextMock, gateway: tuple[RunningServer, Checked],
    ts_clients: Callable[..., TsClient],
) -> None:
    server, _ = gateway
    client = ts_clients(f"{server.url}/mcp", "--oauth", f"app_{DEV_APP}")
    connected = client("connect")
    assert connected["ok"], connected
    # the 401 sent it to discovery, one authorization, then one token
    assert connected["oauth"] == ["authorized", "tokens"]
    asked = parse_qs(urlsplit(connected["authorization"]).query)
    assert urlsplit(connected["authorization"]).path == "/oauth2/auth"
    assert asked["client_id"] == [f"app_{DEV_APP}"]
    assert asked["code_challenge_method"] == ["S256"] and asked["code_challenge"][0]
    assert asked["scope"] == ["mcp:invoke"]
    assert asked["resource"] == [f"{server.url}/mcp"]
    session = record(mock, connected["sessionId"])
    assert session["agentId"] == DEV_APP
    assert session["clientInfo"] == {"name": "ts-sdk-test", "version": "1.2.3"}
    assert session["tokenExpiresAt"] == "2026-01-01T13:00:00.000Z"
    assert client("ping")["ok"]
    assert client("close")["ok"]
    assert record(mock, connected["sessionId"])["status"] == "disconnected"


def test_mcp_inspector_cli_lists_the_scenario_tools_and_its_session_appears(
    mock: KontextMock, gateway: tuple[RunningServer, Checked], node_clients: Path,
    tmp_path: Path,
) -> None:
    mock.load_scenario_text(
        "mcp:\n  tools:\n"
        "    - name: search\n      description: Find documents\n      text: found 3\n"
        "    - name: fetch\n      inputSchema: {type: object, properties: {id: {type: string}}}\n")
    server, _ = gateway
    before = {s["id"] for s in mock.list_sessions(DEV_APP, status="all", limit=200)}
    # Its catalog and storage go to a scratch home, not the user's.
    env = {**os.environ, "HOME": str(tmp_path), "MCP_CATALOG_PATH": str(tmp_path / "mcp.json")}
    done = subprocess.run(
        ["npx", "--prefix", str(node_clients), "mcp-inspector", "--cli", f"{server.url}/mcp",
         "--transport", "http", "--method", "tools/list",
         "--header", f"Authorization: Bearer {token_for(mock, server)}"],
        capture_output=True, text=True, timeout=STEP_GUARD, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"tools": [
        {"name": "search", "description": "Find documents", "inputSchema": {"type": "object"}},
        {"name": "fetch", "inputSchema": {"type": "object",
                                          "properties": {"id": {"type": "string"}}}},
    ]}
    new = [s for s in mock.list_sessions(DEV_APP, status="all", limit=200)
           if s["id"] not in before]
    assert len(new) == 1
    assert new[0]["clientInfo"] == {"name": "inspector-cli", "version": "2.12.0"}
    assert new[0]["agentId"] == DEV_APP


def test_the_ts_sdk_sends_a_batch_in_a_2025_03_26_session_and_reads_the_array(
    mock: KontextMock, gateway: tuple[RunningServer, Checked],
    ts_clients: Callable[..., TsClient],
) -> None:
    server, _ = gateway
    client = ts_clients(f"{server.url}/mcp", "--token", token_for(mock, server))
    done = client("batch0326")
    assert done["ok"], done
    replies = done["received"]
    assert replies[0]["result"]["protocolVersion"] == "2025-03-26"
    # the batch's two requests, answered in one array the SDK parsed message by message;
    # the batch of one notification was accepted (202) with nothing to read
    assert replies[1:] == [{"jsonrpc": "2.0", "id": 2, "result": {}},
                           {"jsonrpc": "2.0", "id": 3, "result": {"tools": []}}]
    assert record(mock, done["sessionId"])["status"] == "disconnected"


def test_a_ts_sdk_client_that_initializes_with_a_live_session_id_is_refused(
    mock: KontextMock, gateway: tuple[RunningServer, Checked],
    ts_clients: Callable[..., TsClient],
) -> None:
    server, _ = gateway
    client = ts_clients(f"{server.url}/mcp", "--token", token_for(mock, server))
    live = client("connect")["sessionId"]
    sessions = len(mock.state.gateway.links)
    refused = client(f"rejoin {live}")
    assert not refused["ok"] and refused["code"] == 400
    assert "Server already initialized" in refused["error"]
    assert len(mock.state.gateway.links) == sessions
    assert client("ping")["ok"]  # the live session is as it was
