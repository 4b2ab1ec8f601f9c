"""What the MCP gateway holds between requests: its OAuth grants, the MCP sessions it
serves, the server-to-client streams open on them, and the tools it offers.

None of it is part of a state document or a state file: tokens and links are forgotten
when the state is replaced (a reset, a restore, a scenario), and clients authenticate
and initialize again, as they do when the real gateway forgets them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kontext_mock.core.records import AccessToken

__all__ = ["GatewayGrants", "GatewayState", "IssuedCode", "McpLink", "RefreshGrant", "SpentCode"]


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """An authorization code waiting to be redeemed."""

    client_id: str
    redirect_uri: str
    challenge: str
    scopes: frozenset[str]
    resource: str | None
    user_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a refresh token grants again."""

    client_id: str
    scopes: frozenset[str]
    audience: str | None
    user_id: str
    #: the authorization code's grant it descends from (None: not from a code)
    grant: str | None = None


@dataclass(frozen=True, slots=True)
class SpentCode:
    """An authorization code redeemed once: the grant its tokens carry, kept so that a
    second redemption can revoke them (RFC 6749 section 4.1.2)."""

    client_id: str
    grant: str
    #: forgotten after this (a reuse later is an unknown code)
    kept_until: datetime


class GatewayGrants:
    """What the gateway's OAuth holds: codes waiting, codes spent, refresh tokens,
    access tokens."""

    def __init__(self) -> None:
        self.codes: dict[str, IssuedCode] = {}
        self.spent: dict[str, SpentCode] = {}
        self.refresh: dict[str, RefreshGrant] = {}
        self.access: dict[str, AccessToken] = {}

    def clear(self) -> None:
        """Forget every code and token (the state was replaced)."""
        self.codes.clear()
        self.spent.clear()
        self.refresh.clear()
        self.access.clear()

    def revoke_client(self, client_id: str) -> int:
        """End every code and token of a client; how many access tokens went."""
        gone = [k for k, t in self.access.items() if t.client_id == client_id]
        for key in gone:
            del self.access[key]
        for table in (self.codes, self.spent, self.refresh):
            for key in [k for k, v in table.items() if v.client_id == client_id]:
                del table[key]
        return len(gone)

    def revoke_grant(self, grant: str) -> int:
        """End every token, access and refresh, that descends from one authorization
        code's grant; how many access tokens went."""
        gone = [k for k, t in self.access.items() if t.grant == grant]
        for key in gone:
            del self.access[key]
        for key in [k for k, v in self.refresh.items() if v.grant == grant]:
            del self.refresh[key]
        return len(gone)


@dataclass(slots=True)
class McpLink:
    """An MCP session the gateway serves: the session record's id is its ``Mcp-Session-Id``."""

    application_id: str
    protocol_version: str
    #: the authorization code's grant of the token that opened it (None: not from a code):
    #: a reused code's revocation ends the session with the token
    grant: str | None = None


@dataclass(slots=True)
class GatewayState:
    """The gateway's part of the mock's state (see the module's docstring)."""

    grants: GatewayGrants = field(default_factory=GatewayGrants)
    #: session id -> the MCP session on it
    links: dict[str, McpLink] = field(default_factory=dict)
    #: the tools ``tools/list`` offers, each with what ``tools/call`` answers (``result``)
    tools: list[dict[str, Any]] = field(default_factory=list)
    _watchers: dict[str, dict[int, Callable[[], None]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next: int = 0

    def watch(self, session_id: str, ended: Callable[[], None]) -> Callable[[], None]:
        """Call ``ended`` (from any thread) once the session ends; returns what stops
        watching. A session the gateway does not serve has ended already."""
        with self._lock:
            if session_id not in self.links:
                ended()
                return lambda: None
            self._next += 1
            key = self._next
            self._watchers.setdefault(session_id, {})[key] = ended

        def unwatch() -> None:
            with self._lock:
                watchers = self._watchers.get(session_id)
                if watchers is not None:
                    watchers.pop(key, None)
                    if not watchers:
                        del self._watchers[session_id]

        return unwatch

    def watching(self, session_id: str | None = None) -> int:
        """How many streams wait for their session's end (of ``session_id``'s, or all)."""
        with self._lock:
            if session_id is not None:
                return len(self._watchers.get(session_id, ()))
            return sum(len(w) for w in self._watchers.values())

    def end(self, session_id: str) -> None:
        """The session ended: forget its link and end its streams."""
        self.end_all([session_id])

    def end_all(self, session_ids: list[str]) -> None:
        """The sessions ended: forget their links and end their streams."""
        with self._lock:
            ending: list[Callable[[], None]] = []
            for session_id in session_ids:
                self.links.pop(session_id, None)
                ending.extend(self._watchers.pop(session_id, {}).values())
        for ended in ending:
            with contextlib.suppress(Exception):  # a stream's loop that closed meanwhile
                ended()

    def clear(self) -> None:
        """Forget everything but the tools (the state was replaced): every stream ends."""
        self.grants.clear()
        with self._lock:
            self.links.clear()
            watchers, self._watchers = self._watchers, {}
        for every in watchers.values():
            for ended in every.values():
                with contextlib.suppress(Exception):
                    ended()
