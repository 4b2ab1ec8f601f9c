"""HTTP edge cases over a real socket: what the server and the pipeline refuse, and how.

Whoever refuses a request (the server while reading it, or the request pipeline before
any route), the answer is the API's JSON error shape with ``x-request-id``; and in every
case the server keeps serving other clients.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
import requests

from kontext_mock import KontextMock
from kontext_mock.http.errors import EDGE_ERRORS
from kontext_mock.http.limits import CONTROL_MAX_BODY_BYTES
from kontext_mock.http.serve import RunningServer, ServerLimits, start

from .conftest import AUTH, DEV_APP, LiveMock, check_response

LIST = f"/api/v1/applications/{DEV_APP}/sessions"
AGENT = "/api/v1/agent-sessions"
AGENT_BODY = b'{"tokenIdentifier":"t","authenticatedUserId":"u","clientSessionId":"c"}'


@dataclass
class Raw:
    """A response read off the socket as bytes."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, object]:
        data = orjson.loads(self.body)
        assert isinstance(data, dict)
        return data


def raw(server: RunningServer | LiveMock, data: bytes, timeout: float = 5.0) -> Raw:
    """Send bytes as they are and read the answer until the server closes."""
    port = server.port if isinstance(server, RunningServer) else server.server.port
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Raw(int(lines[0].split()[1]), headers, body)


def request_bytes(method: str, target: bytes, headers: dict[str, str] | None = None,
                  body: bytes = b"") -> bytes:
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1",
             b"Connection: close"]
    for name, value in {**AUTH, **(headers or {})}.items():
        lines.append(f"{name}: {value}".encode("latin-1"))
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in headers or {}):
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def assert_json_error(live: LiveMock, method: str, path: str, answer: Raw, status: int,
                      documented: bool = True) -> None:
    """A JSON error of the API's shape; where the route documents it, the spec's."""
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers["content-type"].startswith("application/json")
    assert "x-request-id" in answer.headers
    body = answer.json
    assert isinstance(body.get("error"), str) and body["error"]
    assert "Traceback" not in answer.body.decode("utf-8", "replace")
    if documented:
        check_response(live.mock.app, method, path, answer.status, answer.headers, answer.body,
                       answer.headers["content-type"])


def still_serving(live: LiveMock) -> None:
    assert live.http.get(live.url + LIST, headers=AUTH, timeout=5).status_code == 200


# -- bodies ------------------------------------------------------------------------------


def test_body_over_the_app_limit_is_413_json(live: LiveMock) -> None:
    too_big = b'{"tokenIdentifier":"' + b"x" * live.mock.config.max_body_bytes + b'"}'
    answer = raw(live, request_bytes("POST", AGENT.encode(), {"Content-Type": "application/json"},
                                     too_big))
    assert_json_error(live, "POST", AGENT, answer, 413)
    assert answer.json["error"] == "payload_too_large"
    still_serving(live)


def test_form_body_over_the_app_limit_is_413_json_on_the_token_endpoint(live: LiveMock) -> None:
    form = b"grant_type=client_credentials&client_id=dev-client&client_secret=" + b"s" * 70_000
    answer = raw(live, request_bytes(
        "POST", b"/oauth2/token", {"Content-Type": "application/x-www-form-urlencoded"}, form))
    assert_json_error(live, "POST", "/oauth2/token", answer, 413)


def test_chunked_body_over_the_app_limit_is_413_json(live: LiveMock) -> None:
    chunk = b"x" * 8192
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10)) + b"0\r\n\r\n"
    answer = raw(live, request_bytes(
        "POST", AGENT.encode(),
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, chunks))
    assert_json_error(live, "POST", AGENT, answer, 413)


def test_a_body_where_the_route_reads_none_is_ignored_within_the_limit(live: LiveMock) -> None:
    assert raw(live, request_bytes("GET", LIST.encode(), {}, b"x" * 1000)).status == 200
    # past the limit it is refused like any other: the server would have to hold it
    answer = raw(live, request_bytes("GET", LIST.encode(), {}, b"x" * 70_000))
    assert_json_error(live, "GET", LIST, answer, 413)


