"""A gateway token for ``kontext-contract --mcp``, got the way the real service gives one.

The token the user gives (``--mcp-token``) comes first. Against a kontext-mock the kit
then runs the application's OAuth flow itself: authorization code with PKCE (S256) for
the public client ``app_<applicationId>``, which the mock approves at once, so the
``Location`` of the authorization answer carries the code. Against anything else it tries
the RFC 8693 token exchange of its own API token (``resource=mcp-gateway``,
``scope=gateway:access``), which the vendor documents; a refusal is a usage error that
says to give ``--mcp-token``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from kontext_mock.contracts.errors import ContractError
from kontext_mock.contracts.http import ApiClient, Exchange

__all__ = ["GatewayAccess", "gateway_access"]

#: where the kit's authorization request says to redirect (a loopback URI: nothing listens
#: there; the kit reads the code from the redirect's ``Location``)
REDIRECT_URI = "http://127.0.0.1:33418/kontext-contract/callback"
_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105


@dataclass(slots=True)
class GatewayAccess:
    """A gateway token, where it came from, and what the kit knows of it."""

    token: str
    #: ``oauth`` (the code flow), ``exchange`` (RFC 8693) or ``given`` (``--mcp-token``)
    how: str
    #: the application whose public client the token is of (None: not known)
    client_id: str | None = None
    #: when it expires by the server's clock (None: not known)
    expires_at: datetime | None = None
    refresh_token: str | None = None


def gateway_access(client: ApiClient, application_id: str, given: str | None,
                   mock: bool) -> GatewayAccess:
    """The gateway token the ``mcp`` layer uses (see the module's docstring)."""
    if given:
        client.redact.add(given)
        return GatewayAccess(given, "given")
    client_id = f"app_{application_id}"
    if mock:
        return _code_flow(client, client_id)
    return _exchange(client, client_id)


def _code_flow(client: ApiClient, client_id: str) -> GatewayAccess:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(12)
    ex = client.get("/oauth2/auth", auth=None, operation="authorize", params={
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
        "state": state, "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256", "scope": "mcp:invoke",
        "resource": f"{client.base_url}/mcp"})
    answer = parse_qs(urlsplit(ex.headers.get("Location", "")).query)
    code = (answer.get("code") or [""])[0]
    if ex.status != 302 or not code or answer.get("state") != [state]:
        raise ContractError(f"--mcp: the authorization request for {client_id} was not approved "
                            f"with a code: {ex.status} {ex.headers.get('Location', '')[:200]}")
    client.redact.add(code)
    token = client.request("POST", "/oauth2/token", auth=None, operation="issueToken", form={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "client_id": client_id, "redirect_uri": REDIRECT_URI,
        "resource": f"{client.base_url}/mcp"})
    return _granted(client, token, "oauth", client_id, "the authorization code")


def _exchange(client: ApiClient, client_id: str) -> GatewayAccess:
    ex = client.request("POST", "/oauth2/token", auth=None, operation="issueToken", form={
        "grant_type": _EXCHANGE, "subject_token": client.token(),
        "subject_token_type": _ACCESS_TOKEN_TYPE, "resource": "mcp-gateway",
        "scope": "gateway:access", "client_id": client_id})
    return _granted(client, ex, "exchange", client_id, "the token exchange of the kit's token")


def _granted(client: ApiClient, ex: Exchange, how: str, client_id: str,
             what: str) -> GatewayAccess:
    body = ex.json_or_none()
    if ex.status != 200 or not isinstance(body, dict) or not body.get("access_token"):
        error = body.get("error") if isinstance(body, dict) else None
        raise ContractError(f"--mcp needs a gateway token: {what} was refused ({ex.status} "
                            f"{error or ex.reason}); give one with --mcp-token")
    token = str(body["access_token"])
    refresh = body.get("refresh_token")
    client.redact.add(token, refresh if isinstance(refresh, str) else None)
    expires_in = body.get("expires_in")
    expires_at = None
    if isinstance(expires_in, int) and not isinstance(expires_in, bool) \
            and ex.server_time is not None:
        expires_at = ex.server_time + timedelta(seconds=expires_in)
    return GatewayAccess(token, how, client_id, expires_at,
                         refresh if isinstance(refresh, str) else None)


def refreshed(client: ApiClient, access: GatewayAccess) -> GatewayAccess | None:
    """A new token for ``access`` from its refresh token (rotated); None without one or
    when refused."""
    if access.refresh_token is None or access.client_id is None:
        return None
    ex = client.request("POST", "/oauth2/token", auth=None, operation="issueToken", form={
        "grant_type": "refresh_token", "refresh_token": access.refresh_token,
        "client_id": access.client_id})
    try:
        return _granted(client, ex, access.how, access.client_id, "the refresh")
    except ContractError:
        return None
