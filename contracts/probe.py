"""Before any rule: is the target up, is it this API, do the credentials work, what does it serve."""

from __future__ import annotations

from kontext_mock.contracts.errors import ContractError
from kontext_mock.contracts.http import ApiClient, Exchange
from kontext_mock.contracts.openapi import ApiSpec

__all__ = ["check_application", "check_is_this_api", "served_operations"]

_NIL = "00000000-0000-4000-8000-000000000000"


def _is_json_error(ex: Exchange) -> bool:
    body = ex.json_or_none()
    return isinstance(body, dict) and isinstance(body.get("error"), str)


def _seen(ex: Exchange) -> str:
    kind = ex.content_type or "no content type"
    return f"{ex.status} {ex.reason} ({kind})".replace("  ", " ")


def check_is_this_api(client: ApiClient, application_id: str | None) -> None:
    """Fail with a clear message unless the target answers a route of the sessions API.

    Without a token the list route should refuse (401 or 403); a target that answers it
    anyway is still this API, just one that does not enforce authentication, which the
    ``auth-required`` rule then fails (a security break is a verdict, not a usage error).
    So with the kit's token: a list of ``items``, or a JSON error, is this API; anything
    else (an HTML 404, a redirect) answers no route of it."""
    path = f"/api/v1/applications/{application_id or _NIL}/sessions"
    ex = client.request("GET", path, auth=None, operation="listSessions")
    if ex.status in (401, 403):
        return
    with_token = client.get(path, params={"limit": 1}, operation="listSessions")
    body = with_token.json_or_none()
    if with_token.status == 200 and isinstance(body, dict) and isinstance(body.get("items"), list):
        return
    if with_token.status in (401, 403, 404) and _is_json_error(with_token):
        return
    hint = ""
    if client.base_url.rstrip("/").endswith("/api/v1"):
        hint = " (give --base-url without /api/v1: the kit adds it)"
    raise ContractError(
        f"{client.base_url} does not answer like the Kontext sessions API{hint}: "
        f"GET {path} answered {_seen(ex)} without a token and {_seen(with_token)} with one, "
        "expected 401 without a token and a list (or a JSON error) with one"
    )


def check_application(client: ApiClient, application_id: str) -> Exchange:
    """Fail with a clear message unless the token can list the application's sessions."""
    path = f"/api/v1/applications/{application_id}/sessions"
    ex = client.get(path, params={"limit": 1}, operation="listSessions")
    if ex.status == 200:
        return ex
    body = ex.json_or_none()
    error = body.get("error") if isinstance(body, dict) else None
    why = {
        401: "the token was refused",
        403: "the token lacks the scope to read sessions (management:applications:read)",
        404: f"application {application_id} was not found for this token",
    }.get(ex.status, f"it answered {_seen(ex)}")
    raise ContractError(f"cannot list the sessions of application {application_id}: {why}"
                        + (f" ({error})" if error and ex.status in (401, 403, 404) else ""))


def served_operations(client: ApiClient, spec: ApiSpec, application_id: str,
                      session_id: str | None) -> set[str]:
    """The operations of the spec the target serves, judged without credentials (an
    unauthenticated request to a served route answers 401 or 400, not 404 or 405).
    Agent operations are probed only in destructive runs: a read-only run sends them nothing."""
    served: set[str] = set()
    ops = spec.operations
    sessions = f"/api/v1/applications/{application_id}/sessions"
    probes: dict[str, tuple[str, str, dict[str, str] | None]] = {
        "listApplications": ("GET", "/api/v1/applications", None),
        "listSessions": ("GET", sessions, None),
        "getSession": ("GET", f"{sessions}/{session_id or _NIL}", None),
        "issueToken": ("POST", "/oauth2/token", {}),
        "getOpenApiDocument": ("GET", "/api/openapi.json", None),
    }
    if client.destructive:
        probes.update({
            "createAgentSession": ("POST", "/api/v1/agent-sessions", {}),
            "heartbeatAgentSession": ("POST", f"/api/v1/agent-sessions/{_NIL}/heartbeat", None),
            "disconnectAgentSession": ("POST", f"/api/v1/agent-sessions/{_NIL}/disconnect", None),
        })
    for op_id, (method, path, form) in probes.items():
        if op_id not in ops:
            continue
        if op_id == "issueToken":
            ex = client.request(method, path, form=form, auth=None, operation=op_id)
        else:
            ex = client.request(method, path, auth=None, operation=op_id)
        if ex.status not in (404, 405):
            served.add(op_id)
    if "listSessions" in served and "revokeAllSessions" in ops and client.destructive:
        served.add("revokeAllSessions")  # the same route as the list
    return served
