"""The API client beneath the kit and ``record``: what it sends again after a dropped
connection, and its default credentials as a typed sentinel."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from kontext_mock.clients.api import DEFAULT_AUTH, ApiClient, Auth
from kontext_mock.clients.control import connection_never_opened
from kontext_mock.clients.errors import TargetUnavailableError


class Dropper:
    """A server that reads each request whole, records its head, and closes the connection
    without answering: the request reached it, the client cannot know whether it applied."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.heads: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                if head:
                    self.heads.append(head)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dropper() -> Iterator[Dropper]:
    server = Dropper()
    yield server
    server.close()


def test_a_post_whose_connection_dropped_is_never_sent_twice(dropper: Dropper) -> None:
    client = ApiClient(dropper.url, token="t", destructive=True)
    with pytest.raises(TargetUnavailableError):
        client.request("POST", "/api/v1/applications/a/sessions", json={"name": "x"})
    assert len(dropper.heads) == 1  # it reached the target once: it may have been applied


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_idempotent_request_whose_connection_dropped_is_sent_once_more(
    dropper: Dropper, method: str,
) -> None:
    client = ApiClient(dropper.url, token="t", destructive=True)
    with pytest.raises(TargetUnavailableError):
        client.request(method, "/api/v1/applications/a/sessions")
    assert len(dropper.heads) == 2


def test_a_dropped_client_credentials_token_request_is_sent_once_more(dropper: Dropper) -> None:
    # asking for a token again only issues another one: nothing is applied twice
    client = ApiClient(dropper.url, client_id="kit", client_secret="kit-secret")
    with pytest.raises(TargetUnavailableError):
        client.fetch_token()
    assert len(dropper.heads) == 2
    assert all(head.startswith(b"POST /oauth2/token ") for head in dropper.heads)


@pytest.mark.parametrize("grant_type", ["refresh_token", "authorization_code"])
def test_a_dropped_token_request_of_another_grant_is_never_sent_twice(dropper: Dropper,
                                                                      grant_type: str) -> None:
    # a refresh token rotates and a code works once: the first request may have spent them
    client = ApiClient(dropper.url, token="t")
    with pytest.raises(TargetUnavailableError):
        client.request("POST", "/oauth2/token", form={"grant_type": grant_type, "code": "c",
                                                      "refresh_token": "r"}, auth=None)
    assert len(dropper.heads) == 1


def test_a_connection_never_opened_is_told_from_one_dropped(dropper: Dropper) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: refused
    with pytest.raises(requests.ConnectionError) as refused:
        requests.post(f"http://127.0.0.1:{port}/x", timeout=5)
    assert connection_never_opened(refused.value)
    with pytest.raises(requests.ConnectionError) as dropped:
        requests.post(f"{dropper.url}/x", timeout=5)
    assert not connection_never_opened(dropped.value)


def test_the_default_credentials_are_a_sentinel_no_header_value_equals(dropper: Dropper) -> None:
    assert DEFAULT_AUTH is Auth.DEFAULT and not isinstance(DEFAULT_AUTH, str)
    client = ApiClient(dropper.url, token="kit-token")
    for auth in (DEFAULT_AUTH, None, "Basic abc"):
        with pytest.raises(TargetUnavailableError):
            client.request("GET", "/api/v1/x", auth=auth)
    sent = [next((line for line in head.split(b"\r\n") if line.lower().startswith(b"authorization")),
                 None) for head in dropper.heads[::2]]
    assert sent == [b"Authorization: Bearer kit-token", None, b"Authorization: Basic abc"]
