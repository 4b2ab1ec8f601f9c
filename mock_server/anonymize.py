"""Anonymizing recorded sessions: what identifies people and machines, remapped consistently.

Hostnames, user agents, session names and session ids are replaced by made-up ones that
look real (the fake data's own generator, seeded); one original always maps to the same
replacement within a recording, so sessions that shared a host still do. What says
which client a session is (``clientInfo``) is kept, and so are application ids.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from kontext_mock.core.fakedata import SessionFaker

__all__ = ["Anonymizer"]

# Draws of the fake data's client generator before settling for any client's User-Agent.
_TRIES = 64


class Anonymizer:
    """Consistent replacements for one recording."""

    def __init__(self, seed: int = 0) -> None:
        self._faker = SessionFaker(seed, timedelta(minutes=5))
        self._hosts: dict[str, str] = {}
        self._agents: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self._ids: dict[str, str] = {}

    def _identity(self, client: str | None = None) -> tuple[str, str]:
        """A made-up hostname and User-Agent, of the client named ``client`` when the fake
        data knows it (so a session's User-Agent still goes with its clientInfo)."""
        fallback = None
        for _ in range(_TRIES):
            host, agent, info = self._faker.client_identity()
            if not (host and agent):
                continue  # the generator sometimes makes a client that reports nothing
            if client is None or (info or {}).get("name") == client:
                return host, agent
            fallback = fallback or (host, agent)
        assert fallback is not None
        return fallback

    def hostname(self, value: str | None) -> str | None:
        """A made-up hostname for ``value`` (None stays None)."""
        if value is None:
            return None
        if value not in self._hosts:
            self._hosts[value] = self._identity()[0]
        return self._hosts[value]

    def user_agent(self, value: str | None, client: str | None = None) -> str | None:
        """A made-up User-Agent for ``value``, of the same client when the fake data knows
        it (None stays None)."""
        if value is None:
            return None
        if value not in self._agents:
            self._agents[value] = self._identity(client)[1]
        return self._agents[value]

    def session_id(self, value: str) -> str:
        """A made-up session UUID for ``value``."""
        if value not in self._ids:
            self._ids[value] = str(uuid.UUID(int=self._faker.rng.getrandbits(128), version=4))
        return self._ids[value]

    def name(self, value: str, hostname: str | None, client: dict[str, Any] | None) -> str:
        """The session's name with its hostname replaced; a name that says something else is
        replaced whole (``<client> session N``)."""
        if hostname and hostname in value:
            return value.replace(hostname, self.hostname(hostname) or "")
        if value not in self._names:
            label = (client or {}).get("name") or "mcp-client"
            self._names[value] = f"{label} session {len(self._names) + 1}"
        return self._names[value]
