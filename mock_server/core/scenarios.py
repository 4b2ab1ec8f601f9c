"""Scenario files: a whole state described in YAML, found by name, checked with line numbers.

A scenario lists organizations, their applications and OAuth clients, and sessions,
each with explicit fields (times absolute or relative to the scenario's now, like
``-3m``) or generated from a compact description (``generate: {count: 10000, mix:
{...}}``). The dev organization, application, client and token are always there, so
the documented dev credentials keep working; ``dev: true`` adds to them.
``settings: {idleAfter: 2m}`` sets the idle threshold its sessions were recorded with
(``kontext-mock record`` writes it when the recorded statuses need it).

Names resolve only inside ``fixtures/scenarios/`` and configured scenario folders: a
name is a file name without ``.yaml``, never a path. Any problem is a
:class:`ScenarioError` naming the file, the line and the field.
"""

from __future__ import annotations

import importlib.util
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from kontext_mock.config import MockConfig
from kontext_mock.core.durations import DurationError, parse_duration
from kontext_mock.core.errors import ApiError, NotFoundError
from kontext_mock.core.fakedata import DERIVED_STATES, SessionFaker
from kontext_mock.core.fields import RecordError, build_session, parse_time, scopes_of
from kontext_mock.core.gateway import checked_tools
from kontext_mock.core.lifecycles import Script, script_from_spec
from kontext_mock.core.records import AccessToken, Application, OAuthClient, Organization, Session
from kontext_mock.core.store import Store, StoreError

__all__ = [
    "NAME_PATTERN",
    "Blueprint",
    "ScenarioError",
    "available",
    "builtin_folder",
    "load",
    "parse",
    "resolve",
]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

_TIME = {"type": ["string", "null"]}
_SESSION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "state": {"enum": list(DERIVED_STATES)},
        "id": {"type": "string"},
        "name": {"type": "string", "minLength": 1},
        "status": {"enum": ["active", "disconnected"]},
        "createdAt": {"type": "string"},
        "connectedAt": _TIME,
        "lastActiveAt": _TIME,
        "tokenExpiresAt": _TIME,
        "disconnectedAt": _TIME,
        "disconnectReason": {"enum": ["revoked", "agent", "timeout", None]},
        "hostname": {"type": ["string", "null"]},
        "userAgent": {"type": ["string", "null"]},
        "clientInfo": {
            "type": ["object", "null"],
            "required": ["name"],
            "properties": {"name": {"type": "string"}},
        },
        "clientSessionId": {"type": ["string", "null"]},
        "authenticatedUserId": {"type": ["string", "null"]},
        "tokenIdentifier": {"type": ["string", "null"]},
        "lifecycle": {"$ref": "#/$defs/lifecycle"},
        "repeat": {"type": "integer", "minimum": 1, "maximum": 100_000},
    },
}
_GENERATE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["generate"],
    "properties": {
        "generate": {
            "type": "object",
            "additionalProperties": False,
            "required": ["count"],
            "properties": {
                "count": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                "mix": {"$ref": "#/$defs/mix"},
                "seed": {"type": "integer"},
            },
        },
    },
}
_CLIENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["clientId", "clientSecret", "scopes"],
    "properties": {
        "clientId": {"type": "string", "minLength": 1},
        "clientSecret": {"type": "string", "minLength": 1},
        "scopes": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "name": {"type": "string"},
        "token": {"type": "string", "minLength": 8},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "description": {"type": "string"},
        "seed": {"type": "integer", "minimum": 0},
        "clock": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"now": {"type": "string"}, "frozen": {"type": "boolean"}},
        },
        "settings": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"idleAfter": {"type": ["string", "number"]}},
        },
        "mcp": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"tools": {"type": "array", "items": {"type": "object"}}},
        },
        "organizations": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "dev": {"const": True},
                    "id": {"type": "string", "minLength": 1},
                    "name": {"type": "string", "minLength": 1},
                    "clients": {"type": "array", "items": _CLIENT},
                    "applications": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "dev": {"const": True},
                                "id": {"type": "string"},
                                "name": {"type": "string", "minLength": 1},
                                "clients": {"type": "array", "items": _CLIENT},
                                "sessions": {
                                    "type": "array",
                                    "items": {
                                        "if": {"type": "object", "required": ["generate"]},
                                        "then": _GENERATE,
                                        "else": _SESSION,
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "$defs": {
        "mix": {
            "type": "object",
            "additionalProperties": False,
            "properties": {s: {"type": "number", "minimum": 0} for s in DERIVED_STATES},
        },
        "lifecycle": {
            "type": "object",
            "additionalProperties": False,
            "required": ["until"],
            "properties": {
                "heartbeatEvery": {"type": ["string", "number"]},
                "until": {"type": "string"},
                "then": {"enum": ["disconnect", "expire", "idle"]},
                "reason": {"enum": ["agent", "timeout", "revoked"]},
            },
        },
    },
}
_VALIDATOR = Draft202012Validator(SCHEMA)
Path_ = tuple[str | int, ...]


class _NamePool:
    """Faker, except that first names come from a seeded pool of its own: one Faker call
    per name was half the cost of generating 10,000 sessions."""

    def __init__(self, fake: Any, rng: Any, size: int = 256) -> None:
        self._fake = fake
        self._rng = rng
        self._names = [fake.first_name() for _ in range(size)]

    def first_name(self) -> str:
        """A first name, drawn with the faker's seeded generator."""
        return str(self._rng.choice(self._names))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fake, name)


