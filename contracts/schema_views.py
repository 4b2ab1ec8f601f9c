"""The response schemas of the spec, resolved: by operation and status, for any view.

``openapi.yaml`` reaches most schemas through ``$ref`` (responses, components); the
kit's observers need, for each documented answer, where its body schema is, which
schema nodes it reaches, and a compiled validator for a given view of the document
(``assumptions.view_with``). Compiled once per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = ["Compiler", "ResponseSchema", "reached", "resolve", "response_schemas"]

_URI = "urn:kontext-contract:spec"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True, slots=True)
class ResponseSchema:
    """Where one documented answer's JSON body schema is, and the headers it documents."""

    operation: str
    status: str
    #: JSON pointer of the body schema (None: the answer documents no JSON body)
    pointer: str | None
    headers: frozenset[str]


def resolve(document: dict[str, Any], pointer: str) -> Any:
    """The node at a ``#/...`` pointer."""
    node: Any = document
    for part in pointer[2:].split("/") if pointer != "#" else []:
        key = part.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def response_schemas(document: dict[str, Any]) -> dict[tuple[str, str], ResponseSchema]:
    """Every documented answer, by ``(operationId, status)``."""
    out: dict[tuple[str, str], ResponseSchema] = {}
    for template, item in (document.get("paths") or {}).items():
        for method in _METHODS:
            op = (item or {}).get(method)
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            for status, response in (op.get("responses") or {}).items():
                pointer = f"#/paths/{_escape(template)}/{method}/responses/{status}"
                while isinstance(response, dict) and "$ref" in response:
                    pointer = response["$ref"]
                    response = resolve(document, pointer)
                content = (response or {}).get("content") or {}
                body = f"{pointer}/content/application~1json/schema" \
                    if "application/json" in content else None
                headers = frozenset(h.lower() for h in (response or {}).get("headers") or {})
                out[(op["operationId"], str(status))] = ResponseSchema(
                    op["operationId"], str(status), body, headers)
    return out


def reached(document: dict[str, Any], pointer: str) -> Iterator[str]:
    """The pointers of every schema node reachable from ``pointer`` (``$ref`` followed)."""
    seen: set[str] = set()
    todo = [pointer]
    while todo:
        here = todo.pop()
        if here in seen:
            continue
        seen.add(here)
        yield here
        node = resolve(document, here)
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("$ref"), str):
            todo.append(node["$ref"])
        for key in ("items", "not", "additionalProperties"):
            if isinstance(node.get(key), dict):
                todo.append(f"{here}/{key}")
        for key in ("allOf", "anyOf", "oneOf", "prefixItems"):
            for index, _ in enumerate(node.get(key) or []):
                todo.append(f"{here}/{key}/{index}")
        for name in node.get("properties") or {}:
            todo.append(f"{here}/properties/{_escape(name)}")


class Compiler:
    """Validators of the schemas of one document, each ``$ref`` resolved in it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._registry: Registry = Registry().with_resource(
            _URI, DRAFT202012.create_resource(document))
        self._formats = FormatChecker()

    def at(self, pointer: str) -> Draft202012Validator:
        """A validator of the schema at ``pointer``."""
        return Draft202012Validator({"$ref": f"{_URI}{pointer}"}, registry=self._registry,
                                    format_checker=self._formats)
