"""Drift: what a run says of each assumption of the spec, from the rules that check it.

A rule that checks an assumption tags each violation of it with the assumption's id; a
check of it that held is recorded in the :class:`Ledger`. At the end every assumption of
the spec gets a verdict: *contradicted* (with the violations as evidence), *confirmed*
(what held), or *unobserved* (nothing discriminating was seen, the rules that check it
did not run, or nothing can observe it).
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from kontext_mock.contracts.assumptions import SpecAssumption
from kontext_mock.contracts.report import AssumptionVerdict, Report, RuleResult, Violation
from kontext_mock.contracts.rules import Rule

__all__ = ["Ledger", "checked_by", "verdicts", "write_drift_report"]

# Evidence kept per contradicted assumption: enough to act on, short enough to read.
_EVIDENCE = 3


class Ledger:
    """The checks of each assumption that held, and notes on what the run saw of it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.held: Counter[tuple[str, str]] = Counter()
        self.notes: dict[str, list[Violation]] = defaultdict(list)

    def confirm(self, assumption: str, rule: str, times: int = 1) -> None:
        """``rule`` checked ``assumption`` ``times`` times, and it held."""
        with self._lock:
            self.held[(assumption, rule)] += times

    def note(self, assumption: str, rule: str, message: str) -> None:
        """Something the run saw of ``assumption`` that a reader needs (e.g. why a check
        could not tell, or what the target's answers imply)."""
        with self._lock:
            self.notes[assumption].append(Violation(rule, message, assumption=assumption))


def verdicts(spec: Iterable[SpecAssumption], results: list[RuleResult], ledger: Ledger,
             rules: Iterable[Rule]) -> list[AssumptionVerdict]:
    """A verdict for every assumption of the spec, in the spec's order."""
    by_rule = {r.name: r for r in results}
    checkers: dict[str, list[str]] = defaultdict(list)
    for rule in rules:
        for aid in rule.assumes:
            checkers[aid].append(rule.name)
    out = []
    judged = {name for name, r in by_rule.items() if r.status != "skipped"}
    for a in spec:
        against = [v for r in results for v in r.violations if v.assumption == a.id]
        # what a rule saw counts only when the rule was judged (not skipped or deselected)
        notes = [n for n in ledger.notes.get(a.id, []) if n.rule in judged]
        if against:
            out.append(AssumptionVerdict(a.id, a.assumes, "contradicted",
                                         (against + notes)[:_EVIDENCE + len(notes)]))
            continue
        held = [(rule, n) for (aid, rule), n in sorted(ledger.held.items())
                if aid == a.id and rule in judged]
        if held:
            evidence = [Violation(rule, f"held in {n} check{'s' if n != 1 else ''}")
                        for rule, n in held]
            out.append(AssumptionVerdict(a.id, a.assumes, "confirmed", evidence + notes))
            continue
        if a.unobservable:
            why = [Violation("", f"unobservable: {a.unobservable}")]
        else:
            why = []
            for name in checkers.get(a.id, []):
                result = by_rule.get(name)
                if result is None or result.status == "skipped":
                    reason = result.detail if result is not None else "not run"
                    why.append(Violation(name, f"not checked: {reason}"))
                else:
                    why.append(Violation(name, "ran, but saw nothing that could tell"))
        out.append(AssumptionVerdict(a.id, a.assumes, "unobserved", notes + why))
    return out


def checked_by(assumptions: Iterable[SpecAssumption], rules: Iterable[Rule]) -> dict[str, list[str]]:
    """What checks each assumption: the rules citing it, and the schema parts it constrains
    (the documented view leaves them out; ``schema-assumptions`` holds answers to them, and
    a constrained request parameter is left to the rule citing it)."""
    rules = list(rules)
    out: dict[str, list[str]] = {}
    for a in assumptions:
        names = [f"{r.name} ({r.layer})" for r in rules if a.id in r.assumes]
        parts = [f"schema part {p.pointer} ({', '.join(p.constrains)})" for p in a.constrained]
        out[a.id] = names + parts
    return out


def write_drift_report(report: Report, path: str | Path) -> Path:
    """Write the drift report of ``report`` as JSON to ``path`` (directories created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report.drift_document(), indent=2) + "\n", encoding="utf-8")
    return target
