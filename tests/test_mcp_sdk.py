"""The official MCP Python SDK as the gateway's client, over real HTTP: its streamable
HTTP client, and its OAuth support end to end (discovery, PKCE, token, refresh)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from mcp.shared.exceptions import MCPError
from mcp_types import Implementation

from kontext_mock import KontextMock
from kontext_mock.http.serve import RunningServer, start

from .conftest import DEV_APP, NOW, check_response

REDIRECT = "http://127.0.0.1:33418/callback"


@pytest.fixture
def served(mock: KontextMock) -> Iterator[RunningServer]:
    server = start(mock.app, "127.0.0.1", 0)
    yield server
    server.stop()


def checked(mock: KontextMock) -> dict[str, list[Callable[[httpx2.Response], Awaitable[None]]]]:
    """httpx2 hooks that hold every answer of the mock to the spec (streams excepted)."""

    async def check(response: httpx2.Response) -> None:
        kind = response.headers.get("content-type")
        if kind and kind.startswith("text/event-stream"):
            return
        await response.aread()
        check_response(mock.app, response.request.method, response.request.url.path,
                       response.status_code, response.headers, response.content, kind)

    return {"response": [check]}


def gateway_client(mock: KontextMock, token: str, user_agent: str = "my-agent/1.2.3 (linux)"
                   ) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}", "User-Agent": user_agent},
                              event_hooks=checked(mock))


def token_for(mock: KontextMock, server: RunningServer, app: str = DEV_APP) -> dict[str, Any]:
    return mock.oauth.gateway_token(app, resource=f"{server.url}/mcp")


async def await_for(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


def newest(mock: KontextMock) -> dict[str, Any]:
    return mock.list_sessions(DEV_APP, status="all", limit=1)[0]


def test_an_sdk_client_session_is_listed_with_what_it_reported(
    mock: KontextMock, served: RunningServer,
) -> None:
    grant = token_for(mock, served)
    before = {s["id"] for s in mock.list_sessions(DEV_APP, status="all", limit=200)}

    async def run() -> tuple[str, dict[str, Any]]:
        async with gateway_client(mock, grant["access_token"]) as http, Client(
            streamable_http_client(f"{served.url}/mcp", http_client=http),
            client_info=Implementation(name="my-agent", version="1.2.3"),
        ) as client:
            await await_for(lambda: mock.state.gateway.watching() == 1, "the GET stream opened")
            return client.protocol_version, newest(mock)

    version, session = asyncio.run(run())
    # server/discover was refused, so the SDK fell back to initialize and negotiated
    assert version == "2025-11-25"
    assert session["id"] not in before
    assert session["clientInfo"] == {"name": "my-agent", "version": "1.2.3"}
    assert session["userAgent"] == "my-agent/1.2.3 (linux)"
    assert session["agentId"] == DEV_APP
    assert session["organizationId"] == mock.config.dev_organization_id
    assert session["createdAt"] == session["connectedAt"] == session["lastActiveAt"] == \
        "2026-01-01T12:00:00.000Z"
    assert session["tokenExpiresAt"] == "2026-01-01T13:00:00.000Z"  # the token's expiry
    assert session["name"] == "my-agent session"
    assert session["status"] == "active"
    # leaving the client's context sent DELETE: the session ended like any other
    ended = mock.get_session(DEV_APP, session["id"])
    assert ended["status"] == "disconnected"
    assert ended["disconnectedAt"] == "2026-01-01T12:00:00.000Z"
    events = [e for e in mock.events.since(0) if e.data["sessionId"] == session["id"]]
    assert [e.type for e in events] == ["session.created", "session.disconnected"]
    assert mock.state.gateway.watching() == 0  # its stream closed with it


def test_traffic_moves_last_active_and_the_open_stream_does_not(
    mock: KontextMock, served: RunningServer,
) -> None:
    grant = token_for(mock, served)

    async def run() -> list[dict[str, Any]]:
        seen = []
        async with gateway_client(mock, grant["access_token"]) as http, Client(
            streamable_http_client(f"{served.url}/mcp", http_client=http),
            client_info=Implementation(name="my-agent", version="1"),
        ) as client:
            await await_for(lambda: mock.state.gateway.watching() == 1, "the GET stream opened")
            mock.advance("4m")
            await client.list_tools()
            seen.append(newest(mock))
            mock.advance("6m")  # the stream stays open all along: not activity
            seen.append(newest(mock))
            mock.advance("55m")
            seen.append(newest(mock))
        return seen

    moved, idle, expired = asyncio.run(run())
    assert moved["lastActiveAt"] == "2026-01-01T12:04:00.000Z"
    assert moved["derivedStatus"] == "active"
    assert idle["lastActiveAt"] == "2026-01-01T12:04:00.000Z"
    assert idle["derivedStatus"] == "idle"
    assert expired["derivedStatus"] == "expired"


def test_revoke_all_ends_the_session_its_stream_and_its_tokens(
    mock: KontextMock, served: RunningServer,
) -> None:
    grant = token_for(mock, served)

    async def run() -> tuple[str, str]:
        async with gateway_client(mock, grant["access_token"]) as http, Client(
            streamable_http_client(f"{served.url}/mcp", http_client=http),
            client_info=Implementation(name="my-agent", version="1"),
        ) as client:
            await await_for(lambda: mock.state.gateway.watching() == 1, "the GET stream opened")
            session_id = newest(mock)["id"]
            revoked = httpx.delete(f"{served.url}/api/v1/applications/{DEV_APP}/sessions",
                                   headers={"Authorization": "Bearer dev-token"})
            assert revoked.json()["disconnectedCount"] >= 1
            await await_for(lambda: mock.state.gateway.watching() == 0, "the stream closed")
            with pytest.raises(MCPError):
                await client.list_tools()
            return session_id, newest(mock)["status"]

    session_id, status = asyncio.run(run())
    assert status == "disconnected"
    assert mock.get_session(DEV_APP, session_id)["disconnectedAt"] == "2026-01-01T12:00:00.000Z"
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "again", "version": "1"}}}
    again = httpx.post(f"{served.url}/mcp", json=init,
                       headers={"Authorization": f"Bearer {grant['access_token']}"})
    assert again.status_code == 401
    assert 'error="invalid_token"' in again.headers["WWW-Authenticate"]
    refreshed = httpx.post(f"{served.url}/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": grant["refresh_token"],
        "client_id": f"app_{DEV_APP}"})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    # a new token works, but not on the ended session
    fresh = token_for(mock, served)["access_token"]
    old = httpx.post(f"{served.url}/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "ping"},
                     headers={"Authorization": f"Bearer {fresh}", "Mcp-Session-Id": session_id,
                              "MCP-Protocol-Version": "2025-11-25"})
    assert old.status_code == 404
    assert old.json()["error"]["message"] == "Session not found"


class Storage:
    """The SDK's token storage, holding the application's public client (no registration)."""

    def __init__(self, client_id: str) -> None:
        self.tokens: list[OAuthToken] = []
        self.client = OAuthClientInformationFull(
            client_id=client_id, redirect_uris=[REDIRECT], token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"], response_types=["code"])

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens[-1] if self.tokens else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class AutoApproved:
    """The redirect and callback handlers: fetch the authorization URL without following
    its redirect, and hand the code and state it carries back to the SDK."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.result: AuthorizationCodeResult | None = None

    async def redirect(self, url: str) -> None:
        self.urls.append(url)
        async with httpx2.AsyncClient(follow_redirects=False) as http:
            answer = await http.get(url)
        assert answer.status_code == 302
        query = parse_qs(urlsplit(answer.headers["Location"]).query)
        self.result = AuthorizationCodeResult(code=query["code"][0], state=query["state"][0])

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return self.result


