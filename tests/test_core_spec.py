"""openapi.yaml itself: valid OpenAPI 3.1, complete, and honest about its assumptions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from kontext_mock.http.spec import default_spec_path, load_spec

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
DOC = yaml.safe_load(SPEC_PATH.read_text())


def test_spec_is_valid_openapi_3_1() -> None:
    spec_dict, _ = read_from_filename(str(SPEC_PATH))
    validate(spec_dict)
    assert DOC["openapi"].startswith("3.1")


def test_the_mock_loads_the_same_spec_file() -> None:
    assert default_spec_path().read_text() == SPEC_PATH.read_text()


def test_paths_carry_api_v1_and_servers_are_bare_origins() -> None:
    assert DOC["servers"][0]["url"] == "https://api.kontext.security"
    for path in DOC["paths"]:
        # /api/openapi.json is where the real API publishes its contract; /mcp, /oauth2/auth
        # and the well-known metadata are the MCP gateway's (evidence.md)
        assert path.startswith(("/api/v1/", "/oauth2/token", "/api/openapi.json", "/mcp",
                                "/oauth2/auth", "/.well-known/")), path


@pytest.mark.parametrize(
    ("operation", "method", "path"),
    [
        ("listApplications", "GET", "/api/v1/applications"),
        ("listSessions", "GET", "/api/v1/applications/{applicationId}/sessions"),
        ("getSession", "GET", "/api/v1/applications/{applicationId}/sessions/{sessionId}"),
        ("revokeAllSessions", "DELETE", "/api/v1/applications/{applicationId}/sessions"),
        ("issueToken", "POST", "/oauth2/token"),
        ("createAgentSession", "POST", "/api/v1/agent-sessions"),
        ("heartbeatAgentSession", "POST", "/api/v1/agent-sessions/{sessionId}/heartbeat"),
        ("disconnectAgentSession", "POST", "/api/v1/agent-sessions/{sessionId}/disconnect"),
    ],
)
def test_every_documented_operation_is_there(operation: str, method: str, path: str) -> None:
    op = load_spec().operations[operation]
    assert (op.method, op.path) == (method, path)


def test_every_response_documents_x_request_id() -> None:
    spec = load_spec()
    for op in spec:
        for status, (_, headers) in op.responses.items():
            assert "x-request-id" in headers, f"{op.operation_id} {status}"


def test_rate_limited_answers_document_retry_after() -> None:
    for op in load_spec():
        assert "retry-after" in op.responses["429"][1], op.operation_id


def test_scopes_per_operation() -> None:
    spec = load_spec()
    read = [["management:applications:read"], ["management:all"]]
    write = [["management:applications:write"], ["management:all"]]
    assert spec.operations["listSessions"].scope_alternatives == read
    assert spec.operations["listApplications"].scope_alternatives == read
    assert spec.operations["getSession"].scope_alternatives == read
    assert spec.operations["revokeAllSessions"].scope_alternatives == write


def test_session_schema_matches_the_field_table() -> None:
    session = DOC["components"]["schemas"]["Session"]
    props = session["properties"]
    assert list(props) == [
        "id", "name", "status", "derivedStatus", "tokenExpiresAt", "lastActiveAt",
        "connectedAt", "disconnectedAt", "createdAt", "agentId", "organizationId",
        "hostname", "userAgent", "clientInfo",
    ]
    # "string?" fields: optional and nullable; "string | null": required and nullable
    for name in ("tokenExpiresAt", "lastActiveAt", "connectedAt", "disconnectedAt"):
        assert name not in session["required"] and "null" in props[name]["type"]
    for name in ("hostname", "userAgent"):
        assert name in session["required"] and props[name]["type"] == ["string", "null"]
    assert props["status"]["enum"] == ["active", "disconnected"]
    assert props["derivedStatus"]["enum"] == ["active", "idle", "expired", "disconnected"]
    assert props["id"]["format"] == "uuid"


@pytest.mark.parametrize(
    "inferred_rule",
    [
        "idle threshold",          # derivedStatus
        "precedence",              # derivedStatus
        "whatever the token",      # revoke-all acts on connected sessions
        "newest `createdAt` first",  # list order
        "includeInactive=true` without `status`",
        "reveal",                  # foreign ids are 404
    ],
)
def test_inferred_rules_are_marked_as_assumptions(inferred_rule: str) -> None:
    text = SPEC_PATH.read_text()
    at = text.index(inferred_rule)
    # the rule's own description block says it is an assumption
    block_start = text.rfind("description:", 0, at)
    block = text[block_start : text.find("\n      ", at + 400)]
    assert "Assumption" in block, inferred_rule


def test_the_mock_serves_its_contract_at_api_openapi_json(client: FlaskClient) -> None:
    answer = client.get("/api/openapi.json")
    assert answer.status_code == 200
    assert answer.json == DOC  # openapi.yaml itself, as JSON, without a token


#: the schema a refusal of each error style answers with
_STYLE_SCHEMA = {"api": "ValidationError", "oauth": "OAuthError", "jsonrpc": "JsonRpcResponse"}


@pytest.mark.parametrize("name", ["openapi.yaml", "control.yaml"])
def test_an_operations_error_style_is_the_shape_its_400_documents(name: str) -> None:
    spec = load_spec(str(default_spec_path(name)))
    checked = 0
    for op in spec.operations.values():
        node = spec.document["paths"][op.path][op.method.lower()]
        refused = node["responses"].get("400")
        if refused is None:
            continue
        said = str(spec.resolve(refused).get("content", {}))
        assert f"schemas/{_STYLE_SCHEMA[op.error_style.value]}" in said, (op.operation_id, said)
        checked += 1
    assert checked
