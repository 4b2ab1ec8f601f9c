"""The MCP gateway's edges probed side by side with the official MCP Python SDK's
Streamable HTTP server (``tests/mcp_peer_app.py``, stateful, under uvicorn): the same raw
HTTP requests to both, and the mock never answers worse than the peer or the
specification (a 5xx, a status the MCP transport or JSON-RPC does not allow, a JSON-RPC
refusal turned into another shape). Where the mock answers otherwise on purpose, its
probe says why; ``bench/mcp_probes.py`` writes the table of ``docs/mcp.md``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from kontext_mock import KontextMock
from kontext_mock.http.serve import start

from .conftest import DEV_APP
from .serving import uvicorn_process

VERSION = "2025-06-18"
BOTH = "application/json, text/event-stream"


def _initialize(version: str = VERSION, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"}}}


def _request(method: str, request_id: int = 2, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


@dataclass(frozen=True)
class Outcome:
    """What a server answered, reduced to what the probes compare."""

    status: int
    #: "jsonrpc-error", "jsonrpc-result", "batch", "empty", "event-stream", "api-error", "other"
    shape: str
    #: the JSON-RPC error's code, or the API error's ``error``
    code: int | str | None = None
    #: the JSON-RPC answer's id ("" when it has none)
    rpc_id: Any = ""

    def __str__(self) -> str:
        if self.shape == "jsonrpc-error":
            return f"{self.status} JSON-RPC {self.code}, id {orjson.dumps(self.rpc_id).decode()}"
        if self.shape == "jsonrpc-result":
            return f"{self.status} JSON-RPC result"
        if self.shape == "api-error":
            return f"{self.status} `{{\"error\": \"{self.code}\"}}`"
        if self.shape == "empty":
            return f"{self.status}, no body"
        return f"{self.status} {self.shape}"


class Target:
    """One server under probe: the mock (with its gateway token) or the peer."""

    def __init__(self, port: int, token: str | None) -> None:
        self.port = port
        self.token = token

    def send(self, method: str, body: Any = None, *, raw: bytes | None = None,
             accept: str | None = BOTH, content_type: str | None = "application/json",
             session: str | None = None, version: str | None = None) -> tuple[Outcome, str | None]:
        """The answer to one request, and its ``Mcp-Session-Id``. ``body`` is sent as JSON
        (``raw`` as is); a header given None is left out."""
        headers: dict[str, str] = {}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if accept is not None:
            headers["Accept"] = accept
        data = raw if raw is not None else (None if body is None else orjson.dumps(body))
        if data is not None and content_type is not None:
            headers["Content-Type"] = content_type
        if session is not None:
            headers["Mcp-Session-Id"] = session
        if version is not None:
            headers["MCP-Protocol-Version"] = version
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request(method, "/mcp", body=data, headers=headers)
            response = conn.getresponse()
            return _outcome(method, response), response.getheader("Mcp-Session-Id")
        finally:
            conn.close()

    def session(self, version: str = VERSION) -> str:
        """A new initialized session's id."""
        answer, session = self.send("POST", _initialize(version))
        assert answer.status == 200 and session, answer
        done, _ = self.send("POST", {"jsonrpc": "2.0", "method": "notifications/initialized"},
                            session=session, version=version)
        assert done.status == 202, done
        return session


def _outcome(method: str, response: http.client.HTTPResponse) -> Outcome:
    status = response.status
    media = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
    if media == "text/event-stream":
        if method == "GET":
            return Outcome(status, "event-stream")  # (open until the session ends)
        data = b""
        for line in response:  # a POST's stream: its first message is the answer
            if line.startswith(b"data:"):
                data = line[5:].strip()
                break
        return _shape(status, data)
    return _shape(status, response.read())


def _shape(status: int, data: bytes) -> Outcome:
    if not data:
        return Outcome(status, "empty")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return Outcome(status, "other")
    if isinstance(body, list):
        return Outcome(status, "batch")
    if isinstance(body, dict) and body.get("jsonrpc") == "2.0":
        if isinstance(body.get("error"), dict):
            return Outcome(status, "jsonrpc-error", body["error"].get("code"), body.get("id"))
        if "result" in body:
            return Outcome(status, "jsonrpc-result", None, body.get("id"))
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return Outcome(status, "api-error", body["error"])
    return Outcome(status, "other")


Run = Callable[[Target], Outcome]


@dataclass(frozen=True)
class Probe:
    """One probe: what it sends (``run``), what the specification allows, and why the
    mock answers otherwise than the peer where it does on purpose."""

    name: str
    spec: str
    #: the statuses the MCP transport (or HTTP, or JSON-RPC) allows here
    allowed: frozenset[int]
    run: Run
    #: why the mock answers otherwise than the peer ("" where it should not)
    differs: str = ""


def _post(**kwargs: Any) -> Run:
    return lambda target: target.send("POST", _initialize(), **kwargs)[0]


def _in_session(method: str, body: Any = None, **kwargs: Any) -> Run:
    def run(target: Target) -> Outcome:
        session = target.session()
        kwargs.setdefault("version", VERSION)
        return target.send(method, body, session=session, **kwargs)[0]
    return run


