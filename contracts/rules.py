"""The rules the kit checks, each with a stable name that appears in output and JUnit.

A rule belongs to one layer: ``schema`` (schemathesis against ``openapi.yaml``),
``semantic`` (read-only properties with hypothesis) or ``stateful`` (changes state: only
with ``--destructive``, which a mock target implies). Rules marked ``assumption`` check
something ``openapi.yaml`` marks as an **Assumption** (the public material does not
state it); the output says so.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LAYERS", "RULES", "Rule", "rule", "schema_rule_name"]

LAYERS = ("schema", "semantic", "stateful")


@dataclass(frozen=True, slots=True)
class Rule:
    """One named rule of the contract."""

    name: str
    layer: str
    summary: str
    assumption: bool = False


_SCHEMA_CHECKS = {
    "not_a_server_error": "no operation answers 5xx",
    "status_code_conformance": "every status code is one the operation documents",
    "content_type_conformance": "every content type is one the operation documents",
    "response_schema_conformance": "every body matches the documented schema",
    "response_headers_conformance": "every documented header is present and valid",
    "positive_data_acceptance": "valid requests are accepted",
    "negative_data_rejection": "invalid requests are rejected with 4xx",
    "ignored_auth": "operations that need a token reject requests without a valid one",
    "missing_required_header": "a missing required header is rejected",
    "unsupported_method": "undocumented methods answer 405",
    "use_after_free": "a deleted resource stays gone",
    "ensure_resource_availability": "a created resource can be read back",
    "allow_header_conformance": "405 answers carry a correct Allow header",
    "object_level_authorization": "one identity cannot read objects another created",
}


def schema_rule_name(check: str) -> str:
    """The rule name of a schemathesis check (``not_a_server_error`` -> ``schema-not-a-server-error``)."""
    return "schema-" + check.replace("_", "-")


_ALL: list[Rule] = [
    *(Rule(schema_rule_name(check), "schema", summary) for check, summary in _SCHEMA_CHECKS.items()),
    Rule("envelope", "semantic",
         'lists answer {"items": [...]}, reads {"session": {...}}, '
         'revoke-all {"success": true, "disconnectedCount": N}'),
    Rule("limit-respected", "semantic",
         "a list with limit=N returns min(N, available) sessions, for every N in 1..200"),
    Rule("filter-active", "semantic", "status=active lists only active and idle sessions",
         assumption=True),
    Rule("filter-inactive", "semantic", "status=inactive lists only expired and disconnected sessions",
         assumption=True),
    Rule("filter-all", "semantic",
         "status=all is the union of active and inactive (disjoint) and nothing else"),
    Rule("filter-default", "semantic", "no status parameter lists the same as status=active"),
    Rule("filter-include-inactive", "semantic",
         "includeInactive=true lists the same as status=all; an explicit status wins",
         assumption=True),
    Rule("list-order", "semantic", "lists are newest createdAt first, ties by id ascending",
         assumption=True),
    Rule("get-matches-list", "semantic",
         "every listed session reads back identically by id "
         "(derivedStatus and lastActiveAt excepted: they move with time)"),
    Rule("derived-status-disconnected", "semantic",
         "derivedStatus is disconnected exactly when status is disconnected"),
    Rule("derived-status-expired", "semantic",
         "a connected session is expired exactly when tokenExpiresAt is not after the "
         "server's Date"),
    Rule("derived-status-idle", "semantic",
         "a connected, unexpired session is idle exactly when lastActiveAt is at least the "
         "idle threshold before the server's Date", assumption=True),
    Rule("disconnected-at", "semantic",
         "disconnectedAt is set exactly on disconnected sessions", assumption=True),
    Rule("timestamps-ordered", "semantic",
         "createdAt <= connectedAt <= lastActiveAt, none after the server's Date",
         assumption=True),
    Rule("agent-id", "semantic", "agentId equals the application id of the path"),
    Rule("unknown-session-404", "semantic", "an unknown session id answers 404 with a JSON error"),
    Rule("foreign-session-404", "semantic",
         "a session of another application is 404 under this one", assumption=True),
    Rule("invalid-id-400", "semantic",
         "a non-UUID application or session id answers 400 validation_error, never 5xx"),
    Rule("auth-required", "semantic",
         "no token, a malformed token and a wrong token answer 401 with a JSON body"),
    Rule("x-request-id", "semantic", "every response carries an x-request-id header"),
    Rule("revoke-count", "stateful",
         "revoke-all returns the number of sessions that were connected", assumption=True),
    Rule("revoke-persists", "stateful",
         "after revoke-all, list and get agree that every previously connected session is "
         "disconnected (disconnectedAt set) and the others are unchanged", assumption=True),
    Rule("revoke-idempotent", "stateful", "a second revoke-all returns 0 and changes nothing"),
    Rule("lifecycle-model", "stateful",
         "a state machine of agent sessions, revokes and clock moves agrees with a model "
         "of the rules at every step (needs a control plane)", assumption=True),
]

RULES: dict[str, Rule] = {r.name: r for r in _ALL}


def rule(name: str) -> Rule:
    """The rule called ``name``; schemathesis checks the kit does not know get a generic rule."""
    found = RULES.get(name)
    if found is None:
        if name.startswith("schema-"):
            return Rule(name, "schema", f"schemathesis check {name[7:].replace('-', '_')}")
        raise KeyError(f"unknown rule {name!r}")
    return found