def _faker(seed: int, config: MockConfig) -> SessionFaker:
    faker = SessionFaker(seed, config.idle_after)
    faker.fake = _NamePool(faker.fake, faker.rng)  # type: ignore[assignment]
    return faker


class ScenarioError(ApiError):
    """A scenario that does not load: 422 ``invalid_scenario`` naming file, line and field."""

    def __init__(self, file: str, line: int | None, field: str | None, problem: str) -> None:
        where = f"{file}:{line}" if line else file
        what = f" {field}:" if field else ""
        super().__init__(422, "invalid_scenario", f"{where}:{what} {problem}",
                         file=file, line=line, field=field)
        self.problem = problem


@dataclass
class Blueprint:
    """A loaded scenario, ready to install: records, scripts and the clock it asks for."""

    name: str
    description: str
    now: datetime
    frozen: bool | None
    seed: int
    store: Store
    scripts: list[Script] = field(default_factory=list)
    #: the idle threshold the scenario asks for (None: the mock's own)
    idle_after: timedelta | None = None
    #: the MCP gateway's tools (``mcp.tools``; default none)
    mcp_tools: list[dict[str, Any]] = field(default_factory=list)


# -- finding scenarios ---------------------------------------------------------------------


def builtin_folder() -> Path:
    """``fixtures/scenarios``: the plugin's package's folder (found, not imported: the
    plugin's package is pytest's business, not the server's)."""
    spec = importlib.util.find_spec("kontext_mock.fixtures")
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations))) / "scenarios"


def _folders(config: MockConfig) -> list[Path]:
    return [*(Path(p) for p in config.scenario_dirs), builtin_folder()]


def resolve(name: str, config: MockConfig) -> Path:
    """The file of a scenario name; 404 for an unknown name, 400 for anything not a name."""
    if not NAME_PATTERN.match(name):
        raise ApiError(
            400, "validation_error",
            f"not a scenario name: {name!r} (names are like mixed or two-orgs; paths are refused)",
            details=[{"location": "body", "field": "name", "message": "not a scenario name"}],
        )
    for folder in _folders(config):
        for suffix in (".yaml", ".yml"):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    known = ", ".join(n for n, _ in available(config)) or "none"
    raise NotFoundError(f"unknown scenario {name!r} (known: {known})")


