"""The HTTP client the ``mcp`` layer gives the official MCP Python SDK, and what it saw.

The SDK's streamable HTTP client takes an ``httpx2.AsyncClient``; the kit's sends its
User-Agent and gateway token, records every answer (:class:`Wire`: what the kit's rules
judge the transport by: the session id ``initialize`` got, the stream, the ``DELETE``,
the ``server/discover`` probe), and adds to ``initialize``'s ``clientInfo`` the fields a
stock SDK client cannot send: ``sessionId``, which the real gateway requires, and
``hostname``. The SDK's package is imported by the caller (``--mcp`` only) and handed in.
The kit's own requests outside the SDK read their answer, JSON or an event stream, with
:func:`answer_of`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Wire", "answer_of", "event_stream_messages", "loads", "sdk_http_client"]


@dataclass(slots=True)
class Wire:
    """What the SDK's HTTP client sent and got: (method, JSON-RPC method, status, media
    type), the session id the gateway gave, and the clientInfo the client sent."""

    seen: list[tuple[str, str | None, int, str]] = field(default_factory=list)
    session_id: str | None = None
    client_info: dict[str, Any] = field(default_factory=dict)
    #: True when the gateway answered ``server/discover`` with a result (None: no probe)
    discover_answered: bool | None = None

    def statuses(self, method: str, rpc: str | None = None) -> list[int]:
        """The statuses of the answers to ``method`` requests (of JSON-RPC ``rpc``)."""
        return [s for m, r, s, _ in self.seen if m == method and (rpc is None or r == rpc)]

    def stream_opened(self) -> bool:
        """True once a ``GET`` was answered with an event stream."""
        return any(m == "GET" and s == 200 and t == "text/event-stream"
                   for m, _, s, t in self.seen)


def sdk_http_client(httpx2: Any, wire: Wire, user_agent: str, token: str,
                    client_info: dict[str, str], timeout: float) -> Any:
    """An ``httpx2.AsyncClient`` for the SDK (see the module's docstring); change its
    ``Authorization`` header to send another token."""

    class Reporting(httpx2.AsyncBaseTransport):  # type: ignore[misc]
        """Adds ``client_info``'s fields to the clientInfo of ``initialize``."""

        def __init__(self) -> None:
            self.inner = httpx2.AsyncHTTPTransport()

        async def handle_async_request(self, request: Any) -> Any:
            message = _json_of(request)
            if isinstance(message, dict) and message.get("method") == "initialize":
                params = message.get("params") or {}
                sent = dict(params.get("clientInfo") or {}, **client_info)
                params["clientInfo"] = sent
                wire.client_info = sent
                headers = [(k, v) for k, v in request.headers.raw
                           if k.lower() != b"content-length"]
                request = httpx2.Request(request.method, request.url, headers=headers,
                                         content=json.dumps(message).encode(),
                                         extensions=request.extensions)
            return await self.inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    async def on_response(response: Any) -> None:
        request = response.request
        message = _json_of(request)
        rpc = message.get("method") if isinstance(message, dict) else None
        kind = response.headers.get("content-type", "").split(";")[0].strip()
        wire.seen.append((request.method, rpc, response.status_code, kind))
        if rpc == "initialize" and response.headers.get("mcp-session-id"):
            wire.session_id = response.headers["mcp-session-id"]
        if rpc == "server/discover":
            answered = False
            if response.status_code == 200 and kind == "application/json":
                await response.aread()
                body = loads(response.content)
                answered = isinstance(body, dict) and "result" in body
            wire.discover_answered = answered

    return httpx2.AsyncClient(
        headers={"User-Agent": user_agent, "Authorization": f"Bearer {token}"},
        transport=Reporting(), timeout=timeout, event_hooks={"response": [on_response]})


def _json_of(request: Any) -> Any:
    if request.method != "POST":
        return None
    try:
        return loads(request.content)
    except Exception:  # a streamed body: not a message the kit sent
        return None


def loads(raw: bytes) -> Any:
    """JSON, or None when it is not."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def answer_of(content_type: str, raw: bytes, request_id: Any) -> Any:
    """The JSON-RPC answer to the request ``request_id`` in a ``POST``'s response body:
    Streamable HTTP lets a server answer either as JSON or as an event stream whose
    message answers it (other messages, requests or notifications, may come first);
    None when the body holds no answer of that id."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        return loads(raw)
    if kind == "text/event-stream":
        for message in event_stream_messages(raw):
            if isinstance(message, dict) and message.get("id") == request_id \
                    and ("result" in message or "error" in message):
                return message
    return None


def event_stream_messages(raw: bytes) -> list[Any]:
    """The JSON data of each event of a whole ``text/event-stream`` body (the HTML
    standard's format: lines end with CRLF, LF or CR; an event's ``data:`` lines joined
    by line feeds; a blank line ends it; comments and other fields ignored). An event
    whose data is no JSON is left out."""
    messages: list[Any] = []
    data: list[str] = []
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    for line in [*text.split("\n"), ""]:
        if not line:
            if data:
                message = loads("\n".join(data).encode())
                if message is not None:
                    messages.append(message)
                data = []
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value.removeprefix(" "))
    return messages
