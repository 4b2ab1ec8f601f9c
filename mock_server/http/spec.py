"""The OpenAPI document, loaded once, compiled into what the mock runs on.

For every operation: its Flask URL rule, its parameters with their coercions and
compiled JSON Schema validators, its body validator, its security requirements, and
validators for each documented response. Nothing is re-resolved per request.

A validator is compiled the first time it is asked for, not when the spec loads: most
requests are answered by the quick checks (:func:`quick_check`) and never need one, and
jsonschema itself is imported only then, so that a mock starts without it.
"""

from __future__ import annotations

import copy
import operator
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cache, partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kontext_mock.http.specfile import read_document

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.exceptions import ValidationError
    from referencing import Registry

__all__ = [
    "ErrorStyle",
    "LazyValidator",
    "Operation",
    "Parameter",
    "ResponseMismatch",
    "Spec",
    "default_spec_path",
    "load_spec",
    "path_pattern",
    "quick_check",
]

_SPEC_URI = "urn:kontext:spec"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_INTEGER = re.compile(r"^[+-]?\d{1,18}$")
#: the formats validation asserts (jsonschema checks "date-time" only with rfc3339-validator)
_ASSERTED_FORMATS = ("uuid", "date-time")
# The canonical UUID text; jsonschema's "uuid" format accepts every string of this shape.
_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# Schema keywords that assert nothing.
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "example", "deprecated", "readOnly",
     "writeOnly", "$comment"}
)
QuickCheck = Callable[[Any], bool]
# Counts validator compilations (each at its first use); a regression guard checks that
# serving compiles none again.
compilations = 0
# Held while a validator (or the registry its refs resolve in) is compiled: serving threads
# asking for the same validator at once get the one compiled object.
_COMPILING = threading.RLock()


def default_spec_path(name: str = "openapi.yaml") -> Path:
    """A spec of the package: ``openapi.yaml`` (the public API's) or ``control.yaml``."""
    return Path(str(resources.files("kontext_mock").joinpath(name)))


class ResponseMismatch(AssertionError):  # noqa: N818 - an assertion, read as one
    """A response the spec does not describe."""


class LazyValidator:
    """A schema's validator, compiled by its spec on first use (once, whichever thread
    asks first); it validates as the compiled ``Draft202012Validator`` does."""

    __slots__ = ("_compiled", "_schema", "_spec")

    def __init__(self, spec: Spec, schema: Mapping[str, Any]) -> None:
        self._spec = spec
        self._schema = schema
        self._compiled: Draft202012Validator | None = None

    @property
    def ready(self) -> bool:
        """True once compiled."""
        return self._compiled is not None

    @property
    def compiled(self) -> Draft202012Validator:
        """The compiled validator (compiled now if it was not yet)."""
        compiled = self._compiled
        if compiled is None:
            with _COMPILING:
                compiled = self._compiled
                if compiled is None:
                    compiled = self._compiled = self._spec.validator(self._schema)
        return compiled

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        """Each way ``instance`` fails the schema."""
        errors: Iterator[ValidationError] = self.compiled.iter_errors(instance)
        return errors

    def is_valid(self, instance: Any) -> bool:
        """True when ``instance`` fails the schema in no way."""
        valid: bool = self.compiled.is_valid(instance)
        return valid


@dataclass(frozen=True, slots=True)
class Parameter:
    """One path, query or header parameter, ready to coerce and validate."""

    name: str
    location: str
    required: bool
    schema: Mapping[str, Any]
    validator: LazyValidator
    kind: str  # "integer", "boolean", "number" or "string": how to read the text
    #: True when the validator would find nothing wrong with a value (compiled from simple
    #: schemas by :func:`quick_check`); False means "ask the validator", never "invalid".
    accepts: QuickCheck | None = None

    def coerce(self, raw: str) -> Any:
        """Read the parameter's text as its schema's type; leave it as text when it is not."""
        if self.kind == "integer" and _INTEGER.match(raw):
            return int(raw)
        if self.kind == "boolean" and raw in ("true", "false"):
            return raw == "true"
        if self.kind == "number":
            try:
                return float(raw)
            except ValueError:
                return raw
        return raw

    @property
    def default(self) -> Any:
        """The schema's default, or None."""
        return self.schema.get("default")


def path_pattern(path: str) -> re.Pattern[str]:
    """A regular expression matching the spec path ``path`` (``/a/{id}/b``), each
    parameter a group of one segment, as Flask's default converter takes it (no slash)."""
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(path)))