def available(config: MockConfig) -> list[tuple[str, str]]:
    """``(name, description)`` of every scenario that can be loaded by name."""
    found: dict[str, str] = {}
    for folder in _folders(config):
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            if path.stem in found or not NAME_PATTERN.match(path.stem):
                continue
            found[path.stem] = _description(path)
    return sorted(found.items())


def _description(path: Path) -> str:
    # The description is the file's first top-level key by convention; read only the head.
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("description:"):
                text = line.partition(":")[2].strip()
                return str(yaml.safe_load(text) or "") if text else ""
            if line.strip() and not line.startswith("#"):
                break
    return ""


# -- reading -------------------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that leaves timestamps as text (the mock parses them itself)."""


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


class _ExpansionError(Exception):
    """Aliases that make the document recursive or blow it up (a "billion laughs")."""

    def __init__(self, node: yaml.Node, problem: str) -> None:
        super().__init__(problem)
        self.line = node.start_mark.line + 1
        self.problem = problem


def _distinct_nodes(root: yaml.Node) -> int:
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            todo.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
    return len(seen)


def _marks(root: yaml.Node, out: dict[Path_, int]) -> None:
    """The line of every path of the document, walking it as the data will be (aliases
    expanded), refusing recursion and expansion far beyond the text's own size."""
    budget = 10 * _distinct_nodes(root) + 10_000
    todo: list[tuple[yaml.Node, Path_, frozenset[int]]] = [(root, (), frozenset())]
    while todo:
        node, path, ancestors = todo.pop()
        budget -= 1
        if budget < 0:
            raise _ExpansionError(node, "aliases (*name) expand the document far beyond its size")
        if id(node) in ancestors:
            raise _ExpansionError(node, "an alias (*name) refers to a node that contains it")
        out.setdefault(path, node.start_mark.line + 1)
        inner = ancestors | {id(node)}
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                out[child] = key.start_mark.line + 1
                todo.append((value, child, inner))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                todo.append((item, (*path, index), inner))


def _field(path: Path_) -> str | None:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or None


class _Context:
    """Turns problems at a path of the document into :class:`ScenarioError`."""

    def __init__(self, file: str, marks: dict[Path_, int]) -> None:
        self.file = file
        self.marks = marks

    def error(self, path: Path_, problem: str) -> ScenarioError:
        line = None
        for cut in range(len(path), -1, -1):
            line = self.marks.get(path[:cut])
            if line is not None:
                break
        return ScenarioError(self.file, line, _field(path), problem)


