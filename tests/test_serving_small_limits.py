"""Smaller limits of serving: fault ids go on after a reset, the rate limiter keeps a
bounded number of credentials and junk ones never free a limited one, a preflight answer
has no Content-Length, no 100-continue for HTTP/1.0."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from kontext_mock import KontextMock
from kontext_mock.core.ratelimit import MAX_CREDENTIALS, RateLimiter
from kontext_mock.http.serve import start

from .conftest import LiveMock
from .serving import AGENT, AGENT_BODY, LIST, read_until_closed

# -- smaller findings ------------------------------------------------------------------------------


def test_fault_ids_go_on_after_a_reset(mock: KontextMock) -> None:
    assert mock.add_fault("GET", LIST, status=500) == "fault-1"
    mock.reset()
    assert mock.add_fault("GET", LIST, status=500) == "fault-2"
    mock.load_scenario_text("seed: 3\n")
    assert mock.add_fault("GET", LIST, status=500) == "fault-3"


def test_the_rate_limiter_counts_a_bounded_number_of_credentials() -> None:
    limiter = RateLimiter()
    limiter.set(5)
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    for n in range(MAX_CREDENTIALS + 500):
        assert limiter.hit(f"Bearer token-{n}", now) is None
    assert limiter.credentials <= MAX_CREDENTIALS
    assert limiter.hit("Bearer " + "x" * 10_000, now) is None  # a long one is kept as a digest


def test_junk_credentials_do_not_free_a_limited_one() -> None:
    limiter = RateLimiter()
    limiter.set(3)
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    for _ in range(3):
        assert limiter.hit("Bearer busy", now) is None
    assert limiter.hit("Bearer busy", now) == 60
    for n in range(2 * MAX_CREDENTIALS):  # anyone may send these: the limit runs before auth
        limiter.hit(f"Bearer junk-{n}", now)
    assert limiter.hit("Bearer busy", now) == 60  # still counted, still refused
    assert limiter.credentials <= MAX_CREDENTIALS


def test_a_preflight_answer_has_no_content_length(mock: KontextMock) -> None:
    mock.config = mock.config.with_changes(cors_origins=("http://app.example",))
    server = start(mock.app, "127.0.0.1", 0)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"OPTIONS {LIST} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://app.example"
                         "\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n".encode())
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 204 ")
        assert b"content-length" not in answer.lower()
    finally:
        server.stop()


def test_no_100_continue_for_http_1_0(live: LiveMock) -> None:
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=30) as sock:
        sock.sendall(f"POST {AGENT} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dev-token\r\n"
                     f"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                     f"Content-Length: {len(AGENT_BODY)}\r\n\r\n".encode() + AGENT_BODY)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:100]
    assert b"100 Continue" not in answer