class ErrorStyle(Enum):
    """How an operation's refusals of its input are worded: its ``x-error-style`` (the API's
    shape when it names none)."""

    #: the API's ``{"error", "message", "details"}`` (``validation_error``)
    API = "api"
    #: RFC 6749 section 5.2's ``{"error", "error_description"}`` (the token endpoint)
    OAUTH = "oauth"
    #: a JSON-RPC 2.0 error response (the MCP gateway): -32700 or -32600, ``id`` null
    JSONRPC = "jsonrpc"


@dataclass(slots=True)
class Operation:
    """One operation of the spec, compiled."""

    operation_id: str
    method: str
    path: str
    rule: str
    parameters: list[Parameter]
    body_media_type: str | None
    body_required: bool
    body_validator: LazyValidator | None
    # alternatives of security requirements: [(scheme, [scopes]), ...] each
    security: list[list[tuple[str, list[str]]]]
    responses: dict[str, tuple[LazyValidator | None, list[str]]] = field(default_factory=dict)
    error_style: ErrorStyle = ErrorStyle.API
    #: a quick yes for bodies (see :func:`quick_check`); None: always ask the validator
    body_accepts: QuickCheck | None = None
    #: follows the document's local ``$ref`` chains (what a failure's words are read from)
    resolve: Callable[[Any], Any] = lambda node: node

    @property
    def bearer(self) -> bool:
        """True when a bearer token is needed."""
        return any(
            scheme in ("oauth2", "bearerAuth") for req in self.security for scheme, _ in req
        )

    @property
    def scope_alternatives(self) -> list[list[str]]:
        """Each way of holding enough scopes (any one suffices)."""
        return [scopes for req in self.security for scheme, scopes in req if scheme == "oauth2"]


