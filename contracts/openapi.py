"""The contract the kit checks: ``openapi.yaml`` (the packaged one unless ``--spec`` says otherwise)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kontext_mock.contracts.errors import ContractError

__all__ = ["ApiSpec", "SpecOperation", "default_spec_path"]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
WRITE_OPERATIONS = frozenset(
    {"revokeAllSessions", "createAgentSession", "heartbeatAgentSession", "disconnectAgentSession"}
)


def default_spec_path() -> Path:
    """The packaged ``openapi.yaml``."""
    return Path(str(resources.files("kontext_mock").joinpath("openapi.yaml")))


@dataclass(frozen=True, slots=True)
class SpecOperation:
    """One operation: method, path template and operationId."""

    operation_id: str
    method: str
    path: str
    pattern: re.Pattern[str]

    @property
    def writes(self) -> bool:
        """True when the operation changes state (never sent in a read-only run)."""
        return self.operation_id in WRITE_OPERATIONS or (
            self.method not in ("GET", "HEAD", "OPTIONS") and self.path != "/oauth2/token"
        )


class ApiSpec:
    """The loaded OpenAPI document and its operations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ContractError(f"cannot read the spec {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ContractError(f"the spec {path} is not valid YAML: {exc}") from None
        if not isinstance(raw, dict) or "paths" not in raw:
            raise ContractError(f"{path} is not an OpenAPI document (no 'paths')")
        self.raw: dict[str, Any] = raw

    @classmethod
    def load(cls, path: str | Path | None = None) -> ApiSpec:
        """The spec at ``path``, or the packaged one."""
        return cls(Path(path) if path else default_spec_path())

    @cached_property
    def documented(self) -> dict[str, Any]:
        """The documented view: the document without what exists only for an assumption."""
        from kontext_mock.contracts.assumptions import documented_view

        return documented_view(self.raw)

    @cached_property
    def operations(self) -> dict[str, SpecOperation]:
        """Every operation by operationId."""
        ops: dict[str, SpecOperation] = {}
        for template, item in (self.raw.get("paths") or {}).items():
            regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?$"
            for method in _METHODS:
                op = (item or {}).get(method)
                if isinstance(op, dict):
                    op_id = op.get("operationId") or f"{method.upper()} {template}"
                    ops[op_id] = SpecOperation(op_id, method.upper(), template, re.compile(regex))
        return ops

    def operation_for(self, method: str, url: str) -> SpecOperation | None:
        """The operation a request is for, by method and path."""
        path = urlsplit(url).path
        for op in self.operations.values():
            if op.method == method.upper() and op.pattern.match(path):
                return op
        return None

    def default_limit(self) -> int:
        """The list operation's default ``limit``."""
        for param in self._list_parameters():
            if param.get("name") == "limit":
                return int((param.get("schema") or {}).get("default", 100))
        return 100

    def limit_range(self) -> tuple[int, int]:
        """The list operation's ``limit`` bounds."""
        for param in self._list_parameters():
            if param.get("name") == "limit":
                schema = param.get("schema") or {}
                return int(schema.get("minimum", 1)), int(schema.get("maximum", 200))
        return 1, 200

    def list_parameter_schemas(self) -> dict[str, dict[str, Any]]:
        """The schema of each query parameter of the list operation, by name."""
        return {str(p.get("name")): dict(p.get("schema") or {}) for p in self._list_parameters()
                if p.get("in") == "query"}

    def _list_parameters(self) -> list[dict[str, Any]]:
        op = self.operations.get("listSessions")
        if op is None:
            return []
        raw = self.raw["paths"][op.path]["get"]
        return [p for p in raw.get("parameters", []) if isinstance(p, dict)]