@pytest.mark.parametrize(("path", "limit"), [(AGENT, None), ("/_mock/state", CONTROL_MAX_BODY_BYTES)])
def test_a_declared_body_over_the_limit_is_refused_from_the_head_alone(
    live: LiveMock, path: str, limit: int | None
) -> None:
    # Declared, not sent: the server answers from the headers alone, in JSON, with an id.
    size = (limit or live.mock.config.max_body_bytes) + 1
    method = "PUT" if path.startswith("/_mock") else "POST"
    head = request_bytes(method, path.encode(), {
        "Content-Type": "application/json", "Content-Length": str(size)})
    before = live.mock.export_state()
    answer = raw(live, head)
    assert_json_error(live, method, path, answer, 413)
    assert answer.json["error"] == "payload_too_large" and str(size - 1) in str(answer.json["message"])
    assert live.mock.export_state() == before  # a refused request changes nothing
    still_serving(live)


# -- path and query encoding ----------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        b"/api/v1/applications/%ff%fe/sessions",
        b"/api/v1/applications/%zz/sessions",
        b"/api/v1/applications/%/sessions",
        b"/api/v1/applications/%E2%82/sessions",
        b"/api/v1/applications/%00/sessions",
        b"/api/v1/applications/" + DEV_APP.encode() + b"/sessions/%C0%AF",
        b"/api/v1/applications/" + DEV_APP.encode() + b"%2F..%2F/sessions",
        b"/api/v1/%ff",
        b"/%ff%ff%ff",
    ],
)
def test_bad_bytes_in_the_path_are_a_json_4xx(live: LiveMock, target: bytes) -> None:
    answer = raw(live, request_bytes("GET", target))
    assert 400 <= answer.status < 500
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json["error"] in {"validation_error", "not_found"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (b"limit=%ff", "limit"),
        (b"limit=%", "limit"),
        (b"limit=1%00", "limit"),
        (b"status=%zz", "status"),
        (b"status=act%C3%A9ive", "status"),
        (b"status=%E2%82", "status"),
        (b"includeInactive=tr%00ue", "includeInactive"),
    ],
)
def test_bad_bytes_in_a_query_value_are_400_naming_the_parameter(
    live: LiveMock, query: bytes, field: str
) -> None:
    answer = raw(live, request_bytes("GET", LIST.encode() + b"?" + query))
    assert_json_error(live, "GET", LIST, answer, 400)
    assert answer.json["details"][0]["field"] == field  # type: ignore[index]


@pytest.mark.parametrize("query", [b"%ff=1", b"%ff%fe=%ff", b"%=%", b"&&&", b"=", b"a=1&a=2"])
def test_unknown_query_parameters_are_ignored_however_encoded(live: LiveMock, query: bytes) -> None:
    answer = raw(live, request_bytes("GET", LIST.encode() + b"?" + query))
    assert answer.status == 200
    check_response(live.mock.app, "GET", LIST, 200, answer.headers, answer.body,
                   answer.headers["content-type"])


@pytest.mark.parametrize(
    "query",
    ["limit=5&limit=6", "limit=5&limit=5", "status=active&status=active", "status=all&status=inactive",
     "includeInactive=true&includeInactive=false"],
)
def test_repeated_query_parameters_are_400_over_http(live: LiveMock, query: str) -> None:
    response = live.http.get(f"{live.url}{LIST}?{query}", headers=AUTH, timeout=5)
    assert response.status_code == 400
    detail = response.json()["details"][0]
    assert detail["field"] == query.split("=")[0] and "more than once" in detail["message"]