def parse(text: str, file: str) -> tuple[dict[str, Any], _Context]:
    """Read and check a scenario's YAML text: its data and where each field is."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ScenarioError(file, line, None, f"malformed YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(file, None, None, f"malformed YAML: {exc}") from None
    marks: dict[Path_, int] = {}
    if node is None:
        return {}, _Context(file, marks)
    try:
        _marks(node, marks)
    except _ExpansionError as exc:
        raise ScenarioError(file, exc.line, None, exc.problem) from None
    try:
        data = _Loader(text).get_single_data()
    except yaml.MarkedYAMLError as exc:  # e.g. a tag no safe loader constructs (!!python/...)
        mark = exc.problem_mark or exc.context_mark
        raise ScenarioError(file, mark.line + 1 if mark else None, None,
                            f"unsupported YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(file, None, None, f"unsupported YAML: {exc}") from None
    context = _Context(file, marks)
    if not isinstance(data, dict):
        raise context.error((), "a scenario is a mapping (description, organizations, ...)")
    for error in sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path: Path_ = tuple(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = error.schema.get("properties", {})
            extra = sorted(str(k) for k in error.instance if k not in allowed)
            if extra:
                path = (*path, extra[0])
                message = f"unknown field (known: {', '.join(allowed)})"
        elif error.validator == "required" and "'" in message:
            path = (*path, message.split("'")[1])
            message = "is required"
        raise context.error(path, message)
    return data, context


def load(source: str | Path, config: MockConfig, now: datetime) -> Blueprint:
    """Load a scenario by name, or (from Python and the CLI only) by path, relative to ``now``."""
    if isinstance(source, Path) or not NAME_PATTERN.match(source):
        path = Path(source)
        if isinstance(source, str) and (".." in Path(source).parts or path.suffix not in (
            ".yaml", ".yml"
        )):
            raise ApiError(
                400, "validation_error",
                f"not a scenario name or a .yaml path: {source!r}",
                details=[{"location": "body", "field": "name", "message": "not a scenario name"}],
            )
        if not path.is_file():
            raise NotFoundError(f"no scenario file at {path}")
        name = path.stem
    else:
        path = resolve(source, config)
        name = source
    text = path.read_text(encoding="utf-8")
    return build(text, str(path), name, config, now)


def build(text: str, file: str, name: str, config: MockConfig, now: datetime) -> Blueprint:
    """The state a scenario's text describes (nothing is installed)."""
    data, ctx = parse(text, file)
    clock = data.get("clock", {})
    if "now" in clock:
        try:
            start = parse_time(clock["now"], now, "now")
        except RecordError as exc:
            raise ctx.error(("clock", "now"), exc.message) from None
        assert start is not None
        now = start
    seed = int(data.get("seed", config.seed))
    idle_after = None
    if "idleAfter" in data.get("settings", {}):
        try:
            idle_after = parse_duration(data["settings"]["idleAfter"])
        except DurationError as exc:
            raise ctx.error(("settings", "idleAfter"), str(exc)) from None
        if idle_after <= timedelta(0):
            raise ctx.error(("settings", "idleAfter"), "must be more than 0")
        config = config.with_changes(idle_after=idle_after)  # its generated sessions too
    store = Store()
    _baseline(store, config)
    try:
        tools = checked_tools(data.get("mcp", {}).get("tools", []))
    except ValueError as exc:
        raise ctx.error(("mcp", "tools"), str(exc)) from None
    blueprint = Blueprint(name, str(data.get("description", "")), now, clock.get("frozen"),
                          seed, store, idle_after=idle_after, mcp_tools=tools)
    faker = _faker(seed, config)
    sessions: list[Session] = []
    for oi, org_data in enumerate(data.get("organizations", [])):
        _organization(ctx, ("organizations", oi), org_data, config, faker, blueprint, sessions)
    if len(sessions) > config.max_sessions:
        raise ctx.error(("organizations",),
                        f"{len(sessions)} sessions; the mock holds at most {config.max_sessions}")
    try:
        store.add_sessions(sessions)
    except StoreError as exc:
        raise ctx.error(("organizations",), str(exc)) from None
    return blueprint


def _baseline(store: Store, config: MockConfig) -> None:
    store.add_organization(Organization(config.dev_organization_id, config.dev_organization_name))
    store.add_application(Application(config.dev_application_id, config.dev_organization_id,
                                      config.dev_application_name))
    store.add_client(OAuthClient(config.dev_client_id, config.dev_client_secret,
                                 config.dev_organization_id, config.dev_scopes,
                                 config.dev_application_id, "dev client"))
    store.add_token(AccessToken(config.dev_token, config.dev_client_id,
                                config.dev_organization_id, config.dev_scopes,
                                config.dev_application_id, None))