def _initialize_twice(target: Target) -> Outcome:
    session = target.session()
    return target.send("POST", _initialize(request_id=3), session=session, version=VERSION)[0]


def _deleted_then_used(target: Target) -> Outcome:
    session = target.session()
    gone, _ = target.send("DELETE", session=session, version=VERSION)
    assert gone.status in (200, 204), gone
    return target.send("POST", _request("tools/list"), session=session, version=VERSION)[0]


def _batch_2025_03_26(target: Target) -> Outcome:
    session = target.session("2025-03-26")
    return target.send("POST", [_request("tools/list", 2), _request("ping", 3)],
                       session=session, version="2025-03-26")[0]


_REFUSED = frozenset({400})
_UNKNOWN = "00000000000000000000000000000000"
#: the mock's code for a refusal of the HTTP transport, where the Python SDK says -32600
_TRANSPORT = ("-32000, as the TypeScript SDK's server answers a refusal of the transport "
              "(the Python SDK's says -32600)")
#: the Python SDK 2.3 refuses a wrong Content-Type in its DNS-rebinding check, in text
_MEDIA = "415 as RFC 9110 15.5.16 says, in JSON-RPC (-32000, as the TypeScript SDK's server); " \
         "the Python SDK's answers 400 in plain text"
_GONE = "the MCP SDKs' -32001 Session not found, for the request's id (the Python SDK's " \
        "server says -32600, id null)"

PROBES: list[Probe] = [
    Probe("POST, no Accept", "client MUST accept application/json and text/event-stream; "
          "RFC 9110: 406 may refuse", frozenset({406}), _post(accept=None), _TRANSPORT),
    Probe("POST, Accept: application/json", "as above", frozenset({406}),
          _post(accept="application/json"), _TRANSPORT),
    Probe("POST, Accept: text/event-stream", "as above", frozenset({406}),
          _post(accept="text/event-stream"), _TRANSPORT),
    Probe("POST, Accept: text/html", "as above", frozenset({406}), _post(accept="text/html"),
          _TRANSPORT),
    Probe("POST, Accept: `application/json, text/event-stream;q=0`", "RFC 9110 12.4.2: "
          "q=0 is not acceptable", frozenset({406}),
          _post(accept="application/json, text/event-stream;q=0"),
          "q=0 read as RFC 9110 says (the Python SDK ignores q)"),
    Probe("POST, Accept: */*", "RFC 9110 12.5.1: */* accepts both", frozenset({200}),
          _post(accept="*/*")),
    Probe("POST, Content-Type: text/plain", "the body is JSON: 415", frozenset({415}),
          _post(content_type="text/plain"), _MEDIA),
    Probe("POST, no Content-Type", "as above", frozenset({415}), _post(content_type=None),
          _MEDIA),
    Probe("POST, body not JSON", "JSON-RPC: -32700 Parse error, id null", _REFUSED,
          lambda target: target.send("POST", raw=b"{not json")[0]),
    Probe("POST, empty body", "as above", _REFUSED,
          lambda target: target.send("POST", raw=b"")[0]),
    Probe("POST, JSON but no JSON-RPC (`{\"foo\": 1}`)", "JSON-RPC: -32600 Invalid Request, id null",
          _REFUSED, lambda target: target.send("POST", {"foo": 1})[0],
          differs="JSON-RPC 2.0 5.1 names this -32600 Invalid Request; the SDK says -32602"),
    Probe("POST, a batch in a 2025-06-18 session", "2025-06-18 removed batches: 400",
          _REFUSED, _in_session("POST", [_request("ping", 2), _request("ping", 3)]),
          differs="JSON-RPC's -32600 for a message the revision does not have; the SDK says -32602"),
    Probe("POST, a batch in a 2025-03-26 session", "2025-03-26: the server MUST support "
          "receiving batches", frozenset({200}), _batch_2025_03_26,
          differs="2025-03-26 requires batches; the SDK's server never took them"),
    Probe("POST, no Mcp-Session-Id after initialize", "400", _REFUSED,
          lambda target: (target.session(), target.send(
              "POST", _request("tools/list"), version=VERSION)[0])[1]),
    Probe("POST, unknown Mcp-Session-Id", "404", frozenset({404}),
          lambda target: target.send("POST", _request("tools/list"), session=_UNKNOWN,
                                     version=VERSION)[0],
          differs=_GONE),
    Probe("POST, initialize again with its Mcp-Session-Id", "the spec is silent; "
          "a session is initialized once", frozenset({200, 400}), _initialize_twice,
          differs="refused as the TypeScript SDK's server does (assumption mcp-initialize-once); "
                  "the Python SDK's server answers it"),
    Probe("POST, initialize again without Mcp-Session-Id", "a new session", frozenset({200}),
          lambda target: (target.session(), target.send("POST", _initialize())[0])[1]),
    Probe("POST after DELETE of the session", "404: the client initializes again",
          frozenset({404}), _deleted_then_used,
          differs=_GONE),
    Probe("POST, MCP-Protocol-Version: 1999-01-01", "400", _REFUSED,
          _in_session("POST", _request("tools/list"), version="1999-01-01"),
          differs="-32600 Invalid Request, id null (a header, not the message, is wrong); "
                  "the Python SDK says -32602 for the request's id"),
    Probe("POST, a notification only", "202, no body", frozenset({202}),
          _in_session("POST", {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})),
    Probe("POST, a response only", "202, no body", frozenset({202}),
          _in_session("POST", {"jsonrpc": "2.0", "id": 99, "result": {}})),
    Probe("POST, an unknown method", "the JSON-RPC error -32601 for its id", frozenset({200}),
          _in_session("POST", _request("no/such/method", 5))),
    Probe("POST, a 5 MiB body", "413 (RFC 9110 15.5.14)", frozenset({413}),
          lambda target: target.send("POST", raw=b'{"jsonrpc": "2.0", "id": 1, "method": "ping", '
                                     b'"params": {"pad": "' + b"x" * (5 << 20) + b'"}}')[0],
          differs="refused by the server from the head, before the body: JSON-RPC -32000, id "
                  "null (the Python SDK's is plain text)"),
    Probe("GET, Accept: application/json", "client MUST accept text/event-stream: 406 "
          "(405 if no stream is offered)", frozenset({405, 406}),
          _in_session("GET", accept="application/json"), _TRANSPORT),
    Probe("GET, no Accept", "as above", frozenset({405, 406}), _in_session("GET", accept=None),
          _TRANSPORT),
    Probe("GET, Accept: text/event-stream", "the session's stream (or 405)",
          frozenset({200, 405}), _in_session("GET", accept="text/event-stream")),
    Probe("GET, unknown Mcp-Session-Id", "404", frozenset({404}),
          lambda target: target.send("GET", accept="text/event-stream", session=_UNKNOWN,
                                     version=VERSION)[0],
          differs="the MCP SDKs' -32001 Session not found (the Python SDK's server says -32600)"),
    Probe("DELETE of the session", "2xx: the session ends", frozenset({200, 204}),
          _in_session("DELETE", accept=None),
          differs="204: a DELETE's answer has no body to send"),
    Probe("DELETE, no Mcp-Session-Id", "400", _REFUSED,
          lambda target: (target.session(), target.send("DELETE", version=VERSION)[0])[1]),
    Probe("PUT /mcp", "405 (RFC 9110 15.5.6)", frozenset({405}),
          lambda target: target.send("PUT", _initialize())[0], _TRANSPORT),
]


