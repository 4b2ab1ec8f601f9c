"""OAuth for the MCP gateway: each application's public client, authorization codes with
PKCE (RFC 6749 section 4.1, RFC 7636), refresh tokens that rotate, and the token exchange
of RFC 8693.

The gateway's tokens are opaque, expire on the mock's clock, and are kept here, apart
from the management API's tokens (``Tokens``): they open MCP sessions and nothing else,
they are forgotten when the state is replaced, and a revoke-all of an application ends
every one of its client's (access and refresh).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kontext_mock.core.credentials import secrets_equal
from kontext_mock.core.errors import OAuthError, UnauthorizedError
from kontext_mock.core.gatewaystate import GatewayGrants, IssuedCode, RefreshGrant, SpentCode
from kontext_mock.core.loopback import is_loopback_redirect_host
from kontext_mock.core.records import CONNECTED, AccessToken, Application
from kontext_mock.core.state import MockState

__all__ = [
    "CODE_TTL",
    "EXCHANGE_AUDIENCE",
    "EXCHANGE_SCOPE",
    "GATEWAY_SCOPES",
    "INVOKE_SCOPE",
    "AuthorizeRefusalError",
    "OAuth",
    "app_client_id",
    "same_resource",
]

#: how long an authorization code may wait to be exchanged, on the mock's clock
CODE_TTL = timedelta(minutes=1)
INVOKE_SCOPE = "mcp:invoke"
EXCHANGE_SCOPE = "gateway:access"
#: the ``resource`` (audience) of a token from the token exchange
EXCHANGE_AUDIENCE = "mcp-gateway"
#: a gateway token carries one of these
GATEWAY_SCOPES = frozenset({INVOKE_SCOPE, EXCHANGE_SCOPE})
_CLIENT_PREFIX = "app_"


#: authorization codes kept at once (each lives a minute)
MAX_CODES = 10_000
#: gateway access tokens, and refresh tokens, kept at once (each kind)
MAX_GRANTS = 100_000
_Held = TypeVar("_Held")

#: RFC 7636 4.1: a code verifier's length and characters
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
#: what a URI may hold (RFC 3986's unreserved, reserved and percent characters)
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")

def app_client_id(application_id: str) -> str:
    """The public OAuth client of an application: ``app_<applicationId>``."""
    return f"{_CLIENT_PREFIX}{application_id}"


class AuthorizeRefusalError(Exception):
    """An authorization request refused after its redirect URI was trusted: the client is
    told at its redirect URI (RFC 6749 section 4.1.2.1)."""

    def __init__(self, location: str, error: str) -> None:
        super().__init__(error)
        self.location = location
        self.error = error


class OAuth:
    """The authorization endpoint and the gateway's grants of the token endpoint."""

    def __init__(self, state: MockState) -> None:
        self.state = state

    @property
    def grants(self) -> GatewayGrants:
        """What is held (the state's)."""
        return self.state.gateway.grants

    # -- clients ---------------------------------------------------------------------------

    def application_of(self, client_id: str | None) -> Application | None:
        """The application whose public client this is, or None."""
        if not client_id or not client_id.startswith(_CLIENT_PREFIX):
            return None
        return self.state.store.applications.get(client_id[len(_CLIENT_PREFIX):])

    def trusted_redirect(self, redirect_uri: str) -> bool:
        """A loopback ``http`` URI (any port and path; its host exactly ``localhost`` or a
        loopback IP literal, RFC 8252 7.3 and 8.3), or one registered in the configuration
        (``oauth_redirect_uris``)."""
        if redirect_uri in self.state.config.oauth_redirect_uris:
            return True
        try:
            parts = urlsplit(redirect_uri)
            host = parts.hostname or ""
            parts.port  # noqa: B018 - a port that is not a number raises here
        except ValueError:
            return False
        if parts.scheme != "http" or parts.fragment or "@" in parts.netloc \
                or not _URI_CHARS.fullmatch(redirect_uri):
            return False  # (userinfo, a backslash or a control character fools browsers)
        return is_loopback_redirect_host(host)

    # -- the authorization endpoint ----------------------------------------------------------

    def authorize(self, params: dict[str, str]) -> str:
        """Approve an authorization request for the dev user at once: the redirect URI with
        ``code`` and ``state``. An untrusted client or redirect URI raises
        :class:`OAuthError` (answered 400, never redirected); any other fault raises
        :class:`AuthorizeRefusalError` (an error redirect)."""
        client_id = params.get("client_id")
        if self.application_of(client_id) is None:
            raise OAuthError(400, "invalid_client", f"unknown client {client_id!r}")
        assert client_id is not None
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise OAuthError(400, "invalid_request", "redirect_uri is required")
        if not self.trusted_redirect(redirect_uri):
            raise OAuthError(400, "invalid_request",
                             f"redirect_uri {redirect_uri!r} is not registered for {client_id}"
                             " (loopback http URIs are accepted)")
        state = params.get("state")

        def refuse(error: str, description: str) -> AuthorizeRefusalError:
            reply = {"error": error, "error_description": description}
            if state is not None:
                reply["state"] = state
            return AuthorizeRefusalError(_with_query(redirect_uri, reply), error)

        if params.get("response_type") != "code":
            raise refuse("unsupported_response_type", "only response_type=code is supported")
        challenge = params.get("code_challenge")
        if not challenge:
            raise refuse("invalid_request", "PKCE is required: send code_challenge (S256)")
        if params.get("code_challenge_method") != "S256":
            raise refuse("invalid_request", "only code_challenge_method=S256 is supported")
        scopes = frozenset((params.get("scope") or "").split())
        unknown = sorted(scopes - GATEWAY_SCOPES)
        if unknown:
            raise refuse("invalid_scope", f"unknown scope: {' '.join(unknown)}")
        code = secrets.token_urlsafe(32)
        with self.state.store.lock:
            now = self.state.clock.now()
            self._forget_old_codes(now)
            self.grants.codes[code] = IssuedCode(
                client_id, redirect_uri, challenge, scopes, params.get("resource"),
                self.state.config.oauth_dev_user, now + CODE_TTL)
        reply = {"code": code}
        if state is not None:
            reply["state"] = state
        return _with_query(redirect_uri, reply)

    def _forget_old_codes(self, now: datetime) -> None:
        # Codes live a minute: the oldest are first in the dict, so the scan stops at the
        # first one still valid, and past MAX_CODES the oldest go whatever their age.
        codes = self.grants.codes
        for key in list(codes):
            if codes[key].expires_at > now and len(codes) < MAX_CODES:
                break
            del codes[key]
        spent = self.grants.spent
        for key in list(spent):
            if spent[key].kept_until > now and len(spent) < MAX_CODES:
                break
            del spent[key]

    # -- the token endpoint's gateway grants ------------------------------------------------

    def redeem_code(self, form: dict[str, str]) -> dict[str, Any]:
        """``grant_type=authorization_code``: a code once, within a minute, with the PKCE
        verifier of its challenge, by the client and redirect URI it was given to."""
        client_id = self._public_client(form)
        given = form.get("code") or ""
        with self.state.store.lock:
            # Looked up, not taken: a refused redemption leaves the code as it was (the
            # client may try again within its minute); only a success spends it.
            code = self.grants.codes.get(given)
            now = self.state.clock.now()
            spent = self.grants.spent.get(given)
            if code is None and spent is not None and spent.kept_until > now:
                # RFC 6749 4.1.2 (and RFC 9700 2.1.1): a code used twice may have been
                # stolen, so what it gave is taken back (an assumption: oauth-code-reuse-revokes)
                said = "the code was used already"
                if self.state.config.oauth_code_reuse_revokes:
                    self._revoke_grant(spent.grant, now)
                    said += ": the tokens issued from it are revoked"
                raise OAuthError(400, "invalid_grant", said)
            if code is None or code.expires_at <= now:
                raise OAuthError(400, "invalid_grant", "unknown, used or expired code")
            if code.client_id != client_id:
                raise OAuthError(400, "invalid_grant", "the code was issued to another client")
            if form.get("redirect_uri") != code.redirect_uri:
                raise OAuthError(400, "invalid_grant",
                                 "redirect_uri differs from the authorization request's")
            verifier = form.get("code_verifier") or ""
            if not _VERIFIER.fullmatch(verifier):
                raise OAuthError(400, "invalid_request", "code_verifier must be 43 to 128"
                                 " characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 4.1)")
            if not secrets_equal(_s256(verifier), code.challenge):
                raise OAuthError(400, "invalid_grant", "code_verifier does not match the challenge")
            asked = form.get("resource")
            if asked and code.resource is not None and not same_resource(asked, code.resource):
                # RFC 8707 2.2: the token is for what was authorized, never another
                # resource (an assumption: oauth-resource-as-authorized)
                raise OAuthError(400, "invalid_target", f"resource {asked!r} is not the one"
                                 f" authorized ({code.resource!r})")
            resource = asked or code.resource
            grant = secrets.token_hex(8)
            del self.grants.codes[given]
            self.grants.spent[given] = SpentCode(
                client_id, grant, now + max(CODE_TTL, self.state.config.token_ttl))
            return self._grant(client_id, code.scopes, _audience(code.scopes, resource),
                               code.user_id, now, grant=grant)

    def _revoke_grant(self, grant: str, now: datetime) -> None:
        """End the tokens of a code's grant and, as revoke-all does, the MCP sessions they
        opened: a session ends with its token (call with the store's lock held)."""
        self.grants.revoke_grant(grant)
        links = self.state.gateway.links
        for session_id in [k for k, link in links.items() if link.grant == grant]:
            session = self.state.store.sessions.get(session_id)
            if session is not None and session.status == CONNECTED:
                self.state.disconnect(session, now, "revoked")

    def refresh(self, form: dict[str, str]) -> dict[str, Any]:
        """``grant_type=refresh_token``: a new access token and a new refresh token; the old
        refresh token is spent."""
        client_id = self._public_client(form)
        with self.state.store.lock:
            held = self.grants.refresh.get(form.get("refresh_token") or "")
            if held is None or held.client_id != client_id:
                raise OAuthError(400, "invalid_grant", "unknown, spent or revoked refresh token")
            scopes = held.scopes
            # A scope of blanks only names no scope: read as left out, the scope granted
            # (RFC 6749 6; its grammar has no empty scope), never as a token with none.
            asked = frozenset((form.get("scope") or "").split())
            if asked:
                if not asked <= held.scopes:
                    raise OAuthError(400, "invalid_scope", "a refresh may only narrow the scope")
                scopes = asked
            del self.grants.refresh[form["refresh_token"]]
            return self._grant(client_id, scopes, held.audience, held.user_id,
                               self.state.clock.now(), grant=held.grant)

    def exchange(self, form: dict[str, str], subject: AccessToken) -> dict[str, Any]:
        """RFC 8693 token exchange of a user's token (``subject``, already authenticated)
        for a gateway token: ``resource=mcp-gateway``, ``scope=gateway:access``."""
        client_id = form.get("client_id")
        if client_id is None and subject.application_id is not None:
            client_id = app_client_id(subject.application_id)
        app = self.application_of(client_id)
        if app is None or client_id is None:
            raise OAuthError(400, "invalid_request",
                             "client_id (app_<applicationId>) is required for a token exchange")
        if app.organization_id != subject.organization_id:
            raise OAuthError(400, "invalid_grant", "the subject token is of another organization")
        if form.get("subject_token_type") != "urn:ietf:params:oauth:token-type:access_token":
            raise OAuthError(400, "invalid_request",
                             "subject_token_type must be urn:ietf:params:oauth:token-type:access_token")
        if form.get("resource") != EXCHANGE_AUDIENCE:
            raise OAuthError(400, "invalid_target", f"resource must be {EXCHANGE_AUDIENCE}")
        scopes = frozenset((form.get("scope") or EXCHANGE_SCOPE).split())
        if scopes != {EXCHANGE_SCOPE}:
            raise OAuthError(400, "invalid_scope", f"scope must be {EXCHANGE_SCOPE}")
        with self.state.store.lock:
            grant = self._grant(client_id, scopes, EXCHANGE_AUDIENCE,
                                subject.user_id or subject.client_id, self.state.clock.now(),
                                refresh=False)
        grant["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
        return grant

    def gateway_token(self, application_id: str, *, resource: str | None = None,
                      scope: str = INVOKE_SCOPE) -> dict[str, Any]:
        """A gateway token for an application's public client without the browser round
        trip (tests, the pytest plugin): what ``/oauth2/token`` would answer."""
        client_id = app_client_id(application_id)
        if self.application_of(client_id) is None:
            raise OAuthError(400, "invalid_client", f"unknown application {application_id!r}")
        scopes = frozenset(scope.split())
        with self.state.store.lock:
            return self._grant(client_id, scopes, _audience(scopes, resource),
                               self.state.config.oauth_dev_user, self.state.clock.now())

    def authenticate(self, bearer: str) -> AccessToken:
        """A gateway token; 401 when unknown, revoked or expired on the mock's clock."""
        found = self.grants.access.get(bearer)
        if found is None:
            raise UnauthorizedError("unknown or revoked gateway token")
        if found.expires_at is not None and found.expires_at <= self.state.clock.now():
            raise UnauthorizedError("the gateway token has expired")
        return found

    def _public_client(self, form: dict[str, str]) -> str:
        client_id = form.get("client_id")
        if not client_id:  # RFC 6749 4.1.3: a public client names itself
            raise OAuthError(400, "invalid_request", "client_id is required (the application's"
                             " public client, app_<applicationId>)")
        if self.application_of(client_id) is None:
            raise OAuthError(401, "invalid_client", f"unknown public client {client_id!r}")
        return client_id

    def _grant(self, client_id: str, scopes: frozenset[str], audience: str | None, user_id: str,
               now: datetime, *, refresh: bool = True, grant: str | None = None
               ) -> dict[str, Any]:
        app = self.application_of(client_id)
        assert app is not None
        ttl = self.state.config.token_ttl
        # "ory_at_" / "ory_rt_": the real service's opaque tokens look so (Ory Hydra).
        token = AccessToken(f"ory_at_{secrets.token_urlsafe(32)}", client_id,
                            app.organization_id, scopes, app.id, now + ttl, audience, user_id,
                            grant)
        _keep(self.grants.access, token.token, token, MAX_GRANTS,
              lambda held: held.expires_at is not None and held.expires_at <= now)
        answer: dict[str, Any] = {
            "access_token": token.token,
            "token_type": "Bearer",
            "expires_in": max(1, int(ttl.total_seconds())),
            "scope": " ".join(sorted(scopes)),
        }
        if refresh:
            rt = f"ory_rt_{secrets.token_urlsafe(32)}"
            _keep(self.grants.refresh, rt, RefreshGrant(client_id, scopes, audience, user_id,
                                                        grant),
                  MAX_GRANTS, lambda held: False)
            answer["refresh_token"] = rt
        return answer


def _keep(held: dict[str, _Held], key: str, value: _Held, cap: int,
          expired: Callable[[_Held], bool]) -> None:
    """``held[key] = value``, never past ``cap``: the expired go first, then the oldest (a
    client that held on to a token that old authenticates again, as after a revoke)."""
    held[key] = value
    if len(held) <= cap:
        return
    for old in [k for k, v in held.items() if expired(v)]:
        del held[old]
    while len(held) > cap * 9 // 10:
        del held[next(iter(held))]


def _audience(scopes: frozenset[str], resource: str | None) -> str | None:
    """Without ``mcp:invoke`` a token has no audience (the evidence); with it, the
    ``resource`` asked for, or the gateway when none was."""
    if INVOKE_SCOPE not in scopes:
        return None
    return resource or EXCHANGE_AUDIENCE


def same_resource(a: str, b: str) -> bool:
    """The same resource URI, a trailing slash aside."""
    return a.rstrip("/") == b.rstrip("/")


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _with_query(uri: str, extra: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
