"""What the target sent that the spec does not know: fields, statuses and headers.

Every answer the kit sees is compared with what ``openapi.yaml`` documents for its
operation: a status the operation does not list, a header neither the answer nor HTTP
itself defines, and a field (by JSON path) that no schema of the answer declares. A
schema that declares no properties, or says ``additionalProperties: true`` (a free-form
object such as ``clientInfo``), is open: what it holds is not reported, key by key or
otherwise. Nor is what the kit wrote itself: a field whose name and value the kit sent
in a write (a fuzzed body, echoed back by the target) is the kit's, not the target's.
A new field in the real API shows up on the first run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from kontext_mock.contracts.http import Exchange
from kontext_mock.contracts.openapi import ApiSpec
from kontext_mock.contracts.schema_views import ResponseSchema, resolve, response_schemas

__all__ = ["HTTP_HEADERS", "Undocumented"]

#: headers HTTP itself defines (semantics, caching, CORS, transport security): never news
HTTP_HEADERS = frozenset({
    "content-type", "content-length", "content-encoding", "content-language", "date",
    "server", "connection", "keep-alive", "transfer-encoding", "vary", "etag",
    "last-modified", "cache-control", "pragma", "expires", "age", "allow", "location",
    "via", "strict-transport-security", "access-control-allow-origin",
    "access-control-allow-credentials", "access-control-allow-headers",
    "access-control-allow-methods", "access-control-expose-headers", "access-control-max-age",
})
_EXAMPLE = 80
_READS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@dataclass(slots=True)
class Shape:
    """The fields a schema declares (None: open, anything goes), and its array items."""

    fields: dict[str, Shape] | None = None
    items: Shape | None = None


@dataclass(slots=True)
class _Seen:
    kind: str
    name: str
    operation: str | None
    count: int = 0
    example: Any = field(default=None)


class Undocumented:
    """Collects what answers carry beyond the spec."""

    def __init__(self, spec: ApiSpec) -> None:
        self.spec = spec
        self.answers: dict[tuple[str, str], ResponseSchema] = response_schemas(spec.raw)
        self.operations = {op for op, _ in self.answers}
        self._shapes: dict[str, Shape] = {}
        self.seen: dict[tuple[str, str, str | None], _Seen] = {}
        #: every (name, value) the kit's writes carried, at any depth of their bodies
        self.written: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    # -- shapes ----------------------------------------------------------------------

    def shape(self, pointer: str) -> Shape:
        """What the schema at ``pointer`` declares, merged over allOf/anyOf/oneOf."""
        cached = self._shapes.get(pointer)
        if cached is None:
            self._shapes[pointer] = Shape()  # a recursive schema refers to itself: open
            cached = self._shapes[pointer] = self._build(pointer, 0)
        return cached

    def _build(self, pointer: str, depth: int) -> Shape:
        node = resolve(self.spec.raw, pointer)
        if not isinstance(node, dict) or depth > 16:
            return Shape()
        if isinstance(node.get("$ref"), str):
            return self.shape(node["$ref"])
        merged = Shape(fields={} if "properties" in node else None)
        if merged.fields is not None:
            for name in node["properties"]:
                escaped = name.replace("~", "~0").replace("/", "~1")
                merged.fields[name] = self.shape(f"{pointer}/properties/{escaped}")
        if node.get("additionalProperties") not in (None, False):
            merged.fields = None
        if isinstance(node.get("items"), dict):
            merged.items = self.shape(f"{pointer}/items")
        for key in ("allOf", "anyOf", "oneOf"):
            for index, _ in enumerate(node.get(key) or []):
                part = self.shape(f"{pointer}/{key}/{index}")
                if part.fields is not None:
                    merged.fields = {**(merged.fields or {}), **part.fields}
                if part.items is not None:
                    merged.items = part.items
        return merged

    # -- the observer ----------------------------------------------------------------

    def __call__(self, ex: Exchange) -> None:
        if ex.method not in _READS and ex.request_body:
            self._remember(ex.request_body)
        op = ex.operation
        if op is None:
            found = self.spec.operation_for(ex.method, ex.url)
            op = found.operation_id if found else None
        if op is None or op not in self.operations:
            return
        with self._lock:
            answer = self.answers.get((op, str(ex.status)))
            if answer is None:
                self._note("status", str(ex.status), op, ex.curl())
                return
            for name, value in ex.headers.items():
                low = name.lower()
                if low not in answer.headers and low not in HTTP_HEADERS:
                    self._note("header", low, op, ex.redact(value))
            if answer.pointer is None:
                return
            body = ex.json_or_none()
            if body is not None:
                self._walk(body, self.shape(answer.pointer), "$", op, ex)

    def _remember(self, body: bytes) -> None:
        """Keep every (name, value) of a JSON body the kit sent: echoed back, it is not news."""
        try:
            sent = orjson.loads(body)
        except orjson.JSONDecodeError:
            return  # a form (the token request), or not JSON at all
        with self._lock:
            pending = [sent]
            while pending:
                value = pending.pop()
                if isinstance(value, dict):
                    for key, inner in value.items():
                        self.written.setdefault(key, []).append(inner)
                        pending.append(inner)
                elif isinstance(value, list):
                    pending.extend(value)

    def _walk(self, value: Any, shape: Shape, path: str, op: str, ex: Exchange) -> None:
        if isinstance(value, dict) and shape.fields is not None:
            for key, inner in value.items():
                child = shape.fields.get(key)
                if child is None:
                    if inner not in self.written.get(key, ()):
                        self._note("field", f"{path}.{key}", op, ex.redact(_excerpt(inner)))
                else:
                    self._walk(inner, child, f"{path}.{key}", op, ex)
        elif isinstance(value, list) and shape.items is not None:
            for inner in value:
                self._walk(inner, shape.items, f"{path}[*]", op, ex)

    def _note(self, kind: str, name: str, op: str, example: Any) -> None:
        key = (kind, name, op if kind != "field" else None)
        seen = self.seen.get(key)
        if seen is None:
            seen = self.seen[key] = _Seen(kind, name, op, example=example)
        seen.count += 1

    def items(self, served: set[str] | None = None) -> list[dict[str, Any]]:
        """What was seen, fields first, each with a count and an example; the statuses of
        operations the target does not serve (its 404s) are left out when ``served`` is given."""
        order = {"field": 0, "status": 1, "header": 2}
        seen = [s for s in self.seen.values()
                if served is None or s.kind != "status" or s.operation in served]
        return [{"kind": s.kind, "name": s.name, "operation": s.operation, "count": s.count,
                 "example": s.example}
                for s in sorted(seen, key=lambda s: (order[s.kind], s.name))]


def _excerpt(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= _EXAMPLE else text[:_EXAMPLE] + "..."