def test_repeated_token_form_fields_are_invalid_request(live: LiveMock) -> None:
    response = live.http.post(
        f"{live.url}/oauth2/token", timeout=5,
        data="grant_type=client_credentials&client_id=dev-client&client_id=other&client_secret=dev-secret",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


# -- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["one huge value", "many headers"])
def test_headers_over_the_app_limit_are_431_json(live: LiveMock, shape: str) -> None:
    limit = live.mock.config.max_header_bytes
    if shape == "one huge value":
        headers = {"X-Huge": "v" * (limit + 1)}
    else:
        headers = {f"X-Many-{i}": "v" * 100 for i in range(limit // 100)}
    answer = raw(live, request_bytes("GET", LIST.encode(), headers))
    # 431 is the edge's answer on every route; the public spec leaves it undocumented.
    assert_json_error(live, "GET", LIST, answer, 431, documented=False)
    assert answer.json["error"] == "request_header_fields_too_large"
    still_serving(live)


def test_huge_authorization_header_is_431_not_a_token_lookup(live: LiveMock) -> None:
    answer = raw(live, request_bytes("GET", LIST.encode(),
                                     {"Authorization": "Bearer " + "t" * 20_000}))
    assert answer.status == 431 and answer.json["error"] == "request_header_fields_too_large"


def test_headers_just_under_the_app_limit_are_served(live: LiveMock) -> None:
    headers = {"X-Padding": "v" * (live.mock.config.max_header_bytes - 500)}
    assert raw(live, request_bytes("GET", LIST.encode(), headers)).status == 200


@pytest.mark.parametrize("shape", ["one huge value", "too many fields"])
def test_a_head_over_the_servers_bound_is_431_json_too(live: LiveMock, shape: str) -> None:
    if shape == "one huge value":
        headers = {"X-Huge": "v" * (ServerLimits().max_head_bytes + 10)}
    else:
        headers = {f"X-F{i}": "1" for i in range(ServerLimits().max_header_fields + 1)}
    answer = raw(live, request_bytes("GET", LIST.encode(), headers))
    assert_json_error(live, "GET", LIST, answer, 431)
    assert answer.json["error"] == "request_header_fields_too_large"
    still_serving(live)


@pytest.mark.parametrize("value", ["Bearer \xff\xfe", "Bearer dev-token\xa0", "Basic \xff", "\xff"])
def test_non_ascii_authorization_is_401_json(live: LiveMock, value: str) -> None:
    answer = raw(live, request_bytes("GET", LIST.encode(), {"Authorization": value}))
    assert_json_error(live, "GET", LIST, answer, 401)


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /api/v1/applications/\xff\xfe/sessions HTTP/1.1",
        b"GET " + LIST.encode() + b"?limit=\xff HTTP/1.1",
        b"GET " + LIST.encode() + b"?\xff\xfe=1 HTTP/1.1",
    ],
)
def test_raw_non_ascii_in_the_request_target_is_refused_by_the_server(
    live: LiveMock, request_line: bytes
) -> None:
    # RFC 9112: the request target is ASCII; other bytes must be percent-encoded. The
    # server refuses such a request line itself, before the pipeline runs, in JSON.
    answer = raw(live, request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert_json_error(live, "GET", LIST, answer, 400)
    assert answer.json["error"] == "malformed_request"
    still_serving(live)


def test_control_characters_in_a_header_are_refused_by_the_server(live: LiveMock) -> None:
    answer = raw(live, request_bytes("GET", LIST.encode(), {"Authorization": "Bearer dev-token\x01"}))
    assert_json_error(live, "GET", LIST, answer, 400)
    assert answer.json["error"] == "malformed_request"
    still_serving(live)


def test_not_http_at_all_is_refused_and_the_server_keeps_serving(live: LiveMock) -> None:
    for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n",
                    b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n"):
        answer = raw(live, garbage)
        assert answer.status == 400 and answer.json["error"] == "malformed_request", garbage
        assert "x-request-id" in answer.headers
    still_serving(live)


# -- content types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 201),
        ("application/json; charset=utf-8", 201),
        ("Application/JSON", 201),
        (None, 415),
        ("", 415),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=xyz", 415),
        ("application/json-patch+json", 415),
        ("application/jsonx", 415),
        ("*/*", 415),
    ],
)
def test_agent_sessions_content_types(live: LiveMock, content_type: str | None, status: int) -> None:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    answer = raw(live, request_bytes("POST", AGENT.encode(), headers, AGENT_BODY))
    if status == 201:
        assert answer.status == 201
        return
    assert_json_error(live, "POST", AGENT, answer, status)
    assert answer.json["error"] == "unsupported_media_type"
    assert "application/json" in str(answer.json["message"])


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"grant_type":"client_credentials","client_id":"dev-client"}'),
        (None, b"grant_type=client_credentials&client_id=dev-client&client_secret=dev-secret"),
        ("text/plain", b"grant_type=client_credentials&client_id=dev-client&client_secret=dev-secret"),
        ("multipart/form-data; boundary=b",
         b'--b\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nclient_credentials\r\n--b--\r\n'),
    ],
)
def test_token_endpoint_wrong_content_type_is_invalid_request(
    live: LiveMock, content_type: str | None, body: bytes
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = raw(live, request_bytes("POST", b"/oauth2/token", headers, body))
    assert_json_error(live, "POST", "/oauth2/token", answer, 400)
    assert answer.json["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in str(answer.json["error_description"])


def test_json_body_in_another_charset_is_400(live: LiveMock) -> None:
    body = '{"tokenIdentifier":"é","authenticatedUserId":"u","clientSessionId":"c"}'.encode("latin-1")
    answer = raw(live, request_bytes("POST", AGENT.encode(),
                                     {"Content-Type": "application/json; charset=latin-1"}, body))
    assert_json_error(live, "POST", AGENT, answer, 400)


# -- slow and idle clients -----------------------------------------------------------------

LIMITS = ServerLimits(head_timeout=1.0, body_timeout=1.0, idle_timeout=1.0)


@pytest.fixture
def slow_server(mock: KontextMock) -> Iterator[RunningServer]:
    """Two worker threads and one-second head, body and idle deadlines."""
    server = start(mock.app, "127.0.0.1", 0, threads=2, limits=LIMITS)
    try:
        yield server
    finally:
        server.stop()


def _closed_by_server(sock: socket.socket, within: float = 30) -> bytes | None:
    """What the server sent before closing the connection (None: it did not close it)."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        return None
    return received


def test_slow_clients_hold_no_worker_and_others_are_served(slow_server: RunningServer) -> None:
    port = slow_server.port
    slow: list[socket.socket] = []
    # Ten clients send half a head (five times the worker threads) and two more a whole
    # head and half a body: none of them holds a worker thread, so others are answered.
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(f"GET {LIST} HTTP/1.1\r\nHost: x\r\n".encode())
        slow.append(s)
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(request_bytes("POST", AGENT.encode(), {
            "Content-Type": "application/json", "Content-Length": str(len(AGENT_BODY))})
            + AGENT_BODY[:5])
        slow.append(s)
    with requests.Session() as http:
        for _ in range(30):
            assert http.get(f"{slow_server.url}{LIST}", headers=AUTH, timeout=30).status_code == 200
    # Past the head (or body) deadline each is answered 408 in JSON, and closed.
    for s in slow:
        answer = _closed_by_server(s)
        assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"error":"request_timeout"' in answer and b"x-request-id" in answer
        s.close()


def test_an_idle_connection_is_closed_after_the_idle_timeout(slow_server: RunningServer) -> None:
    silent = socket.create_connection(("127.0.0.1", slow_server.port), timeout=5)
    kept = socket.create_connection(("127.0.0.1", slow_server.port), timeout=5)
    try:
        kept.sendall(request_bytes("GET", LIST.encode()).replace(b"Connection: close\r\n", b""))
        assert kept.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert _closed_by_server(silent) == b""  # never sent anything: closed without a word
        assert _closed_by_server(kept) == b""  # answered, then idle: closed too
    finally:
        silent.close()
        kept.close()
    assert requests.get(f"{slow_server.url}{LIST}", headers=AUTH, timeout=5).status_code == 200


def test_every_edge_refusal_is_documented() -> None:
    # the edge contract is one table: codes, their statuses, and what they mean
    assert {code for code, (status, _) in EDGE_ERRORS.items() if not 400 <= status < 600} == set()
