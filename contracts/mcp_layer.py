"""The ``mcp`` layer (``kontext-contract --mcp``): the official MCP Python SDK connects to
the target's gateway (``{base}/mcp``) and the kit reads back, through the sessions API,
what its session became.

One scripted walk, judged by several rules: the session appears with what the client
reported; holding the client's stream open is not activity; a message is; the client's
``DELETE`` disconnects it; with ``--destructive``, revoke-all ends a second client's
session and its tokens. Most of it is inferred (the vendor documents the gateway, not how
its sessions become records): those violations name their assumption, so against a mock
they fail the run and against anything else they are drift. What is stated (a connected
client, a terminated session's id answered 404, revoke-all disconnecting a connected
session) fails the run wherever it is broken.

Time passes on a mock's clock (its control plane moves it); elsewhere the kit waits a
couple of seconds of real time. The SDK is imported only here, and only with ``--mcp``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

from kontext_mock.contracts.assumptions import (
    MCP_DELETE_DISCONNECTS,
    MCP_DISCOVER_REFUSED,
    MCP_HOSTNAME,
    MCP_INITIALIZE_ONCE,
    MCP_REQUIRE_ACCEPT,
    MCP_RESOURCE_METADATA,
    MCP_REVOKE_ENDS_TOKENS,
    MCP_SESSION_RECORD,
    MCP_STREAM_NOT_ACTIVITY,
    MCP_TOKEN_EXPIRY,
)
from kontext_mock.contracts.budget import BudgetSpentError
from kontext_mock.contracts.context import BadAnswerError, Outcome, RunContext
from kontext_mock.contracts.errors import ContractError
from kontext_mock.contracts.http import Exchange
from kontext_mock.contracts.invariants import parse_time
from kontext_mock.contracts.mcp_access import GatewayAccess, gateway_access, refreshed
from kontext_mock.contracts.mcp_wire import Wire, answer_of, sdk_http_client
from kontext_mock.contracts.report import Violation
from kontext_mock.contracts.rules import register, registered

__all__ = ["INSTALL_HINT", "McpLayer", "require_sdk"]

INSTALL_HINT = ("--mcp needs the official MCP Python SDK: pip install 'kontext-mock[mcp]' "
                "(or pip install 'mcp>=2.3')")
#: what the kit's client says it is
CLIENT_NAME = "kontext-contract"
#: how far a mock's clock is moved, or how long the kit waits elsewhere, between steps
_MOCK_STEP = "90s"
_REAL_WAIT = 2.0
# Times compared with the server's Date header (to the second) get this much slack.
_SLACK = timedelta(seconds=2)
# How long the client's stream may take to open (a guard only: it opens at once).
_STREAM_GUARD = 10.0
_STATELESS = "2026-07-28"


def require_sdk() -> None:
    """:class:`ContractError` (exit 2) saying how to install the SDK when it is missing."""
    try:
        import httpx2  # noqa: F401
        import mcp  # noqa: F401
    except ImportError:
        raise ContractError(INSTALL_HINT) from None


def _kit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kontext-mock")
    except PackageNotFoundError:
        return "0"


class McpLayer:
    """The ``mcp`` layer's walk and the outcomes of its rules."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        # On a mock the kit's second application (the one its revoke-all runs on) keeps
        # the application under test's data as the other layers left it.
        self.app = str(ctx.extra.get("revoke_application") or ctx.application_id)
        self.nonce = secrets.token_hex(6)
        self.user_agent = f"{CLIENT_NAME}/{_kit_version()} (mcp; {self.nonce})"
        self.extra_info = {"sessionId": f"{CLIENT_NAME}-{self.nonce}",
                           "hostname": f"{CLIENT_NAME}-{self.nonce}.invalid"}
        self.outcomes: dict[str, Outcome] = {}
        self.found: dict[str, list[Violation]] = {}
        self.checks: dict[str, int] = {}
        self.access: GatewayAccess | None = None
        self.url = f"{ctx.client.base_url}/mcp"
        #: the client's session record as first read (None: not found)
        self.record: dict[str, Any] | None = None

    def run(self, wanted: Callable[[str], bool]) -> dict[str, Outcome]:
        """Outcomes of the ``mcp`` rules ``wanted`` admits."""
        started = time.monotonic()
        try:
            self._walk()
        except Exception as raised:
            # What the kit raised inside the SDK's client reaches here in an exception group.
            exc = _leaf(raised)
            if isinstance(exc, ContractError):  # no verdict possible (exit 2)
                raise exc from None
            if isinstance(exc, BudgetSpentError):
                self.ctx.notes.append("the mcp layer stopped: the request budget was spent")
            else:  # a bad answer, or the SDK's client failed: the rules not yet judged fail
                for r in registered("mcp"):
                    if r.name not in self.checks and r.name not in self.outcomes:
                        self.outcomes[r.name] = Outcome.judged([
                            exc.violation(r.name) if isinstance(exc, BadAnswerError) else
                            Violation(r.name, f"the MCP client failed: {_describe(exc)}")],
                            1, "")
        out: dict[str, Outcome] = {}
        for r in registered("mcp"):
            if wanted(r.name):
                out[r.name] = r.check(self)
                out[r.name].duration = time.monotonic() - started
                self.ctx.progress(f"  {r.name}: {out[r.name].status}")
        return out

    # -- the rules: verdicts on the one walk -------------------------------------------------

    def _outcome(self, name: str, detail: str, unrun: str) -> Outcome:
        if name in self.outcomes:
            return self.outcomes[name]
        if name not in self.checks:
            return Outcome.skipped(unrun)
        return Outcome.judged(self.found.get(name, []), self.checks[name], detail)

    @register("mcp-resource-metadata", "mcp",
              "a request to the gateway without a token is answered 401 naming the gateway's "
              "protected-resource metadata (RFC 9728), which names the gateway",
              assumes=(MCP_RESOURCE_METADATA,))
    def resource_metadata(self) -> Outcome:
        return self._outcome("mcp-resource-metadata", "the 401 names the metadata, which "
                             "names the gateway", "not checked")

    @register("mcp-session-listed", "mcp",
              "an MCP client's session is listed, and read by id, with what it reported: "
              "clientInfo, User-Agent, hostname, the token's application and expiry",
              assumes=(MCP_SESSION_RECORD, MCP_HOSTNAME, MCP_DISCOVER_REFUSED))
    def session_listed(self) -> Outcome:
        return self._outcome("mcp-session-listed", "the client's session is listed with what "
                             "it reported", "not checked: the client did not connect")

    @register("mcp-stream-not-activity", "mcp",
              "holding the client's GET stream open does not move lastActiveAt",
              assumes=(MCP_STREAM_NOT_ACTIVITY,))
    def stream_not_activity(self) -> Outcome:
        return self._outcome("mcp-stream-not-activity", "lastActiveAt stayed while the "
                             "stream was open", "not checked: the client's stream did not open")

    @register("mcp-traffic-moves-last-active", "mcp",
              "a JSON-RPC message moves the session's lastActiveAt to the server's now (and "
              "a refreshed token's later expiry becomes tokenExpiresAt)",
              assumes=(MCP_SESSION_RECORD, MCP_TOKEN_EXPIRY))
    def traffic(self) -> Outcome:
        return self._outcome("mcp-traffic-moves-last-active", "a message (tools/list) moved lastActiveAt",
                             "not checked: the client did not connect")

    @register("mcp-initialize-once", "mcp",
              "initialize sent with the Mcp-Session-Id of the client's live session is refused "
              "(400, a JSON-RPC error) and opens no second session",
              assumes=(MCP_INITIALIZE_ONCE,))
    def initialize_once(self) -> Outcome:
        return self._outcome("mcp-initialize-once", "initialize within the live session was "
                             "refused", "not checked: the client did not connect")

    @register("mcp-accept-required", "mcp",
              "a POST whose Accept lacks text/event-stream is refused 406 with a JSON-RPC "
              "error, and opens no session", assumes=(MCP_REQUIRE_ACCEPT,))
    def accept_required(self) -> Outcome:
        return self._outcome("mcp-accept-required", "initialize accepting only JSON was "
                             "refused 406", "not checked")

    @register("mcp-delete-disconnects", "mcp",
              "the client's DELETE disconnects its session (disconnectedAt then), and the "
              "session id is then answered 404", assumes=(MCP_DELETE_DISCONNECTS,))
    def delete_disconnects(self) -> Outcome:
        return self._outcome("mcp-delete-disconnects", "DELETE disconnected the session",
                             "not checked: the client did not connect")

    @register("mcp-revoke-ends-session", "mcp",
              "revoke-all (destructive) disconnects a connected MCP client's session, its "
              "next request is refused, and its tokens (access and refresh) stop working",
              assumes=(MCP_REVOKE_ENDS_TOKENS,))
    def revoke_ends(self) -> Outcome:
        unrun = ("read-only run (give --destructive to check it)" if not self.ctx.destructive
                 else "not checked: the client did not connect")
        return self._outcome("mcp-revoke-ends-session", "revoke-all ended the client's "
                             "session and tokens", unrun)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _check(self, rule: str, ok: bool, message: str, ex: Exchange | None = None,
               assumption: str | None = None) -> bool:
        """One check of ``rule``: a violation when not ``ok``, else the assumption held."""
        self.checks[rule] = self.checks.get(rule, 0) + 1
        if not ok:
            self.found.setdefault(rule, []).append(
                self.ctx.violation(rule, message, ex, assumption))
        elif assumption is not None:
            self.ctx.ledger.confirm(assumption, rule)
        return ok

    def _record(self, session_id: str | None) -> tuple[dict[str, Any] | None, Exchange]:
        """The session record of the client's session: read by the ``Mcp-Session-Id``
        when that is the record's id, else found in the list by what the client reported."""
        ctx = self.ctx
        path = f"/api/v1/applications/{self.app}/sessions"
        if session_id:
            ex = ctx.client.get(f"{path}/{session_id}", operation="getSession")
            body = ex.json_or_none()
            if ex.status == 200 and isinstance(body, dict) and isinstance(body.get("session"), dict):
                return body["session"], ex
        items, ex = ctx.list_sessions({"status": "all", "limit": ctx.max_limit}, self.app)
        marker = self.extra_info["sessionId"]
        for item in items:
            info = item.get("clientInfo")
            if item.get("id") == session_id or (isinstance(info, dict)
                                                and info.get("sessionId") == marker):
                return item, ex
        return None, ex

    def _pass_time(self) -> None:
        """Let time pass between two reads: a mock's clock is moved, elsewhere the kit waits."""
        if self.ctx.control is not None:
            self.ctx.control.advance(_MOCK_STEP)
        else:
            time.sleep(_REAL_WAIT)

    # -- the walk ---------------------------------------------------------------------------------

    def _walk(self) -> None:
        ctx = self.ctx
        self._metadata()
        self.access = gateway_access(ctx.client, self.app, ctx.extra.get("mcp_token"),
                                     ctx.control is not None)
        ctx.progress(f"  gateway token for application {self.app} ({self.access.how})")
        asyncio.run(self._sessions())

    def _metadata(self) -> None:
        rule = "mcp-resource-metadata"
        ex = self.ctx.client.get("/mcp", auth=None, operation="mcpStream")
        if not self._check(rule, ex.status == 401, f"GET /mcp without a token answered "
                           f"{ex.status}, not 401", ex):
            return
        challenge = ex.headers.get("WWW-Authenticate", "")
        named = _param(challenge, "resource_metadata")
        if not self._check(rule, named is not None, "the 401 of /mcp names no resource_metadata "
                           f"in its challenge ({challenge[:120]!r})", ex, MCP_RESOURCE_METADATA):
            return
        assert named is not None
        base = self.ctx.client.base_url
        if not named.startswith(base + "/"):
            self.ctx.ledger.note(MCP_RESOURCE_METADATA, rule,
                                 f"the metadata is at another origin ({named}): not read")
            return
        meta = self.ctx.client.get(named[len(base):], auth=None,
                                   operation="getProtectedResourceMetadata")
        body = meta.json_or_none()
        resource = body.get("resource") if isinstance(body, dict) else None
        self._check(rule, meta.status == 200 and resource == self.url,
                    f"the protected-resource metadata answered {meta.status} naming "
                    f"{resource!r}, not the gateway {self.url}", meta, MCP_RESOURCE_METADATA)

    async def _sessions(self) -> None:
        """The client's session from connect to DELETE; then, destructive, a second one
        that revoke-all ends."""
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client
        from mcp_types import Implementation

        assert self.access is not None
        wire = Wire()
        info = Implementation(name=CLIENT_NAME, version=_kit_version())
        await self._accept_refused(httpx2)
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(self._http(httpx2, wire))
            try:
                client = await stack.enter_async_context(Client(
                    streamable_http_client(self.url, http_client=http), client_info=info))
            except Exception as exc:  # what the SDK raised, shown as is
                self._connect_failed(wire, exc)
                return
            await self._listed(wire, client.protocol_version)
            await self._initialize_again(httpx2, wire, client.protocol_version)
            await self._stream_and_traffic(wire, client, http)
            before_close = await asyncio.to_thread(self._record, wire.session_id)
        # leaving the client's context sent its DELETE
        await self._closed(wire, before_close[1])
        if self.ctx.destructive:
            await self._revoked(httpx2, Client, streamable_http_client, info)

    def _http(self, httpx2: Any, wire: Wire) -> Any:
        assert self.access is not None
        return sdk_http_client(httpx2, wire, self.user_agent, self.access.token,
                               self.extra_info, self.ctx.options.timeout)

    def _connect_failed(self, wire: Wire, exc: BaseException) -> None:
        refused = wire.statuses("POST", "initialize")
        if refused and refused[-1] == 401:
            raise ContractError(f"--mcp: the gateway {self.url} refused the gateway token "
                                f"({self.access.how if self.access else '?'}) with 401")
        for name in ("mcp-session-listed", "mcp-traffic-moves-last-active",
                     "mcp-delete-disconnects", "mcp-stream-not-activity", "mcp-initialize-once"):
            self.outcomes[name] = Outcome.judged([Violation(
                name, f"the MCP client could not connect to {self.url}: "
                f"{_describe(exc)} (answers: {wire.seen[-3:]})")], 1, "")

    async def _listed(self, wire: Wire, version: str | None) -> None:
        rule = "mcp-session-listed"
        probed = wire.statuses("POST", "server/discover")
        if probed:
            self._check(rule, not wire.discover_answered and version != _STATELESS,
                        f"the gateway answered the stateless probe server/discover (the client "
                        f"negotiated {version}), so the client never initialized", None,
                        MCP_DISCOVER_REFUSED)
        session, ex = await asyncio.to_thread(self._record, wire.session_id)
        if not self._check(rule, session is not None, f"no session of application {self.app} "
                           f"is the client's (Mcp-Session-Id {wire.session_id}, clientInfo."
                           f"sessionId {self.extra_info['sessionId']}) after it connected", ex,
                           MCP_SESSION_RECORD):
            return
        assert session is not None
        self.record = session
        reported = session.get("clientInfo")
        reported = reported if isinstance(reported, dict) else {}
        sent = {k: v for k, v in wire.client_info.items() if k != "hostname"}
        differs = sorted(k for k, v in sent.items() if reported.get(k) != v)
        self._check(rule, not differs, f"clientInfo is {reported}, not what the client sent "
                    f"({sent}): {', '.join(differs)} differ", ex, MCP_SESSION_RECORD)
        self._check(rule, session.get("userAgent") == self.user_agent,
                    f"userAgent is {session.get('userAgent')!r}, not the client's User-Agent "
                    f"{self.user_agent!r}", ex, MCP_SESSION_RECORD)
        self._check(rule, session.get("agentId") == self.app, f"agentId is "
                    f"{session.get('agentId')!r}, not the token's application {self.app}", ex,
                    MCP_SESSION_RECORD)
        self._check(rule, session.get("status") == "active"
                    and session.get("derivedStatus") == "active",
                    f"a session just connected is status {session.get('status')}, derivedStatus "
                    f"{session.get('derivedStatus')}", ex, MCP_SESSION_RECORD)
        self._check(rule, session.get("hostname") == self.extra_info["hostname"],
                    f"hostname is {session.get('hostname')!r}, not the clientInfo.hostname "
                    f"{self.extra_info['hostname']!r}", ex, MCP_HOSTNAME)
        expected = self.access.expires_at if self.access else None
        if expected is not None:
            got = parse_time(session.get("tokenExpiresAt"))
            self._check(rule, got is not None and abs(got - expected) <= _SLACK,
                        f"tokenExpiresAt is {session.get('tokenExpiresAt')}, not the token's "
                        f"expiry ({_iso(expected)})", ex, MCP_SESSION_RECORD)

    async def _initialize_again(self, httpx2: Any, wire: Wire, version: str | None) -> None:
        """``initialize`` once more, with the live session's id: a session is initialized
        once (the TypeScript SDK's server answers 400 "Server already initialized"). Sent
        by a client of its own, so that the SDK's session is not touched; a second session
        the target opened anyway is ended at once."""
        rule = "mcp-initialize-once"
        if self.record is None or wire.session_id is None or self.access is None:
            return
        headers = {"Authorization": f"Bearer {self.access.token}", "User-Agent": self.user_agent,
                   "Mcp-Session-Id": wire.session_id,
                   "Accept": "application/json, text/event-stream"}
        if version:
            headers["MCP-Protocol-Version"] = version
        message = {"jsonrpc": "2.0", "id": f"{CLIENT_NAME}-again", "method": "initialize",
                   "params": {"protocolVersion": version or "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": CLIENT_NAME, "version": _kit_version(),
                                             **self.extra_info}}}
        async with httpx2.AsyncClient(timeout=self.ctx.options.timeout) as raw:
            self.ctx.client.spend()
            answer = await raw.post(self.url, json=message, headers=headers)
            second = answer.headers.get("mcp-session-id")
            if second and second != wire.session_id:
                self.ctx.client.spend()
                await raw.delete(self.url, headers={**headers, "Mcp-Session-Id": second})
        body = answer_of(answer.headers.get("content-type", ""), answer.content, message["id"])
        error = body.get("error") if isinstance(body, dict) else None
        self._check(rule, answer.status_code == 400 and isinstance(error, dict)
                    and not second,
                    f"initialize with the Mcp-Session-Id of the live session was answered "
                    f"{answer.status_code}{f', opening session {second}' if second else ''}"
                    f"{'' if isinstance(error, dict) else ', not with a JSON-RPC error'}",
                    None, MCP_INITIALIZE_ONCE)

    async def _accept_refused(self, httpx2: Any) -> None:
        """``initialize`` accepting only ``application/json``: the MCP transport asks the
        client to accept an event stream too, and the SDKs' servers refuse it 406 (a
        JSON-RPC error). A session the target opened anyway is ended at once."""
        rule = "mcp-accept-required"
        assert self.access is not None
        headers = {"Authorization": f"Bearer {self.access.token}", "User-Agent": self.user_agent,
                   "Accept": "application/json", "MCP-Protocol-Version": "2025-06-18"}
        message = {"jsonrpc": "2.0", "id": f"{CLIENT_NAME}-accept", "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": CLIENT_NAME, "version": _kit_version(),
                                             **self.extra_info}}}
        async with httpx2.AsyncClient(timeout=self.ctx.options.timeout) as raw:
            self.ctx.client.spend()
            answer = await raw.post(self.url, json=message, headers=headers)
            opened = answer.headers.get("mcp-session-id")
            if opened:
                self.ctx.client.spend()
                await raw.delete(self.url, headers={
                    **headers, "Accept": "application/json, text/event-stream",
                    "Mcp-Session-Id": opened})
        body = answer_of(answer.headers.get("content-type", ""), answer.content, None)
        error = body.get("error") if isinstance(body, dict) else None
        self._check(rule, answer.status_code == 406 and isinstance(error, dict) and not opened,
                    f"initialize with Accept: application/json (no text/event-stream) was "
                    f"answered {answer.status_code}"
                    f"{f', opening session {opened}' if opened else ''}"
                    f"{'' if isinstance(error, dict) else ', not with a JSON-RPC error'}",
                    None, MCP_REQUIRE_ACCEPT)

    async def _stream_and_traffic(self, wire: Wire, client: Any, http: Any) -> None:
        if self.record is None:
            return
        deadline = time.monotonic() + _STREAM_GUARD
        while not wire.stream_opened() and time.monotonic() < deadline:
            gets = wire.statuses("GET")
            if gets and gets[-1] != 200:
                break  # the gateway offers no stream (405), or refused it
            await asyncio.sleep(0.05)
        opened = wire.stream_opened()
        # (read again: the client's notifications/initialized may have come after the first read)
        record, _ = await asyncio.to_thread(self._record, wire.session_id)
        first = (record or {}).get("lastActiveAt")
        await asyncio.to_thread(self._pass_time)
        quiet, ex = await asyncio.to_thread(self._record, wire.session_id)
        if opened and quiet is not None:
            self._check("mcp-stream-not-activity", quiet.get("lastActiveAt") == first,
                        f"lastActiveAt moved from {first} to {quiet.get('lastActiveAt')} while "
                        "the client only held its stream open", ex, MCP_STREAM_NOT_ACTIVITY)
        elif not opened:
            self.ctx.ledger.note(MCP_STREAM_NOT_ACTIVITY, "mcp-stream-not-activity",
                                 f"the client's GET stream did not open (GET answers: "
                                 f"{wire.statuses('GET')})")
        rule = "mcp-traffic-moves-last-active"
        renewed = await asyncio.to_thread(refreshed, self.ctx.client, self.access) \
            if self.access is not None else None
        if renewed is not None:
            self.access = renewed
            http.headers["Authorization"] = f"Bearer {renewed.token}"
        elif self.access is not None and self.access.refresh_token is None:
            self.ctx.ledger.note(MCP_TOKEN_EXPIRY, rule, "the kit's gateway token has no "
                                 f"refresh token ({self.access.how}): nothing to refresh")
        sent_after = ex.server_time
        try:
            await client.list_tools()
        except Exception as exc:  # what the SDK raised, shown as is
            self._check(rule, False, f"a request on the session (tools/list) failed: {_describe(exc)}")
            return
        moved, ex2 = await asyncio.to_thread(self._record, wire.session_id)
        if not self._check(rule, moved is not None, "the client's session is no longer found "
                           "after a message", ex2, MCP_SESSION_RECORD):
            return
        assert moved is not None
        was, now = parse_time(first), parse_time(moved.get("lastActiveAt"))
        ok = was is not None and now is not None and now > was and (
            sent_after is None or now >= sent_after - _SLACK)
        self._check(rule, ok, f"after a message (tools/list) lastActiveAt is {moved.get('lastActiveAt')}; it "
                    f"was {first} before, and the server's time before it was "
                    f"{_iso(sent_after)}", ex2, MCP_SESSION_RECORD)
        if renewed is not None and renewed.expires_at is not None:
            got = parse_time(moved.get("tokenExpiresAt"))
            self._check(rule, got is not None and abs(got - renewed.expires_at) <= _SLACK,
                        f"after a message with a refreshed token (expiring {_iso(renewed.expires_at)}"
                        f") tokenExpiresAt is {moved.get('tokenExpiresAt')}", ex2,
                        MCP_TOKEN_EXPIRY)

    async def _closed(self, wire: Wire, before: Exchange) -> None:
        rule = "mcp-delete-disconnects"
        if self.record is None:
            return
        deleted = wire.statuses("DELETE")
        if not self._check(rule, bool(deleted) and 200 <= deleted[-1] < 300,
                           f"the client's DELETE of its session was answered {deleted or 'never'}"
                           , before, MCP_DELETE_DISCONNECTS):
            return
        ended, ex = await asyncio.to_thread(self._record, wire.session_id)
        if ended is None:
            self._check(rule, False, "the client's session is no longer found after its DELETE",
                        ex, MCP_DELETE_DISCONNECTS)
            return
        at = parse_time(ended.get("disconnectedAt"))
        low, high = before.server_time, ex.server_time
        ok = (ended.get("status") == "disconnected" and ended.get("derivedStatus") == "disconnected"
              and at is not None and (low is None or at >= low - _SLACK)
              and (high is None or at <= high + _SLACK))
        self._check(rule, ok, f"after the client's DELETE its session is status "
                    f"{ended.get('status')}, derivedStatus {ended.get('derivedStatus')}, "
                    f"disconnectedAt {ended.get('disconnectedAt')} (the DELETE was between "
                    f"{_iso(low)} and {_iso(high)})", ex, MCP_DELETE_DISCONNECTS)
        status = await self._ping_raw(wire.session_id)
        # The MCP specification: a terminated session's id is answered 404.
        self._check(rule, status == 404, f"a ping with the ended session's Mcp-Session-Id "
                    f"was answered {status}, not 404")

    async def _ping_raw(self, session_id: str | None, method: str = "ping") -> int:
        """One JSON-RPC request outside the SDK (its session is over): the status."""
        import httpx2

        assert self.access is not None
        headers = {"Authorization": f"Bearer {self.access.token}", "User-Agent": self.user_agent,
                   "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": "2025-06-18"}
        if session_id:
            headers["Mcp-Session-Id"] = session_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
        if method == "initialize":
            message["params"] = {"protocolVersion": "2025-06-18", "capabilities": {},
                                 "clientInfo": {"name": CLIENT_NAME, "version": _kit_version(),
                                                **self.extra_info}}
        async with httpx2.AsyncClient(timeout=self.ctx.options.timeout) as http:
            answer = await http.post(self.url, json=message, headers=headers)
            if method == "initialize" and answer.status_code == 200:
                sid = answer.headers.get("mcp-session-id")
                if sid:  # end the session it opened
                    await http.delete(self.url, headers={**headers, "Mcp-Session-Id": sid})
            return int(answer.status_code)

    async def _revoked(self, httpx2: Any, client_type: Any, transport: Any, info: Any) -> None:
        rule = "mcp-revoke-ends-session"
        wire = Wire()
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(self._http(httpx2, wire))
            try:
                client = await stack.enter_async_context(client_type(
                    transport(self.url, http_client=http), client_info=info))
            except Exception as exc:  # what the SDK raised, shown as is
                self._check(rule, False, f"a second MCP client could not connect: {_describe(exc)}")
                return
            session, ex = await asyncio.to_thread(self._record, wire.session_id)
            if not self._check(rule, session is not None, "the second client's session is not "
                               "found", ex, MCP_SESSION_RECORD):
                return
            assert session is not None
            revoke = await asyncio.to_thread(
                self.ctx.client.request, "DELETE", f"/api/v1/applications/{self.app}/sessions",
                operation="revokeAllSessions")
            if not self._check(rule, revoke.status == 200, f"revoke-all answered {revoke.status}",
                               revoke):
                return
            ended, ex2 = await asyncio.to_thread(self._record, str(session.get("id")))
            self._check(rule, ended is not None and ended.get("status") == "disconnected",
                        f"after revoke-all the connected MCP session {session.get('id')} is "
                        f"{(ended or {}).get('status', 'gone')}, not disconnected", ex2)
            refused = await _fails(client.list_tools())
            self._check(rule, refused, "after revoke-all the client's next request on its session "
                        "succeeded", None, MCP_REVOKE_ENDS_TOKENS)
        status = await self._ping_raw(None, "initialize")
        self._check(rule, status == 401, f"after revoke-all an initialize with the client's "
                    f"token was answered {status}, not 401", None, MCP_REVOKE_ENDS_TOKENS)
        if self.access is not None and self.access.refresh_token is not None:
            again = await asyncio.to_thread(refreshed, self.ctx.client, self.access)
            self._check(rule, again is None, "after revoke-all the client's refresh token still "
                        "gave a new token", None, MCP_REVOKE_ENDS_TOKENS)


async def _fails(call: Awaitable[Any]) -> bool:
    try:
        await call
    except Exception:  # any refusal will do
        return True
    return False


def _param(challenge: str, name: str) -> str | None:
    """A parameter of a ``WWW-Authenticate`` challenge (quoted or not)."""
    found = re.search(rf'{name}="([^"]*)"|{name}=([^,\s]+)', challenge)
    return (found.group(1) or found.group(2)) if found else None


def _iso(at: datetime | None) -> str:
    return at.isoformat().replace("+00:00", "Z") if at is not None else "?"


def _leaf(exc: BaseException) -> BaseException:
    """An exception group's first leaf (anyio's task groups wrap what their body raised)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    """An exception in one line; an exception group by its first leaf."""
    exc = _leaf(exc)
    return f"{type(exc).__name__}: {exc}"[:300]

