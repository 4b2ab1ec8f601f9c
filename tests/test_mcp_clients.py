"""MCP clients nobody here wrote, against the gateway over HTTP: the official TypeScript SDK
(through ``tests/mcp_clients/ts_client.mjs``) and MCP Inspector's CLI, both pinned in
``tests/mcp_clients/package.json`` (``npm ci --prefix tests/mcp_clients``)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kontext_mock import KontextMock
from kontext_mock.http.serve import RunningServer, start

from .conftest import DEV_APP

CLIENTS = Path(__file__).resolve().parent / "mcp_clients"
TS_CLIENT = CLIENTS / "ts_client.mjs"
INSPECTOR = CLIENTS / "node_modules" / ".bin" / "mcp-inspector"


@pytest.fixture
def served(mock: KontextMock) -> Iterator[RunningServer]:
    server = start(mock.app, "127.0.0.1", 0)
    yield server
    server.stop()


class TsClient:
    """The TypeScript SDK's client, one command a line (see ts_client.mjs)."""

    def __init__(self, url: str, mode: str, arg: str) -> None:
        self.proc = subprocess.Popen(["node", str(TS_CLIENT), url, mode, arg],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def quit(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(30)


def ts_session(mock: KontextMock, served: RunningServer, mode: str, arg: str
               ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    client = TsClient(f"{served.url}/mcp", mode, arg)
    try:
        connected = client("connect")
        assert connected["ok"], connected
        mock.advance("1m")
        assert client("ping")["ok"]
        seen = mock.get_session(DEV_APP, connected["sessionId"])
        assert client("close")["ok"]
    finally:
        client.quit()
    return connected, seen, mock.get_session(DEV_APP, connected["sessionId"])


def test_the_typescript_sdk_with_a_token_is_a_session(mock: KontextMock,
                                                      served: RunningServer) -> None:
    token = mock.oauth.gateway_token(DEV_APP, resource=f"{served.url}/mcp")["access_token"]
    connected, seen, ended = ts_session(mock, served, "--token", token)
    assert connected["protocolVersion"] == "2025-11-25"
    assert seen["clientInfo"] == {"name": "ts-sdk-test", "version": "1.2.3"}
    assert seen["status"] == "active" and seen["lastActiveAt"] == "2026-01-01T12:01:00.000Z"
    assert ended["status"] == "disconnected"  # its terminateSession sent DELETE


def test_the_typescript_sdk_finds_and_runs_the_oauth_flow_itself(mock: KontextMock,
                                                                  served: RunningServer) -> None:
    connected, seen, _ = ts_session(mock, served, "--oauth", f"app_{DEV_APP}")
    assert connected["oauth"] == ["authorized", "tokens"]
    assert seen["agentId"] == DEV_APP and seen["clientInfo"]["name"] == "ts-sdk-test"


def test_mcp_inspector_calls_a_tool_of_the_scenario(mock: KontextMock,
                                                    served: RunningServer) -> None:
    mock.load_scenario_text("mcp:\n  tools:\n    - {name: search, description: Find, "
                            "text: found 3}\n")
    token = mock.oauth.gateway_token(DEV_APP, resource=f"{served.url}/mcp")["access_token"]
    ran = subprocess.run(
        [str(INSPECTOR), "--cli", f"{served.url}/mcp", "--transport", "http",
         "--method", "tools/call", "--tool-name", "search",
         "--header", f"Authorization: Bearer {token}"],
        capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["content"] == [{"type": "text", "text": "found 3"}]
    [session] = [s for s in mock.list_sessions(DEV_APP)
                 if (s["clientInfo"] or {}).get("name") == "inspector-cli"]
    assert session["derivedStatus"] == "active"
