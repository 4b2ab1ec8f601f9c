"""``kontext-contract --mcp``: the official MCP Python SDK at the target's gateway, and the
rules on what its session becomes. The mock passes every one, enforced; each broken
gateway (tests/broken_variants.py) fails the rule its bug breaks; reported, a
contradiction is drift, not a failure."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from kontext_mock import KontextMock
from kontext_mock.contracts import Options, Target, run_contract
from kontext_mock.contracts.cli import main
from kontext_mock.contracts.mcp_wire import answer_of, event_stream_messages
from kontext_mock.contracts.rules import registered

from .broken_variants import MCP_VARIANTS, McpTrafficNotActivity, Variant, WsgiApp
from .conftest import DEV_APP
from .serving import Switch, switched_server, without_control_plane

pytestmark = pytest.mark.slow  # whole kit runs with an MCP client

MCP_RULES = [r.name for r in registered("mcp")]
MCP_ASSUMPTIONS = sorted({a for r in registered("mcp") for a in r.assumes})


#: one server for the module: the app it serves is swapped per test
served = pytest.fixture(scope="module")(switched_server)


def serve(served: tuple[Switch, str], app: WsgiApp) -> str:
    switch, url = served
    switch.app = app
    return url


def kit(url: str, *extra: str) -> list[str]:
    return ["--base-url", url, "--token", "dev-token", "--seed", "3", "-q", "--mcp",
            "--layer", "mcp", *extra]


def test_the_mock_passes_every_mcp_rule_and_each_is_listed(
    served: tuple[Switch, str], capsys: pytest.CaptureFixture[str],
) -> None:
    mock = KontextMock(seed=7)
    url = serve(served, mock.app)
    assert main(kit(url)) == 0
    out = capsys.readouterr().out
    assert len(MCP_RULES) == 8
    for name in MCP_RULES:
        assert f"PASS  {name}" in out, out
    report = run_contract(Target(url, token="dev-token"),
                          Options(seed=3, mcp=True, layers=("mcp",)))
    assert report.ok, report.render()
    verdicts = {v.id: v.status for v in report.assumptions}
    assert {a: verdicts[a] for a in MCP_ASSUMPTIONS} == dict.fromkeys(MCP_ASSUMPTIONS, "confirmed")
    # the kit put the mock back: no session of its clients is left, connected or not
    with mock.store.lock:
        assert not [s for s in mock.store.sessions.values()
                    if (s.client_info or {}).get("name") == "kontext-contract"]


def test_without_mcp_the_layer_is_not_part_of_the_run(served: tuple[Switch, str]) -> None:
    mock = KontextMock(seed=7)
    url = serve(served, mock.app)
    report = run_contract(Target(url, token="dev-token"),
                          Options(seed=3, layers=("stateful",), state_machine_steps=2))
    assert not {r.name for r in report.results} & set(MCP_RULES)
    assert {v.id: v.status for v in report.assumptions}["mcp-session-record"] == "unobserved"
    assert not mock.state.gateway.links  # no MCP session was opened


@pytest.mark.parametrize("variant", MCP_VARIANTS, ids=[v.name for v in MCP_VARIANTS])
def test_the_kit_catches_the_broken_gateway(served: tuple[Switch, str], variant: Variant,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _, app = variant.build(seed=7)
    url = serve(served, app)
    assert main(kit(url)) == 1, variant.description
    out = capsys.readouterr().out
    assert f"FAIL  {variant.rule}" in out, out
    assert "dev-token" not in out


def test_reported_a_contradiction_is_drift_not_a_failure(
    served: tuple[Switch, str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    variant = next(v for v in MCP_VARIANTS if v.name == "mcp-traffic-not-activity")
    _, app = variant.build(seed=7)
    url = serve(served, app)
    drift = tmp_path / "drift.json"
    assert main(kit(url, "--assumptions", "report", "--drift-report", str(drift))) == 0
    out = capsys.readouterr().out
    assert "DRIFT mcp-traffic-moves-last-active" in out, out
    assert "contradicts mcp-session-record" in out
    document = json.loads(drift.read_text())
    status = {a["id"]: a["status"] for a in document["assumptions"]}
    assert status["mcp-session-record"] == "contradicted"
    assert status["mcp-delete-disconnects"] == "confirmed"
    evidence = next(a for a in document["assumptions"] if a["id"] == "mcp-session-record")
    assert "lastActiveAt" in evidence["evidence"][0]["message"]


def test_without_the_sdk_mcp_says_how_to_install_it(
    served: tuple[Switch, str], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = serve(served, KontextMock(seed=7).app)
    monkeypatch.setitem(sys.modules, "mcp", None)  # import mcp raises ImportError
    assert main(kit(url)) == 2
    assert "pip install 'kontext-mock[mcp]'" in capsys.readouterr().err


def test_the_mcp_layer_without_mcp_is_a_usage_error(
    served: tuple[Switch, str], capsys: pytest.CaptureFixture[str],
) -> None:
    mock = KontextMock(seed=7)
    url = serve(served, mock.app)
    assert main(["--base-url", url, "--token", "dev-token", "--layer", "mcp"]) == 2
    assert "--layer mcp needs --mcp" in capsys.readouterr().err
    assert not mock.state.gateway.links


def test_list_rules_names_the_mcp_layer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-rules"]) == 0
    out = capsys.readouterr().out
    assert "mcp:" in out
    for name in MCP_RULES:
        assert name in out


def test_against_anything_else_the_kit_exchanges_a_token_and_reports(
    served: tuple[Switch, str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    mock = KontextMock(seed=7)  # a running clock: the kit waits real time
    url = serve(served, without_control_plane(mock.app))
    drift = tmp_path / "drift.json"
    assert main(kit(url, "--application-id", DEV_APP, "--drift-report", str(drift))) == 0
    out = capsys.readouterr().out
    for name in MCP_RULES[:-1]:
        assert f"PASS  {name}" in out, out
    assert "SKIP  mcp-revoke-ends-session" in out and "read-only run" in out
    document = json.loads(drift.read_text())
    assert document["mode"] == "report"
    status = {a["id"]: a["status"] for a in document["assumptions"]}
    assert status["mcp-session-record"] == status["mcp-delete-disconnects"] == "confirmed"
    # the token exchange gives no refresh token, and the run was read-only
    assert status["mcp-token-expiry-follows-token"] == "unobserved"
    assert status["mcp-revoke-ends-tokens"] == "unobserved"
    opened = [s for s in mock.list_sessions(DEV_APP, status="all", limit=200)
              if s["clientInfo"]["name"] == "kontext-contract"]
    assert len(opened) == 1 and opened[0]["status"] == "disconnected"
    assert opened[0]["userAgent"].startswith("kontext-contract/")


def test_against_anything_else_a_broken_gateway_is_drift(
    served: tuple[Switch, str], capsys: pytest.CaptureFixture[str],
) -> None:
    mock = McpTrafficNotActivity(seed=7)
    url = serve(served, without_control_plane(mock.app))
    given = mock.oauth.gateway_token(DEV_APP, resource=f"{url}/mcp")["access_token"]
    assert main(kit(url, "--application-id", DEV_APP, "--mcp-token", given)) == 0
    out = capsys.readouterr().out
    assert "DRIFT mcp-traffic-moves-last-active" in out, out
    assert "assumptions (reported as drift)" in out and "1 contradicted (mcp-session-record)" in out
    assert given not in out


def initialize_answered_as_a_stream(app: WsgiApp) -> WsgiApp:
    """The gateway answers an ``initialize`` within a session as an event stream (as a
    Streamable HTTP server may), a notification before the JSON-RPC error."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "POST" or not environ.get("HTTP_MCP_SESSION_ID"):
            return app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        if b'"initialize"' not in body:
            return app(environ, start_response)
        answered: list[Any] = []
        chunks = b"".join(app(environ, lambda status, headers, *_: answered.append(status)))
        note = json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                           "params": {"level": "info", "data": "x"}})
        stream = (f": comment\r\nevent: message\r\ndata: {note}\r\n\r\n"
                  f"event: message\r\ndata:{chunks.decode()}\r\n\r\n").encode()
        start_response(answered[0], [("Content-Type", "text/event-stream"),
                                     ("Content-Length", str(len(stream)))])
        return [stream]

    return wrapped


