"""Assumptions: the rules of ``openapi.yaml`` that the vendor does not state, by stable id.

Each one is written once in the spec, as ``x-assumption`` on the node it constrains
(``id``, what it ``assumes``, optionally the schema keywords that exist only because of
it, ``constrains``, or why nothing can observe it, ``unobservable``), and named once in
the kit, as a constant of this module that the rules checking it cite.

From the one spec file the kit derives two views: the *documented* view drops every
constrained keyword (and leaves a request parameter whose schema is constrained, marked
on the parameter itself, to the rules: without those keywords no generator can tell its
valid values from invalid ones); the view *with* one assumption keeps that one's keywords.
The marks stay off the JSON Schema of requests: the mock reads those schemas to check
requests quickly, and takes any keyword it does not know for a reason to go slowly. The schema layer runs
the documented view; the answers are held to each assumption's view separately, so a
contradiction is drift of that one assumption, not a broken documented rule.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KIT_ASSUMPTIONS",
    "MODES",
    "Place",
    "SpecAssumption",
    "documented_view",
    "read_assumptions",
    "view_with",
]

#: what a contradicted assumption does: fail the run (``enforce``) or be reported as drift
MODES = ("enforce", "report")
#: every id the kit cites, each written here once
KIT_ASSUMPTIONS: list[str] = []


def _cited(assumption_id: str) -> str:
    KIT_ASSUMPTIONS.append(assumption_id)
    return assumption_id


FILTER_ACTIVE = _cited("filter-active-means-connected")
FILTER_INACTIVE = _cited("filter-inactive-means-ended")
INCLUDE_INACTIVE = _cited("include-inactive-means-all")
LIST_ORDER = _cited("list-order-newest-first")
LIMIT_RANGE = _cited("list-limit-range")
REVOKE_SCOPE = _cited("revoke-all-disconnects-connected")
FOREIGN_404 = _cited("foreign-resources-404")
AGENT_APPLICATION = _cited("agent-session-application")
HEARTBEAT_ENDED = _cited("heartbeat-signals-ended")
DISCONNECT_IDEMPOTENT = _cited("disconnect-idempotent")
MALFORMED_ID_400 = _cited("malformed-id-400")
DISCONNECTED_AT = _cited("disconnected-at-iff-disconnected")
TIMES_ORDERED = _cited("session-times-ordered")
PRECEDENCE = _cited("derived-status-precedence")
IDLE_THRESHOLD = _cited("idle-threshold")
USER_AGENT_FALLBACK = _cited("agent-user-agent-fallback")
AGENT_STATE_SHAPE = _cited("agent-session-state-shape")
ERROR_SHAPE = _cited("error-body-shape")
OPENAPI_PUBLIC = _cited("openapi-document-public")
# the MCP gateway's (kontext-contract --mcp, contracts/mcp_layer.py)
MCP_SESSION_RECORD = _cited("mcp-session-record")
MCP_HOSTNAME = _cited("mcp-hostname-from-client-info")
MCP_TOKEN_EXPIRY = _cited("mcp-token-expiry-follows-token")
MCP_DISCOVER_REFUSED = _cited("mcp-discover-refused")
MCP_REVOKE_ENDS_TOKENS = _cited("mcp-revoke-ends-tokens")
MCP_STREAM_NOT_ACTIVITY = _cited("mcp-stream-not-activity")
MCP_RESOURCE_METADATA = _cited("mcp-protected-resource-metadata")
MCP_DELETE_DISCONNECTS = _cited("mcp-delete-disconnects")
MCP_INITIALIZE_ONCE = _cited("mcp-initialize-once")
MCP_REQUIRE_ACCEPT = _cited("mcp-require-accept")

_EXTENSION = "x-assumption"


@dataclass(frozen=True, slots=True)
class Place:
    """Where an assumption sits in the spec: a JSON pointer, and the keywords there that
    exist only because of it (empty: a rule stated in prose)."""

    pointer: str
    constrains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SpecAssumption:
    """One assumption as the spec states it."""

    id: str
    assumes: str
    places: tuple[Place, ...]
    #: why no request can observe it (None: the kit checks it)
    unobservable: str | None = None

    @property
    def constrained(self) -> tuple[Place, ...]:
        """The places where the schema has keywords only because of this assumption."""
        return tuple(p for p in self.places if p.constrains)


def _pointer(path: tuple[str | int, ...]) -> str:
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _nodes(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            if key != _EXTENSION:
                yield from _nodes(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, (*path, index))


def _entries(node: Any) -> list[dict[str, Any]]:
    raw = node.get(_EXTENSION) if isinstance(node, dict) else None
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    return [i for i in items if isinstance(i, dict)]


def marked_nodes(raw: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """Every ``(path, x-assumption entry)`` of the document."""
    for path, node in _nodes(raw):
        for entry in _entries(node):
            yield path, entry


def read_assumptions(raw: dict[str, Any]) -> dict[str, SpecAssumption]:
    """Every assumption of the document, by id, in the order the document states them."""
    found: dict[str, dict[str, Any]] = {}
    for path, entry in marked_nodes(raw):
        aid = str(entry.get("id") or "")
        if not aid:
            raise ValueError(f"{_pointer(path)}: x-assumption without an id")
        seen = found.setdefault(aid, {"assumes": "", "places": [], "unobservable": None})
        if entry.get("assumes") and not seen["assumes"]:
            seen["assumes"] = " ".join(str(entry["assumes"]).split())
        if entry.get("unobservable"):
            seen["unobservable"] = " ".join(str(entry["unobservable"]).split())
        seen["places"].append(Place(_pointer(path), tuple(entry.get("constrains") or ())))
    return {aid: SpecAssumption(aid, v["assumes"], tuple(v["places"]), v["unobservable"])
            for aid, v in found.items()}


def _is_parameter(path: tuple[str | int, ...]) -> bool:
    return len(path) >= 2 and isinstance(path[-1], int) and path[-2] == "parameters"


def view_with(raw: dict[str, Any], keep: str | None = None) -> dict[str, Any]:
    """The documented view of the document, plus the keywords of assumption ``keep``."""
    view = copy.deepcopy(raw)
    dropped_parameters: list[tuple[tuple[str | int, ...], int]] = []
    for path, node in list(_nodes(view)):
        for entry in _entries(node):
            constrains = entry.get("constrains") or ()
            if not constrains or entry.get("id") == keep:
                continue
            if _is_parameter(path):  # its keywords are its schema's
                dropped_parameters.append((path[:-1], int(path[-1])))
                continue
            for keyword in constrains:
                node.pop(keyword, None)
    for where, index in sorted(dropped_parameters, key=lambda d: -d[1]):
        parent: Any = view
        for part in where:
            parent = parent[part]
        del parent[index]
    return view


def documented_view(raw: dict[str, Any]) -> dict[str, Any]:
    """The document with every keyword that exists only because of an assumption dropped."""
    return view_with(raw, None)