def test_the_sdk_oauth_flow_discovers_authorizes_and_refreshes() -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True, token_ttl="1s")
    served = start(mock.app, "127.0.0.1", 0)
    try:
        oauth_flow(mock, served)
    finally:
        served.stop()


def oauth_flow(mock: KontextMock, served: RunningServer) -> None:
    storage = Storage(f"app_{DEV_APP}")
    handlers = AutoApproved()
    auth = OAuthClientProvider(
        f"{served.url}/mcp",
        OAuthClientMetadata(redirect_uris=[REDIRECT], grant_types=["authorization_code",
                                                                   "refresh_token"]),
        storage, redirect_handler=handlers.redirect, callback_handler=handlers.callback)

    async def run() -> dict[str, Any]:
        async with httpx2.AsyncClient(auth=auth, event_hooks=checked(mock)) as http, Client(
            streamable_http_client(f"{served.url}/mcp", http_client=http),
            client_info=Implementation(name="oauth-agent", version="2"),
        ) as client:
            session = newest(mock)
            # The token lives 1 s for the SDK (expires_in) but the mock's clock is frozen:
            # once the SDK's own clock passes it, its next request refreshes first.
            while len(storage.tokens) < 2:
                await client.list_tools()
                await asyncio.sleep(0.1)
            await client.list_tools()
            return session

    session = asyncio.run(run())
    assert len(handlers.urls) == 1  # one authorization, then refreshes
    query = parse_qs(urlsplit(handlers.urls[0]).query)
    assert query["client_id"] == [f"app_{DEV_APP}"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["mcp:invoke"]
    assert query["resource"] == [f"{served.url}/mcp"]
    assert session["clientInfo"] == {"name": "oauth-agent", "version": "2"}
    first, second = storage.tokens[0], storage.tokens[1]
    assert first.refresh_token and second.refresh_token and first.refresh_token != second.refresh_token
    spent = httpx.post(f"{served.url}/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": first.refresh_token,
        "client_id": f"app_{DEV_APP}"})
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"



def test_the_sdk_is_told_in_json_rpc_that_a_live_session_is_initialized_already(
    mock: KontextMock, served: RunningServer,
) -> None:
    # a client that sends initialize with the id of a live session (here: a stale header of
    # its HTTP client) gets the server's JSON-RPC error, not a second session
    token = token_for(mock, served)["access_token"]

    async def run() -> None:
        async with gateway_client(mock, token) as http, Client(
            streamable_http_client(f"{served.url}/mcp", http_client=http),
            client_info=Implementation(name="first", version="1"),
        ):
            live = newest(mock)["id"]
            sessions = len(mock.state.gateway.links)
            stale = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}",
                                                "Mcp-Session-Id": live}, event_hooks=checked(mock))
            async with stale:
                with pytest.raises(BaseExceptionGroup) as refused:  # (out of the SDK's task group)
                    async with Client(streamable_http_client(f"{served.url}/mcp", http_client=stale),
                                      client_info=Implementation(name="second", version="1")):
                        pass
            assert refused.group_contains(MCPError, match="already initialized", depth=None)
            assert len(mock.state.gateway.links) == sessions
            assert newest(mock)["id"] == live and newest(mock)["status"] == "active"

    asyncio.run(run())