class Spec:
    """A loaded, compiled OpenAPI document."""

    def __init__(self, document: dict[str, Any], source: str = "<memory>") -> None:
        self.document = document
        self.source = source
        #: jsonschema's validator class, the registry the refs resolve in and the format
        #: checker, taken together at the first compilation (see :meth:`validator`)
        self._toolkit: tuple[type[Draft202012Validator], Registry, FormatChecker] | None = None
        #: every validator this spec made, compiled or not (see :meth:`warm`)
        self._lazy: list[LazyValidator] = []
        self.operations: dict[str, Operation] = {}
        for path, item in document.get("paths", {}).items():
            shared = item.get("parameters", [])
            for method in _METHODS:
                if method in item:
                    op = self._compile(path, method, item[method], shared)
                    self.operations[op.operation_id] = op

    @classmethod
    def from_file(cls, path: str | Path) -> Spec:
        """Load a spec from a YAML or JSON file (a package's spec from its JSON form,
        when that was made from the same text: ``specfile.py``)."""
        return cls(read_document(path), str(path))

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations.values())

    # -- compilation -------------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        """Follow local ``$ref`` chains of a node of the document."""
        while isinstance(node, Mapping) and "$ref" in node:
            node = self._pointer(node["$ref"])
        return node

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are supported: {ref}")
        node: Any = self.document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def validator(self, schema: Mapping[str, Any]) -> Draft202012Validator:
        """A compiled validator for a schema of this document (its refs resolve in it)."""
        global compilations
        with _COMPILING:
            compilations += 1
            if self._toolkit is None:
                # Imported once per spec and kept together: every validator of the spec
                # comes from one import of jsonschema, so that a format checker raises the
                # very FormatError its validator catches, even where the modules were
                # dropped from sys.modules and imported again (as pytester does).
                from jsonschema import Draft202012Validator, FormatChecker
                from referencing import Registry
                from referencing.jsonschema import DRAFT202012

                registry = Registry().with_resource(
                    _SPEC_URI, DRAFT202012.create_resource(self.document))
                self._toolkit = (Draft202012Validator, registry, FormatChecker(_ASSERTED_FORMATS))
            validator_class, registry, formats = self._toolkit
        return validator_class(_rebase(schema), registry=registry, format_checker=formats)

    def lazy_validator(self, schema: Mapping[str, Any]) -> LazyValidator:
        """A validator for a schema of this document, compiled when first used."""
        lazy = LazyValidator(self, schema)
        self._lazy.append(lazy)
        return lazy

    @property
    def jsonrpc_paths(self) -> frozenset[str]:
        """The paths of the operations that refuse in JSON-RPC's words (``x-error-style:
        jsonrpc``): every refusal of a request to them, whoever makes it, is one."""
        return frozenset(op.path for op in self if op.error_style is ErrorStyle.JSONRPC)

    @property
    def uncompiled(self) -> int:
        """How many of the validators this spec made are not compiled yet."""
        return sum(not lazy.ready for lazy in self._lazy)

    def warm(self) -> int:
        """Compile every validator this spec made that is not compiled yet, one at a time
        (a served mock does it in a worker once it listens, so that no first refusal
        compiles on the event loop); how many it compiled."""
        compiled = 0
        for lazy in list(self._lazy):
            if not lazy.ready:
                lazy.compiled  # noqa: B018 - compiled for its effect
                compiled += 1
        return compiled

    def _compile(
        self, path: str, method: str, node: dict[str, Any], shared: list[Any]
    ) -> Operation:
        params: dict[tuple[str, str], Parameter] = {}
        for raw in [*shared, *node.get("parameters", [])]:
            p = self.resolve(raw)
            schema = self.resolve(p.get("schema", {}))
            kind = schema.get("type", "string")
            params[(p["in"], p["name"])] = Parameter(
                name=p["name"],
                location=p["in"],
                required=bool(p.get("required", p["in"] == "path")),
                schema=schema,
                validator=self.lazy_validator(schema),
                kind=kind if isinstance(kind, str) else "string",
                accepts=quick_check(schema),
            )
        body_type = body_validator = None
        body_accepts: QuickCheck | None = None
        body_required = False
        if "requestBody" in node:
            body = self.resolve(node["requestBody"])
            body_required = bool(body.get("required", False))
            body_type, media = next(iter(body["content"].items()))
            body_validator = self.lazy_validator(media.get("schema", {}))
            body_accepts = quick_check(media.get("schema", {}), self.resolve)
        security = [
            list(req.items()) for req in node.get("security", self.document.get("security", []))
        ]
        op = Operation(
            operation_id=node["operationId"],
            method=method.upper(),
            path=path,
            rule=re.sub(r"\{([^}]+)\}", r"<\1>", path),
            parameters=list(params.values()),
            body_media_type=body_type,
            body_required=body_required,
            body_validator=body_validator,
            body_accepts=body_accepts,
            security=security,
            resolve=self.resolve,
        )
        for status, raw_response in node.get("responses", {}).items():
            response = self.resolve(raw_response)
            media = response.get("content", {}).get("application/json")
            headers = [
                name.lower()
                for name, h in response.get("headers", {}).items()
                if self.resolve(h).get("required")
            ]
            op.responses[status] = (
                self.lazy_validator(media["schema"]) if media and "schema" in media else None,
                headers,
            )
        # (the operation says so itself; the API's shape when it does not)
        op.error_style = ErrorStyle(node.get("x-error-style", ErrorStyle.API.value))
        return op

    # -- response validation -------------------------------------------------------------

    def check_response(
        self, op: Operation, status: int, headers: Any, body: Any
    ) -> None:
        """Raise :class:`ResponseMismatch` unless the spec describes this response."""
        entry = op.responses.get(str(status)) or op.responses.get(f"{str(status)[0]}XX")
        entry = entry or op.responses.get("default")
        if entry is None:
            raise ResponseMismatch(
                f"{op.operation_id}: status {status} is not documented"
                f" (documented: {', '.join(sorted(op.responses))})"
            )
        validator, required_headers = entry
        # .keys(): werkzeug's Headers iterate as (name, value) pairs
        lowered = {k.lower() for k in headers.keys()}  # noqa: SIM118
        missing = [h for h in required_headers if h not in lowered]
        if missing:
            raise ResponseMismatch(f"{op.operation_id} {status}: missing headers {missing}")
        if validator is not None:
            errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
            if errors:
                e = errors[0]
                where = "/".join(str(p) for p in e.absolute_path) or "<root>"
                raise ResponseMismatch(
                    f"{op.operation_id} {status}: body at {where}: {e.message}"
                )


