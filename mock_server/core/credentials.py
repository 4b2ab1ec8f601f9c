"""Credentials on the wire: bearer tokens, HTTP Basic client authentication, and scopes."""

from __future__ import annotations

import base64
import hmac
from urllib.parse import unquote

from kontext_mock.core.errors import ForbiddenError, OAuthError, UnauthorizedError

__all__ = [
    "ALL_SCOPE",
    "KNOWN_SCOPES",
    "ScopeCheck",
    "covers",
    "missing_scopes",
    "parse_basic",
    "parse_bearer",
    "secrets_equal",
]

ALL_SCOPE = "management:all"
_AREAS = ("applications", "providers", "policy", "directory", "settings", "logs", "deployments")
_OWS = " \t"
KNOWN_SCOPES: frozenset[str] = frozenset(
    {ALL_SCOPE} | {f"management:{area}:{mode}" for area in _AREAS for mode in ("read", "write")}
)


def parse_bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header; 401 when absent or malformed."""
    if not header:
        # RFC 6750 section 3.1: no error code when the request carried no credentials.
        raise UnauthorizedError("missing bearer token (send Authorization: Bearer <token>)",
                                oauth_error=None)
    # Only HTTP's own whitespace (RFC 9110 OWS) is trimmed: str.strip() would also drop
    # Unicode spaces and accept "dev-token\xa0" as "dev-token".
    scheme, _, token = header.strip(_OWS).partition(" ")
    token = token.strip(_OWS)
    if scheme.lower() != "bearer" or not token or " " in token or "\t" in token:
        raise UnauthorizedError("malformed Authorization header (expected: Bearer <token>)")
    return token


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` of an HTTP Basic header, None when it is not Basic.

    RFC 6749 section 2.3.1: both parts are form-urlencoded before the Basic encoding.
    """
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    # binascii.Error, UnicodeDecodeError, and the ValueError of a non-ASCII header value
    except ValueError:
        raise OAuthError(401, "invalid_client", "malformed HTTP Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError(401, "invalid_client", "malformed HTTP Basic credentials")
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def secrets_equal(given: str, expected: str) -> bool:
    """Compare secrets in constant time."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def covers(held: frozenset[str], scope: str) -> bool:
    """True when the held scopes grant ``scope`` (``management:all`` grants every management scope)."""
    return scope in held or (ALL_SCOPE in held and scope.startswith("management:"))


def missing_scopes(held: frozenset[str], alternatives: list[list[str]]) -> list[str]:
    """What the narrowest requirement lacks, or [] when any alternative is met."""
    if not alternatives:
        return []
    gaps = [[s for s in needed if not covers(held, s)] for needed in alternatives]
    if any(not gap for gap in gaps):
        return []
    return gaps[0]


def require_scopes(held: frozenset[str], alternatives: list[list[str]]) -> None:
    """403 unless the held scopes meet one of the alternatives."""
    missing = missing_scopes(held, alternatives)
    if missing:
        raise ForbiddenError(missing)


class ScopeCheck:
    """One operation's scope rule, remembering the scope sets that met it: tokens share a
    few sets, so each is checked once, not on every request (at most 64 remembered, in
    case of many odd sets)."""

    def __init__(self, alternatives: list[list[str]]) -> None:
        self.alternatives = alternatives
        self._met: set[frozenset[str]] = set()

    def require(self, held: frozenset[str]) -> None:
        """403 unless ``held`` meets one of the alternatives (see :func:`require_scopes`)."""
        if held in self._met:
            return
        require_scopes(held, self.alternatives)
        if len(self._met) < 64:
            self._met.add(held)
