"""The rules the kit checks: each registered once, beside its check, under a stable name.

A rule belongs to one layer: ``schema`` (schemathesis against ``openapi.yaml``),
``semantic`` (read-only properties), ``stateful`` (changes state: only with
``--destructive``, which a mock target implies) or ``mcp`` (an MCP client at the
gateway: only with ``--mcp``). Its name appears in the output and in
JUnit. A rule that checks an inferred rule of the spec names the assumption ids it
checks (``assumes``); its violations of those say which id they contradict.

The check modules register their rules when they are imported; :func:`catalog` imports
them, so listing the rules costs the imports of the checks and nothing more.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["KINDS", "LAYERS", "Rule", "catalog", "register", "registered", "rule",
           "schema_rule_name"]

LAYERS = ("schema", "semantic", "stateful", "mcp")
#: how a rule is checked: a step its layer runs (``step``), a verdict on what the layer's
#: other requests showed (``along``), on every answer (``exchange``) or on every session
#: object in an answer (``session``), or by a schemathesis check (``schemathesis``)
KINDS = ("step", "along", "exchange", "session", "schemathesis")
# The modules whose imports register every rule, in the order the output lists them.
_CHECK_MODULES = tuple(f"{__package__}.{name}" for name in (
    "schema_checks", "invariants", "semantic", "assumed_schema", "stateful", "state_machine",
    "mcp_layer"))

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Rule:
    """One named rule of the contract, and how it is checked."""

    name: str
    layer: str
    summary: str
    #: the assumption ids (``x-assumption`` in openapi.yaml) this rule checks
    assumes: tuple[str, ...] = ()
    kind: str = "step"
    #: the check: a function (its signature is the layer's business), or for a
    #: ``schemathesis`` rule the name of the schemathesis check
    check: Any = field(default=None, compare=False, repr=False)
    #: for rules judged on every answer: what a pass says, with ``{n}`` the checks made
    detail: str = ""
    #: the module that registered it (the catalog lists modules in a fixed order)
    module: str = field(default="", compare=False, repr=False)

    @property
    def assumption(self) -> bool:
        """True when the rule checks at least one assumption."""
        return bool(self.assumes)


_REGISTRY: dict[str, Rule] = {}


def register(name: str, layer: str, summary: str, *, assumes: tuple[str, ...] = (),
             kind: str = "step", detail: str = "") -> Callable[[F], F]:
    """Register the decorated function as the check of rule ``name``."""
    if layer not in LAYERS or kind not in KINDS:
        raise ValueError(f"rule {name}: unknown layer {layer!r} or kind {kind!r}")

    def decorate(check: F) -> F:
        add(Rule(name, layer, summary, tuple(assumes), kind, check, detail, check.__module__))
        return check

    return decorate


def add(new: Rule) -> None:
    """Register a rule whose check is not a function of the kit (a schemathesis check)."""
    if new.name in _REGISTRY:
        raise ValueError(f"rule {new.name!r} is registered twice")
    _REGISTRY[new.name] = new


def catalog() -> dict[str, Rule]:
    """Every rule by name, layer by layer, each layer in registration order."""
    for module in _CHECK_MODULES:
        importlib.import_module(module)
    modules = {m: i for i, m in enumerate(_CHECK_MODULES)}
    ordered = sorted(_REGISTRY.values(), key=lambda r: (LAYERS.index(r.layer),
                                                         modules.get(r.module, len(modules))))
    return {r.name: r for r in ordered}


def registered(layer: str, *kinds: str) -> list[Rule]:
    """The rules of ``layer`` (of the given kinds), in registration order."""
    return [r for r in catalog().values()
            if r.layer == layer and (not kinds or r.kind in kinds)]


def schema_rule_name(check: str) -> str:
    """The rule name of a schemathesis check (``not_a_server_error`` -> ``schema-not-a-server-error``)."""
    return "schema-" + check.replace("_", "-")


def rule(name: str) -> Rule:
    """The rule called ``name``; schemathesis checks the kit does not know get a generic rule."""
    found = catalog().get(name)
    if found is None:
        if name.startswith("schema-"):
            check = name[7:].replace("-", "_")
            return Rule(name, "schema", f"schemathesis check {check}", kind="schemathesis",
                        check=check)
        raise KeyError(f"unknown rule {name!r}")
    return found


def __getattr__(name: str) -> object:
    # ``RULES`` is the catalog, built on first use: importing this module stays cheap.
    if name == "RULES":
        return catalog()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
