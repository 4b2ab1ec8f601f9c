"""The MCP gateway, checked as an MCP client sees it (stateful: it opens sessions).

One rule, ``mcp-gateway-session``, plays what an MCP SDK does against ``{base}/mcp``: the
protected-resource metadata, a gateway token from the RFC 8693 token exchange of the
run's token, the ``server/discover`` probe, ``initialize`` with a ``clientInfo``, a
message, ``DELETE``; then a second session ended by revoke-all. The sessions API is read
between the steps: the session must be listed with what the client reported, moved by
its traffic, disconnected by ``DELETE``, and revoke-all must end it and the gateway
tokens. It runs against a mock (with a control plane) and, opt-in, against any target
with ``--mcp``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kontext_mock.contracts.assumptions import (
    MCP_DISCOVER,
    MCP_HOSTNAME,
    MCP_METADATA,
    MCP_RECORD,
    MCP_REVOKE,
)
from kontext_mock.contracts.context import BadAnswerError, Outcome
from kontext_mock.contracts.http import Exchange
from kontext_mock.contracts.report import Violation
from kontext_mock.contracts.rules import register

if TYPE_CHECKING:
    from kontext_mock.contracts.stateful import StatefulLayer

__all__ = ["RULE", "mcp_gateway_session"]

RULE = "mcp-gateway-session"
_VERSION = "2025-06-18"
_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a token type
_USER_AGENT = "kontext-contract-mcp/1"


def _rpc(method: str, request_id: int | None = 1, params: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params is not None:
        message["params"] = params
    return message


@register(RULE, "stateful",
          "an MCP client's session at {base}/mcp is listed with what it reported (clientInfo, "
          "User-Agent, hostname), moved by its messages, disconnected by DELETE, and ended "
          "with its gateway tokens by revoke-all",
          assumes=(MCP_METADATA, MCP_DISCOVER, MCP_RECORD, MCP_HOSTNAME, MCP_REVOKE))
def mcp_gateway_session(layer: StatefulLayer) -> Outcome:
    ctx = layer.ctx
    if ctx.control is None and not ctx.options.mcp:
        return Outcome.skipped("not checked: it opens MCP sessions on the target (give --mcp)")
    try:
        return _check(layer)
    except BadAnswerError as exc:
        return Outcome.judged([exc.violation(RULE)], 1, "")


def _check(layer: StatefulLayer) -> Outcome:
    ctx = layer.ctx
    client = ctx.client
    found: list[Violation] = []
    checks = 0

    def expect(held: bool, assumption: str | None, message: str, ex: Exchange | None) -> None:
        nonlocal checks
        checks += 1
        if not held:
            found.append(ctx.violation(RULE, message, ex, assumption))
        elif assumption is not None:
            ctx.ledger.confirm(assumption, RULE)

    # RFC 9728: the metadata, and the 401 that names it
    meta = client.get("/.well-known/oauth-protected-resource/mcp", auth=None,
                      operation="getProtectedResourceMetadata")
    body = meta.json_or_none()
    expect(meta.status == 200 and isinstance(body, dict)
           and str(body.get("resource", "")).endswith("/mcp"), MCP_METADATA,
           "no protected-resource metadata naming the gateway", meta)
    bare = client.request("POST", "/mcp", json=_rpc("ping"), auth=None, operation="mcpMessage")
    expect(bare.status == 401 and "resource_metadata=" in bare.headers.get("WWW-Authenticate", ""),
           MCP_METADATA, "the gateway's 401 does not name its resource metadata", bare)

    # a gateway token: the token exchange of the run's token
    grant = client.request("POST", "/oauth2/token", auth=None, operation="issueToken", form={
        "grant_type": _EXCHANGE, "subject_token": client.token(),
        "subject_token_type": _ACCESS_TOKEN, "client_id": f"app_{ctx.application_id}",
        "resource": "mcp-gateway", "scope": "gateway:access"})
    granted = grant.json_or_none()
    if grant.status != 200 or not isinstance(granted, dict) or "access_token" not in granted:
        raise BadAnswerError(f"the token exchange for a gateway token answered {grant.status}",
                             grant)
    token = f"Bearer {granted['access_token']}"

    probe = client.request("POST", "/mcp", json=_rpc("server/discover"), auth=token,
                           headers={"MCP-Protocol-Version": "2026-07-28"}, operation="mcpMessage")
    answer = probe.json_or_none()
    code = (answer.get("error") or {}).get("code") if isinstance(answer, dict) else None
    expect(probe.status >= 400 or code == -32601, MCP_DISCOVER,
           f"the server/discover probe was answered {probe.status} without an error, so SDK "
           "clients would never initialize", probe)

    session_id, _ = _initialize(layer, token, f"contract-{ctx.seed}")
    headers = {"Mcp-Session-Id": session_id, "MCP-Protocol-Version": _VERSION}
    record, read = ctx.get_session(session_id)
    info = record.get("clientInfo") or {}
    expect(info.get("name") == "kontext-contract" and record.get("userAgent") == _USER_AGENT
           and record.get("agentId") == ctx.application_id and record.get("status") == "active",
           MCP_RECORD, "the session does not carry the initialize's clientInfo, User-Agent and "
           f"application: {record}", read)
    expect(record.get("hostname") == f"contract-{ctx.seed}", MCP_HOSTNAME,
           f"hostname is {record.get('hostname')!r}, not the clientInfo.hostname sent", read)

    if ctx.control is not None:
        ctx.control.advance("2m")  # (without a control plane, time moves by itself)
    pinged = client.request("POST", "/mcp", json=_rpc("ping", 2), auth=token, headers=headers,
                            operation="mcpMessage")
    if pinged.status != 200:
        raise BadAnswerError(f"a ping on the session answered {pinged.status}", pinged)
    moved, read = ctx.get_session(session_id)
    expect(str(moved.get("lastActiveAt") or "") > str(record.get("lastActiveAt") or ""),
           MCP_RECORD, "a message did not move lastActiveAt", read)

    ended = client.request("DELETE", "/mcp", auth=token, headers=headers,
                           operation="mcpEndSession")
    after, read = ctx.get_session(session_id)
    expect(ended.status < 300 and after.get("status") == "disconnected"
           and after.get("disconnectedAt") is not None, None,
           f"DELETE /mcp answered {ended.status} and left the session {after.get('status')}",
           read)

    # revoke-all ends a second session and the gateway tokens
    second, _ = _initialize(layer, token, f"contract-{ctx.seed}-2")
    revoked = client.request("DELETE", ctx.sessions_path, operation="revokeAllSessions")
    if revoked.status != 200:
        raise BadAnswerError(f"revoke-all answered {revoked.status}", revoked)
    gone, read = ctx.get_session(second)
    expect(gone.get("status") == "disconnected", MCP_REVOKE,
           "revoke-all left the MCP session connected", read)
    again = client.request("POST", "/mcp", json=_initialize_message("again"), auth=token,
                           headers={"User-Agent": _USER_AGENT}, operation="mcpMessage")
    expect(again.status == 401, MCP_REVOKE,
           f"initialize with a gateway token of a revoked application answered {again.status}",
           again)
    return Outcome.judged(found, checks, f"{checks} checks on 2 MCP sessions")


def _initialize_message(hostname: str) -> dict[str, Any]:
    return _rpc("initialize", 1, {
        "protocolVersion": _VERSION, "capabilities": {},
        "clientInfo": {"name": "kontext-contract", "version": "1", "hostname": hostname}})


def _initialize(layer: StatefulLayer, token: str, hostname: str) -> tuple[str, Exchange]:
    ex = layer.ctx.client.request("POST", "/mcp", json=_initialize_message(hostname), auth=token,
                                  headers={"User-Agent": _USER_AGENT}, operation="mcpMessage")
    session = ex.headers.get("Mcp-Session-Id")
    if ex.status != 200 or not session:
        raise BadAnswerError(f"initialize answered {ex.status} without an Mcp-Session-Id", ex)
    return session, ex