def worse(probe: Probe, mock: Outcome, peer: Outcome) -> str | None:
    """Why the mock's answer is worse than the peer's or the spec's, or None."""
    if mock.status >= 500:
        return "a 5xx"
    if mock.status not in probe.allowed:
        return f"{mock.status}: the specification allows {sorted(probe.allowed)}"
    if mock.status >= 400 and peer.shape == "jsonrpc-error" and mock.shape != "jsonrpc-error":
        return "not the JSON-RPC error the peer answers"
    if peer.status >= 400 and mock.status < 400 and not probe.differs:
        return "a 2xx where the peer refuses"
    if (mock.status, mock.shape, mock.code) != (peer.status, peer.shape, peer.code) \
            and not probe.differs:
        return "otherwise than the peer, and the probe says not why"
    return None


def free_port() -> int:
    """A port free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_mock() -> Iterator[Target]:
    """The mock's server, in this process, with a gateway token for it."""
    mock = KontextMock()
    server = start(mock.app, "127.0.0.1", 0, threads=2)
    try:
        token = mock.oauth.gateway_token(DEV_APP, resource=f"{server.url}/mcp")["access_token"]
        yield Target(server.port, str(token))
    finally:
        server.stop()


@contextlib.contextmanager
def running_peer() -> Iterator[Target]:
    """The official SDK's server under uvicorn, in a process of its own."""
    with uvicorn_process("tests.mcp_peer_app:app") as port:
        yield Target(port, None)


@pytest.fixture(scope="module")
def targets() -> Iterator[tuple[Target, Target]]:
    with running_mock() as mock, running_peer() as peer:
        yield mock, peer


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_the_mock_answers_no_worse_than_the_sdk_server(targets: tuple[Target, Target],
                                                      probe: Probe) -> None:
    mock_target, peer_target = targets
    mock, peer = probe.run(mock_target), probe.run(peer_target)
    problem = worse(probe, mock, peer)
    assert problem is None, f"{probe.name}: the mock {mock}, the SDK {peer}: {problem}"


def test_every_refusal_of_the_transport_is_json_rpc(targets: tuple[Target, Target]) -> None:
    """Every refusal of ``/mcp`` the probes provoke is a JSON-RPC error (``id`` null
    where no message was read), as ``x-error-style: jsonrpc`` says, whatever the peer
    does."""
    mock_target, _ = targets
    for probe in PROBES:
        answer = probe.run(mock_target)
        if answer.status >= 400:
            assert answer.shape == "jsonrpc-error", (probe.name, answer)
            if answer.status in (405, 406, 413, 415):
                assert answer.rpc_id is None, (probe.name, answer)
