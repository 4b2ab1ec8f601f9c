"""The request model: a header is found whatever the case it is asked in or was sent in,
and read as a WSGI app reads it (repeated fields joined, ``Content-Type``'s first only)."""

from __future__ import annotations

import pytest

from kontext_mock.http.serving.exchange import Exchange

SENT = [("X-Request-Id", "r1"), ("accept", "a/b"), ("Accept", "c/d"),
        ("Content-Type", "application/json"), ("content-type", "text/plain")]


@pytest.mark.parametrize("asked", ["x-request-id", "X-Request-ID", "X-REQUEST-ID"])
def test_a_header_is_found_in_any_case(asked: str) -> None:
    assert Exchange("GET", "/", b"", list(SENT)).header(asked) == "r1"


def test_a_repeated_header_gives_its_first_value_or_all_as_wsgi_joins_them() -> None:
    exchange = Exchange("GET", "/", b"", list(SENT))
    assert exchange.header("Accept") == "a/b"
    assert exchange.wsgi_header("ACCEPT") == "a/b,c/d"
    assert exchange.wsgi_header("Content-Type") == "application/json"
    assert exchange.header("missing") is None and exchange.wsgi_header("missing") is None
