"""The schema parts that exist only because of an assumption, held to every answer.

The schema layer checks the *documented* view of the spec (``assumptions.py``). Here,
every answer the kit sees (whichever layer asked) whose schema reaches a part an
assumption constrains is validated against the documented view and against the view
with that one assumption: valid in the first and not in the second is a contradiction
of that assumption, with the answer as evidence.
"""

from __future__ import annotations

import threading
from collections import Counter

from jsonschema import Draft202012Validator

from kontext_mock.contracts.assumptions import (
    AGENT_STATE_SHAPE,
    ERROR_SHAPE,
    HEARTBEAT_ENDED,
    read_assumptions,
    view_with,
)
from kontext_mock.contracts.drift import Ledger
from kontext_mock.contracts.http import Exchange
from kontext_mock.contracts.openapi import ApiSpec
from kontext_mock.contracts.report import Violation
from kontext_mock.contracts.rules import register
from kontext_mock.contracts.schema_views import Compiler, reached, response_schemas

__all__ = ["RULE", "AssumedSchema"]

RULE = "schema-assumptions"
_KEEP = 1


class AssumedSchema:
    """Validates answers against the assumed schema parts, one assumption at a time."""

    def __init__(self, spec: ApiSpec, ledger: Ledger) -> None:
        self.spec = spec
        self.ledger = ledger
        raw = spec.raw
        documented = Compiler(spec.documented)
        # (operationId, status) -> [(documented validator, assumption id, its validator)]
        self.judged: dict[tuple[str, str], list[tuple[str, Draft202012Validator,
                                                      Draft202012Validator]]] = {}
        places = {a.id: {p.pointer for p in a.constrained}
                  for a in read_assumptions(raw).values() if a.constrained}
        views: dict[str, Compiler] = {}
        for key, answer in response_schemas(raw).items():
            if answer.pointer is None:
                continue
            reach = set(reached(raw, answer.pointer))
            for aid, where in places.items():
                if not where & reach:
                    continue
                view = views.get(aid) or views.setdefault(aid, Compiler(view_with(raw, aid)))
                self.judged.setdefault(key, []).append(
                    (aid, documented.at(answer.pointer), view.at(answer.pointer)))
        self.violations: list[Violation] = []
        self.more: Counter[str] = Counter()
        self.checks = 0
        self._lock = threading.Lock()

    def __call__(self, ex: Exchange) -> None:
        with self._lock:
            _assumed_parts(self, ex)

    def found(self) -> list[Violation]:
        """The first violation of each assumption, with the count of the rest."""
        out = []
        for v in self.violations:
            more = self.more[v.assumption or ""]
            out.append(v if not more else Violation(
                v.rule, f"{v.message}\n(and {more} more answers like it)", v.request,
                v.response, v.assumption))
        return out


@register(RULE, "schema",
          "every answer matches the schema parts that exist only because of an assumption "
          "(error bodies, agent answers)",
          assumes=(ERROR_SHAPE, AGENT_STATE_SHAPE, HEARTBEAT_ENDED), kind="exchange",
          detail="{n} answers held to the assumed schema parts")
def _assumed_parts(observer: AssumedSchema, ex: Exchange) -> None:
    op = ex.operation
    if op is None:
        found = observer.spec.operation_for(ex.method, ex.url)
        op = found.operation_id if found else None
    parts = observer.judged.get((op or "", str(ex.status)))
    if not parts:
        return
    body = ex.json_or_none()
    if body is None:
        return  # not JSON: the content type is the schema layer's to judge
    observer.checks += 1
    for aid, documented, assumed in parts:
        if not documented.is_valid(body):
            continue  # broken in what is documented: the schema layer's failure
        error = next(assumed.iter_errors(body), None)
        if error is None:
            observer.ledger.confirm(aid, RULE)
            continue
        if any(v.assumption == aid for v in observer.violations):
            observer.more[aid] += 1
            continue
        where = "/".join(str(p) for p in error.absolute_path) or "the body"
        observer.violations.append(Violation(
            RULE, f"{op} answered {ex.status} with a body the assumption {aid} does not "
            f"allow: at {where}, {error.message}", ex.curl(), ex.describe(), aid))
