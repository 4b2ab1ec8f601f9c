"""JSON-RPC 2.0, as the MCP gateway speaks it: what kind a message is, its error codes,
and the error answered over HTTP when a message cannot even be read.

The gateway (``core/gateway.py``) answers the messages it can read; a body that is no
JSON, or no JSON-RPC message at all, is refused before it with :class:`JsonRpcError`, in
JSON-RPC's words (``-32700`` Parse error, ``-32600`` Invalid Request, ``id`` null), as
JSON-RPC 2.0 section 5.1 and the MCP Streamable HTTP transport ask; never the REST API's
``validation_error``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from kontext_mock.core.errors import ApiError

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "TRANSPORT_ERROR",
    "JsonRpcError",
    "MessageKind",
    "jsonrpc_error",
    "message_kind",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
#: a refusal by the HTTP transport itself, before any message is read (406, 415, 413,
#: 405...): the implementation-defined server error the TypeScript SDK's server answers
TRANSPORT_ERROR = -32000


class MessageKind(Enum):
    """What a JSON-RPC 2.0 message is."""

    #: a method and an id: answered with a response
    REQUEST = "request"
    #: a method and no id: never answered
    NOTIFICATION = "notification"
    #: an id with a result or an error: the client's answer to a server's request
    RESPONSE = "response"


def message_kind(message: Any) -> MessageKind | None:
    """The kind of a JSON-RPC 2.0 message; None when it is none (JSON-RPC's "Invalid
    Request": not an object, no ``"jsonrpc": "2.0"``, an id that is no string or number,
    ``params`` that are no object or array, a response with both or neither of
    ``result`` and ``error``)."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return None
    has_id = "id" in message
    request_id = message.get("id")
    if has_id and (isinstance(request_id, bool) or not isinstance(request_id, str | int)):
        return None
    if "method" in message:
        params = message.get("params")  # (null: as if left out, as the SDKs read it)
        if not isinstance(message["method"], str) \
                or not (params is None or isinstance(params, dict | list)):
            return None
        return MessageKind.REQUEST if has_id else MessageKind.NOTIFICATION
    if has_id and ("result" in message) != ("error" in message):
        return MessageKind.RESPONSE
    return None


def jsonrpc_error(code: int, message: str, request_id: Any = None) -> dict[str, Any]:
    """A JSON-RPC 2.0 error response."""
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class JsonRpcError(ApiError):
    """A request refused before any message in it was read, answered as a JSON-RPC 2.0
    error response with ``id`` null (a body that is no JSON: ``PARSE_ERROR``; anything
    else that cannot be read, a header included: ``INVALID_REQUEST``)."""

    def __init__(self, status: int, rpc_code: int, message: str, *,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, "jsonrpc_error", message, headers=headers)
        self.rpc_code = rpc_code

    def body(self) -> dict[str, Any]:
        """The JSON-RPC error response."""
        return jsonrpc_error(self.rpc_code, self.message)
