"""Loopback, one rule: the bind address, a ``Host`` name, a client's address and an OAuth
redirect URI's host are judged by ``core.loopback.is_loopback`` alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kontext_mock import KontextMock
from kontext_mock.config import MockConfig
from kontext_mock.core.loopback import is_loopback, is_loopback_redirect_host
from kontext_mock.http.admin import control_refusal
from kontext_mock.http.origins import loopback_host

PACKAGE = Path(__file__).resolve().parent.parent / "mock_server"


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "127.0.0.1",
                                  "127.8.9.10", "::1", "[::1]", "::1%lo", "::ffff:127.0.0.1"])
def test_names_and_addresses_of_this_machine_are_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["", "example.com", "localhost.example.com", "10.0.0.1",
                                  "0.0.0.0", "::", "::ffff:10.0.0.1", "127.0.0.1:8080",
                                  "[::1", "fe80::1%lo"])
def test_anything_else_is_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_a_dual_stack_peer_from_127_0_0_1_may_use_the_open_control_plane() -> None:
    # a socket bound to :: reports an IPv4 client as ::ffff:127.0.0.1
    config = MockConfig()
    assert control_refusal(config, None, "::ffff:127.0.0.1") is None
    assert control_refusal(config, None, "::ffff:10.0.0.1") is not None


def test_a_bracketed_ipv6_loopback_bind_address_keeps_the_control_plane_open() -> None:
    assert control_refusal(MockConfig(host="[::1]"), None, "::1") is None
    assert control_refusal(MockConfig(host="0.0.0.0"), None, "127.0.0.1") is not None


@pytest.mark.parametrize(("uri", "trusted"), [
    ("http://127.0.0.1:5000/cb", True), ("http://[::1]/cb", True),
    ("http://[::ffff:127.0.0.1]:9/cb", True), ("http://LocalHost/cb", True),
    ("http://10.0.0.1/cb", False), ("http://localhost.example.com/cb", False),
])
def test_redirect_uris_and_host_names_follow_the_same_rule(uri: str, trusted: bool) -> None:
    mock = KontextMock(seed=1)
    assert mock.oauth.trusted_redirect(uri) is trusted
    host = uri.split("/")[2]
    assert loopback_host(host) is trusted


@pytest.mark.parametrize("host", ["localhost", "LocalHost", "127.0.0.1", "127.8.9.10", "::1",
                                  "[::1]", "::ffff:127.0.0.1"])
def test_a_redirect_host_is_exactly_localhost_or_a_loopback_literal(host: str) -> None:
    assert is_loopback_redirect_host(host)


@pytest.mark.parametrize("host", ["localhost.", "127.0.0.1.", "::1%lo", "::1%25lo", "[::1%25lo]",
                                  " localhost", "localhost ", "10.0.0.1", "localhost.example.com",
                                  ""])
def test_a_redirect_host_with_a_trailing_dot_or_a_zone_is_not_loopback(host: str) -> None:
    # RFC 8252 7.3 and 8.3: what the loose rule forgives a Host header, a redirect is refused
    assert not is_loopback_redirect_host(host)


@pytest.mark.parametrize("uri", ["http://localhost./cb", "http://LOCALHOST.:9/cb",
                                 "http://[::1%25lo]:9/cb", "http://127.0.0.1.:5000/cb"])
def test_a_redirect_uri_is_trusted_only_in_rfc_8252_forms(uri: str) -> None:
    mock = KontextMock(seed=1)
    assert not mock.oauth.trusted_redirect(uri)
    assert mock.oauth.trusted_redirect(uri.replace(".:", ":").replace("./", "/")
                                       .replace("%25lo", ""))


def test_the_rule_is_written_once() -> None:
    # nothing but core/loopback.py asks the ipaddress module whether an address is loopback
    asking = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "is_loopback"
    }
    assert asking == {"core/loopback.py"}