def quick_check(
    schema: Mapping[str, Any], resolve: Callable[[Any], Any] | None = None
) -> QuickCheck | None:
    """A fast yes for the values a simple schema accepts, or None for other schemas.

    Parameters are mostly a UUID, a bounded integer, an enum or a boolean, and bodies flat
    objects of such fields; checking those with plain Python costs a small part of what a
    jsonschema validator does (bench/ANALYSIS.md). The check only ever says yes for values the validator
    accepts: anything it does not answer with certainty (another type, an odd but valid
    UUID spelling, a schema with other keywords) goes to the validator, which keeps the
    last word and writes the error message. ``resolve`` follows ``$ref`` (else: None).
    """
    # vendor extensions (x-assumption, ...) assert nothing, like the annotations
    rules = {k: v for k, v in schema.items() if k not in _ANNOTATIONS and not k.startswith("x-")}
    if "$ref" in rules:
        if resolve is None or len(rules) > 1:
            return None
        return quick_check(resolve(schema), resolve)
    if set(rules) == {"oneOf"}:
        return _one_or_null(rules["oneOf"], resolve)
    kind = rules.pop("type", None)
    if isinstance(kind, list) and len(kind) == 2 and "null" in kind:
        # (a value or null: a keyword of the other type says nothing of null)
        other = quick_check({**rules, "type": next(k for k in kind if k != "null")}, resolve)
        return None if other is None else (lambda v: v is None or other(v))
    checks: list[QuickCheck] = []
    if "const" in rules and isinstance(rules["const"], str) and kind in ("string", None):
        kind, constant = "string", rules.pop("const")
        checks.append(lambda v: v == constant)
    if kind == "object":
        checks.append(lambda v: isinstance(v, dict))
        fields: dict[str, QuickCheck] = {}
        for name, sub in rules.pop("properties", {}).items():
            check = quick_check(sub, resolve) if isinstance(sub, Mapping) else None
            if check is None:
                return None
            fields[name] = check
        required = tuple(rules.pop("required", ()))
        closed = rules.pop("additionalProperties", True)
        if not isinstance(closed, bool):
            return None
        checks.append(lambda v: all(k in v for k in required))
        if not closed:
            checks.append(lambda v: all(k in fields for k in v))
        checks.append(lambda v: all(c(v[k]) for k, c in fields.items() if k in v))
    elif kind == "string":
        fmt = rules.pop("format", None)
        if fmt == "uuid":
            checks.append(_is_uuid)  # (a string, and a UUID: one call for the usual id)
        elif fmt in _ASSERTED_FORMATS:
            return None  # an asserted format without a quick form
        else:
            checks.append(lambda v: isinstance(v, str))
        if "enum" in rules:
            allowed = frozenset(v for v in rules.pop("enum") if isinstance(v, str))
            checks.append(allowed.__contains__)
        if "minLength" in rules:
            shortest = rules.pop("minLength")
            checks.append(lambda v: len(v) >= shortest)
        if "maxLength" in rules:
            longest = rules.pop("maxLength")
            checks.append(lambda v: len(v) <= longest)
        if "pattern" in rules:
            pattern = re.compile(rules.pop("pattern"))
            checks.append(lambda v: pattern.search(v) is not None)
    elif kind == "integer":
        checks.append(lambda v: type(v) is int)  # not bool, which is an int subclass
        bounds: dict[str, Callable[[Any, Any], bool]] = {
            "minimum": operator.ge, "maximum": operator.le,
            "exclusiveMinimum": operator.gt, "exclusiveMaximum": operator.lt,
        }
        for keyword, compare in bounds.items():
            if keyword in rules:
                limit = rules.pop(keyword)
                if type(limit) not in (int, float):
                    return None
                checks.append(partial(_within, compare, limit))
    elif kind == "boolean":
        checks.append(lambda v: type(v) is bool)
    else:
        return None
    if rules:
        return None  # a keyword without a quick form: the validator decides
    return _every(tuple(checks))


def _one_or_null(alternatives: Any, resolve: Callable[[Any], Any] | None) -> QuickCheck | None:
    """``oneOf: [X, {type: 'null'}]`` (either order), X of one type that is not null: null,
    or a value X accepts (which null's alternative then refuses: exactly one matches)."""
    if not isinstance(alternatives, list) or len(alternatives) != 2:
        return None
    nulls = [a for a in alternatives if a == {"type": "null"}]
    if len(nulls) != 1:
        return None
    other = next(a for a in alternatives if a != {"type": "null"})
    if not isinstance(other, Mapping):
        return None
    resolved = resolve(other) if resolve is not None and "$ref" in other else other
    if not isinstance(resolved, Mapping) or resolved.get("type") not in (
            "object", "string", "integer", "boolean"):
        return None
    check = quick_check(other, resolve)
    return None if check is None else (lambda v: v is None or check(v))


def _within(compare: Callable[[Any, Any], bool], limit: float, value: Any) -> bool:
    return compare(value, limit)


def _is_uuid(value: Any) -> bool:
    return isinstance(value, str) and _CANONICAL_UUID.fullmatch(value) is not None


def _every(checks: tuple[QuickCheck, ...]) -> QuickCheck:
    if len(checks) == 1:
        return checks[0]

    def accepts(value: Any) -> bool:
        for check in checks:  # noqa: SIM110 - a plain loop: all() over a generator costs more
            if not check(value):
                return False
        return True

    return accepts


def _rebase(schema: Any) -> Any:
    """Point a schema's local refs (``#/components/...``) at the whole document."""
    if isinstance(schema, Mapping):
        out = {k: _rebase(v) for k, v in schema.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            out["$ref"] = _SPEC_URI + ref
        return out
    if isinstance(schema, list):
        return [_rebase(v) for v in schema]
    return copy.copy(schema)


@cache
def load_spec(path: str | None = None) -> Spec:
    """The spec at ``path`` (default: the public ``openapi.yaml``), loaded and compiled once."""
    return Spec.from_file(path or default_spec_path())