def test_initialize_once_reads_a_refusal_sent_as_an_event_stream(
    served: tuple[Switch, str], capsys: pytest.CaptureFixture[str],
) -> None:
    mock = KontextMock(seed=7)
    url = serve(served, initialize_answered_as_a_stream(mock.app))
    assert main(kit(url)) == 0
    assert "PASS  mcp-initialize-once" in capsys.readouterr().out


def test_the_answer_of_a_request_is_read_from_json_or_an_event_stream() -> None:
    answer = {"jsonrpc": "2.0", "id": "a", "error": {"code": -32600, "message": "no"}}
    raw = json.dumps(answer).encode()
    assert answer_of("application/json; charset=utf-8", raw, "a") == answer
    request = {"jsonrpc": "2.0", "id": "a", "method": "ping"}  # the server's own, same id
    stream = (b": hi\n\nevent: message\nid: 1\ndata: " + json.dumps(request).encode()
              + b"\n\ndata: {\"jsonrpc\": \"2.0\",\r\ndata: \"id\": \"a\", \"error\": "
              b"{\"code\": -32600, \"message\": \"no\"}}\r\rdata: not json\n\n")
    assert event_stream_messages(stream) == [request, answer]
    assert answer_of("text/event-stream", stream, "a") == answer
    assert answer_of("text/event-stream", stream, "b") is None
    assert answer_of("text/plain", raw, "a") is None
