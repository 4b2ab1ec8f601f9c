"""Handlers of the public API's operations (sessions, agent sessions, OAuth tokens).

Each handler gets a validated :class:`~kontext_mock.http.routing.Call` and asks the
:class:`~kontext_mock.core.engine.MockEngine`; none validates input or builds an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from kontext_mock.core.credentials import parse_basic
from kontext_mock.core.errors import ApiError, OAuthError
from kontext_mock.core.records import session_list_json
from kontext_mock.http.mcp import gateway_grant
from kontext_mock.http.routing import Call, Handler
from kontext_mock.http.serving.exchange import Answer, json_answer
from kontext_mock.http.spec import load_spec

if TYPE_CHECKING:
    from kontext_mock.core.engine import MockEngine

__all__ = ["handlers"]


def org_of(call: Call) -> str:
    """The organization of the call's bearer token."""
    assert call.token is not None
    return call.token.organization_id


def handlers(mock: MockEngine) -> dict[str, Handler]:
    """The handler of every public operation, by operationId."""

    def list_sessions(call: Call) -> Answer:
        params = call.params
        status = params["status"]
        if "status" not in call.explicit and params.get("includeInactive"):
            status = "all"
        with mock.store.lock:
            rows = mock.select_sessions(
                params["applicationId"], status, params["limit"], org_of(call)
            )
            return json_answer(session_list_json(rows))

    def get_session(call: Call) -> Answer:
        with mock.store.lock:
            params = call.params
            session, derived = mock.find_session(
                params["applicationId"], params["sessionId"], org_of(call)
            )
            # (a function of the path, the token and the records, until the session
            # changes or its derived status would: kept for the same request while so)
            body = b'{"session":' + session.to_json(derived) + b"}"
            return json_answer(body, holds=session.read_holds(derived, mock.idle_after))

    def list_applications(call: Call) -> Answer:
        # By id, so the cursor is the last id of a page: stable while applications come
        # and go, and opaque enough for a client.
        org, cursor, limit = org_of(call), call.params.get("cursor"), call.params["limit"]
        with mock.store.lock:
            apps = sorted((a for a in mock.store.applications.values()
                           if a.organization_id == org and (cursor is None or a.id > cursor)),
                          key=lambda a: a.id)
        body: dict[str, object] = {"items": [{"id": a.id, "name": a.name} for a in apps[:limit]]}
        if len(apps) > limit:
            body["nextCursor"] = apps[limit - 1].id
        return json_answer(body)

    def revoke_all(call: Call) -> Answer:
        count = mock.revoke_all(call.params["applicationId"], org_of(call))
        return json_answer({"success": True, "disconnectedCount": count})

    def agent_application(call: Call) -> str:
        assert call.token is not None
        if call.token.application_id is None:
            raise ApiError(
                403, "insufficient_scope",
                "agent sessions need a token of a client bound to an application",
                missingScopes=["application"],
            )
        return call.token.application_id

    def create_agent_session(call: Call) -> Answer:
        body = call.body
        session = mock.open_session(
            agent_application(call),
            token_identifier=body["tokenIdentifier"],
            authenticated_user_id=body["authenticatedUserId"],
            client_session_id=body["clientSessionId"],
            hostname=body.get("hostname"),
            user_agent=body.get("userAgent", call.header("User-Agent")),
            client_info=body.get("clientInfo"),
        )
        return json_answer({"sessionId": session.id, "name": session.name}, 201)

    def agent_state(app_id: str, session_id: str) -> Answer:
        session = mock.find_session(app_id, session_id)[0]
        with mock.store.lock:
            public = session.to_public(session.derived_status(mock.now(), mock.idle_after))
        return json_answer(
            {
                "sessionId": public["id"],
                "status": public["status"],
                "derivedStatus": public["derivedStatus"],
                "lastActiveAt": public["lastActiveAt"],
                "tokenExpiresAt": public["tokenExpiresAt"],
                "disconnectedAt": public["disconnectedAt"],
            }
        )

    def heartbeat(call: Call) -> Answer:
        app_id = agent_application(call)
        mock.heartbeat(app_id, call.params["sessionId"])
        return agent_state(app_id, call.params["sessionId"])

    def disconnect(call: Call) -> Answer:
        app_id = agent_application(call)
        mock.disconnect(app_id, call.params["sessionId"], "agent")
        return agent_state(app_id, call.params["sessionId"])

    def issue_token(call: Call) -> Answer:
        form = call.body
        gateway = gateway_grant(mock, form)  # the MCP gateway's grants (public clients)
        if gateway is not None:
            return gateway
        basic = parse_basic(call.header("Authorization"))
        in_form = "client_id" in form or "client_secret" in form
        if basic and in_form:
            raise OAuthError(
                400, "invalid_request", "authenticate the client one way: HTTP Basic or form fields"
            )
        client_id, secret = basic or (form.get("client_id"), form.get("client_secret"))
        if not client_id or secret is None:
            raise OAuthError(
                401, "invalid_client",
                "client authentication is required (HTTP Basic, or client_id and client_secret)",
            )
        grant = mock.issue_token(client_id, secret, form.get("scope"))
        return json_answer(grant, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    served_document: list[bytes] = []

    def openapi_document(call: Call) -> Answer:
        # The contract the mock is built from, as the real API publishes its own; turned
        # into JSON on first use only (most runs never ask for it).
        if not served_document:
            served_document.append(orjson.dumps(load_spec().document))
        return json_answer(served_document[0])

    return {
        "listApplications": list_applications,
        "listSessions": list_sessions,
        "getSession": get_session,
        "revokeAllSessions": revoke_all,
        "createAgentSession": create_agent_session,
        "heartbeatAgentSession": heartbeat,
        "disconnectAgentSession": disconnect,
        "issueToken": issue_token,
        "getOpenApiDocument": openapi_document,
    }
