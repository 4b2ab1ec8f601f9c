"""OAuth 2.0 access tokens: issued to registered clients, expiring on the mock's clock."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from kontext_mock.core.credentials import KNOWN_SCOPES, covers, secrets_equal
from kontext_mock.core.errors import OAuthError, UnauthorizedError
from kontext_mock.core.records import AccessToken
from kontext_mock.core.state import MockState

__all__ = ["TOKEN_MEMORY", "TOKEN_SWEEP_FROM", "Tokens"]

#: issued tokens kept before the mock first looks for long-expired ones to forget
TOKEN_SWEEP_FROM = 10_000
#: how long an expired token is still known (and answers "expired", not "unknown")
TOKEN_MEMORY = timedelta(days=1)


class Tokens:
    """Bearer tokens: who they are, and new ones for the token endpoint."""

    def __init__(self, state: MockState) -> None:
        self.state = state
        #: how many tokens may be held before long-expired ones are looked for
        self.sweep_at = TOKEN_SWEEP_FROM

    def authenticate(self, token: str) -> AccessToken:
        """The stored token for a bearer string; 401 when unknown or expired on the mock's clock."""
        found = self.state.store.tokens.get(token)
        if found is None:
            raise UnauthorizedError("unknown bearer token")
        if found.expires_at is not None and found.expires_at <= self.state.clock.now():
            raise UnauthorizedError("the bearer token has expired")
        return found

    def issue_token(self, client_id: str, client_secret: str, scope: str | None = None
                    ) -> dict[str, Any]:
        """RFC 6749 client credentials: a token for a registered client, scoped as asked."""
        state = self.state
        store = state.store
        client = store.clients.get(client_id)
        # Compare even for unknown clients, so timing does not tell which ids exist.
        expected = client.client_secret if client else secrets.token_hex(16)
        if not secrets_equal(client_secret, expected) or client is None:
            raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
        if scope is None or not scope.strip():
            granted = client.scopes
        else:
            wanted = frozenset(scope.split())
            unknown = sorted(wanted - KNOWN_SCOPES)
            if unknown:
                raise OAuthError(400, "invalid_scope", f"unknown scope: {' '.join(unknown)}")
            refused = sorted(s for s in wanted if not covers(client.scopes, s))
            if refused:
                raise OAuthError(
                    400, "invalid_scope", f"the client may not request: {' '.join(refused)}"
                )
            granted = wanted
        ttl = state.config.token_ttl
        token = AccessToken(
            token=secrets.token_urlsafe(32),
            client_id=client.client_id,
            organization_id=client.organization_id,
            scopes=granted,
            application_id=client.application_id,
            expires_at=state.clock.now() + ttl,
        )
        store.add_token(token)
        if len(store.tokens) >= self.sweep_at:
            # A long run that asks for many tokens (a load test) would keep every one;
            # those expired for a day go (asked for again, they answer "unknown").
            store.forget_tokens_expired_before(state.clock.now() - TOKEN_MEMORY)
            self.sweep_at = max(TOKEN_SWEEP_FROM, 2 * len(store.tokens))
        return {
            "access_token": token.token,
            "token_type": "Bearer",
            "expires_in": max(1, int(ttl.total_seconds())),
            "scope": " ".join(sorted(granted)),
        }