def _organization(
    ctx: _Context, path: Path_, data: Mapping[str, Any], config: MockConfig,
    faker: SessionFaker, bp: Blueprint, sessions: list[Session],
) -> None:
    store = bp.store
    if data.get("dev"):
        if "id" in data or "name" in data:
            raise ctx.error((*path, "dev"), "the dev organization keeps its id and name")
        org = store.organizations[config.dev_organization_id]
    else:
        org = Organization(str(data.get("id") or faker.uuid()),
                           str(data.get("name") or faker.fake.company()))
        try:
            store.add_organization(org)
        except StoreError as exc:
            raise ctx.error((*path, "id"), str(exc)) from None
    for ci, client in enumerate(data.get("clients", [])):
        _client(ctx, (*path, "clients", ci), client, org.id, None, store)
    for ai, app_data in enumerate(data.get("applications", [])):
        app_path = (*path, "applications", ai)
        if app_data.get("dev"):
            if org.id != config.dev_organization_id:
                raise ctx.error((*app_path, "dev"), "the dev application is in the dev organization")
            app = store.applications[config.dev_application_id]
        else:
            try:
                app_id = _uuid(app_data["id"]) if "id" in app_data else faker.uuid()
            except ValueError:
                raise ctx.error((*app_path, "id"), "must be a UUID") from None
            app = Application(app_id, org.id, str(app_data.get("name") or
                                                  f"{faker.fake.word().title()} Agent"))
            try:
                store.add_application(app)
            except StoreError as exc:
                raise ctx.error((*app_path, "id"), str(exc)) from None
        for ci, client in enumerate(app_data.get("clients", [])):
            _client(ctx, (*app_path, "clients", ci), client, org.id, app.id, store)
        for si, item in enumerate(app_data.get("sessions", [])):
            _sessions(ctx, (*app_path, "sessions", si), item, app, config, faker, bp, sessions)


def _uuid(value: Any) -> str:
    return str(uuid.UUID(str(value)))


def _client(ctx: _Context, path: Path_, data: Mapping[str, Any], org_id: str,
            app_id: str | None, store: Store) -> None:
    try:
        scopes = scopes_of(data["scopes"])
    except RecordError as exc:
        raise ctx.error((*path, "scopes"), exc.message) from None
    client = OAuthClient(data["clientId"], data["clientSecret"], org_id, scopes, app_id,
                         str(data.get("name", "")))
    try:
        store.add_client(client)
    except StoreError as exc:
        raise ctx.error((*path, "clientId"), str(exc)) from None
    if "token" in data:
        if data["token"] in store.tokens:
            raise ctx.error((*path, "token"), "this token is already taken")
        store.add_token(AccessToken(data["token"], client.client_id, org_id, scopes, app_id, None))


def _sessions(
    ctx: _Context, path: Path_, item: Mapping[str, Any], app: Application, config: MockConfig,
    faker: SessionFaker, bp: Blueprint, sessions: list[Session],
) -> None:
    now = bp.now
    if "generate" in item:
        spec = item["generate"]
        mix = spec.get("mix") or config.status_mix
        count = int(spec["count"])
        if len(sessions) + count > config.max_sessions:
            raise ctx.error((*path, "generate", "count"),
                            f"the mock holds at most {config.max_sessions} sessions")
        block = _faker(int(spec["seed"]), config) if "seed" in spec else faker
        sessions.extend(block.sessions(app, count, mix, now))
        return
    fields = {k: v for k, v in item.items() if k not in ("state", "lifecycle", "repeat")}
    repeat = int(item.get("repeat", 1))
    if len(sessions) + repeat > config.max_sessions:  # refuse before building, as for generate
        raise ctx.error((*path, "repeat"), f"the mock holds at most {config.max_sessions} sessions")
    for _ in range(repeat):
        try:
            session = build_session(faker, app, item.get("state", "active"), fields, now)
        except RecordError as exc:
            raise ctx.error((*path, exc.field) if exc.field else path, exc.message) from None
        sessions.append(session)
        if item.get("lifecycle") is not None:
            try:
                bp.scripts.append(script_from_spec(session.id, item["lifecycle"], now))
            except RecordError as exc:
                where = (*path, "lifecycle", exc.field) if exc.field else (*path, "lifecycle")
                raise ctx.error(where, exc.message) from None
