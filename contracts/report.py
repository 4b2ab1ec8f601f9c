"""What a contract run found: a result per rule, each failure with the request that broke
it, a verdict per assumption, and what the target sent that the contract does not know."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kontext_mock.contracts.rules import LAYERS, Rule

__all__ = ["AssumptionVerdict", "Report", "RuleResult", "Status", "Violation", "keep_first"]

#: ``drift``: the rule's documented part holds, an assumption it checks does not (report mode)
Status = Literal["passed", "failed", "drift", "skipped"]
AssumptionStatus = Literal["confirmed", "contradicted", "unobserved"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a rule was broken: what, the request (a curl line, token redacted) and the
    answer; ``assumption`` names the assumption it contradicts (None: a documented rule)."""

    rule: str
    message: str
    request: str | None = None
    response: str | None = None
    assumption: str | None = None

    def render(self, indent: str = "    ") -> str:
        """The violation as text a person can act on."""
        lines = self.message.splitlines() or [""]
        if self.request:
            lines.append(f"request:  {self.request}")
        if self.response:
            head, *rest = self.response.splitlines() or [""]
            lines.append(f"response: {head}")
            lines.extend(f"          {line}" for line in rest)
        return "\n".join(indent + line for line in lines)

    def to_json(self) -> dict[str, Any]:
        """The violation as evidence in the drift report."""
        out: dict[str, Any] = {"rule": self.rule, "message": self.message}
        if self.request:
            out["request"] = self.request
        if self.response:
            out["response"] = self.response
        return out


def keep_first(violations: list[Violation], keep: int = 1) -> list[Violation]:
    """The first ``keep`` violations of each kind (documented, or each assumption): a
    person acts on one at a time, and no kind hides another."""
    seen: dict[str | None, int] = {}
    out = []
    for v in violations:
        if seen.get(v.assumption, 0) < keep:
            seen[v.assumption] = seen.get(v.assumption, 0) + 1
            out.append(v)
    return out


@dataclass(slots=True)
class RuleResult:
    """The verdict on one rule."""

    rule: Rule
    status: Status
    #: for a pass, what was checked; for a skip, why
    detail: str = ""
    violations: list[Violation] = field(default_factory=list)
    #: how many times the rule was checked
    checks: int = 0
    duration: float = 0.0

    @property
    def name(self) -> str:
        """The rule's stable name."""
        return self.rule.name

    @property
    def documented_violations(self) -> list[Violation]:
        """The violations of what the vendor documents."""
        return [v for v in self.violations if v.assumption is None]

    @property
    def drift(self) -> list[Violation]:
        """The violations that contradict an assumption."""
        return [v for v in self.violations if v.assumption is not None]


@dataclass(slots=True)
class AssumptionVerdict:
    """What the run showed of one assumption, with the evidence."""

    id: str
    assumes: str
    status: AssumptionStatus
    #: for a contradiction, the violations; else what was checked, or why nothing was
    evidence: list[Violation] = field(default_factory=list)

    def why_unobserved(self, reasons: int = 2) -> str:
        """Why nothing told: the first ``reasons`` of the evidence, each with its rule."""
        said = [f"{e.rule}: {e.message}" if e.rule else e.message
                for e in self.evidence[:reasons]]
        more = len(self.evidence) - reasons
        return "; ".join(said) + (f" (and {more} more)" if more > 0 else "") or "no reason given"

    def to_json(self) -> dict[str, Any]:
        """The entry of the drift report."""
        return {"id": self.id, "assumes": self.assumes, "status": self.status,
                "evidence": [e.to_json() for e in self.evidence]}


@dataclass(slots=True)
class Report:
    """A whole run: every rule's result, every assumption's verdict, and how the run went."""

    base_url: str
    application_id: str | None
    seed: int
    destructive: bool
    control_plane: bool
    #: ``enforce``: a contradicted assumption fails its rule; ``report``: it is drift
    assumptions_mode: str = "enforce"
    results: list[RuleResult] = field(default_factory=list)
    assumptions: list[AssumptionVerdict] = field(default_factory=list)
    #: what the target sent that the spec does not know (fields, statuses, headers)
    undocumented: list[dict[str, Any]] = field(default_factory=list)
    #: things the reader should know (operations not served, restored state, ...)
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    duration: float = 0.0
    #: the request budget of the run (None: none) and how it was shared and spent
    budget: int | None = None
    plan: dict[str, int] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    #: when the run started (ISO 8601, UTC)
    started_at: str = ""
    #: a destructive run against a mock puts its state back afterwards (False: --no-restore)
    restore: bool = True
    #: the mode was chosen by the caller (--destructive, --read-only), not by the target
    mode_chosen: bool = False

    @property
    def ok(self) -> bool:
        """True when no rule failed."""
        return not self.failed

    @property
    def failed(self) -> list[RuleResult]:
        """The rules that failed."""
        return [r for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        """0 when every rule holds, 1 when one fails (2, usage and connection errors, is raised)."""
        return 0 if self.ok else 1

    def result(self, name: str) -> RuleResult:
        """The result of the rule called ``name``."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def verdict(self, assumption_id: str) -> AssumptionVerdict:
        """The verdict on the assumption ``assumption_id``."""
        for v in self.assumptions:
            if v.id == assumption_id:
                return v
        raise KeyError(assumption_id)

    def failed_rules(self) -> list[str]:
        """Names of the rules that failed."""
        return [r.name for r in self.failed]

    def contradicted(self) -> list[str]:
        """Ids of the assumptions the target contradicts."""
        return [v.id for v in self.assumptions if v.status == "contradicted"]

    def counts(self) -> dict[str, int]:
        """How many rules passed, failed, drifted and were skipped."""
        out = {"passed": 0, "failed": 0, "drift": 0, "skipped": 0}
        for r in self.results:
            out[r.status] += 1
        return out

    def ordered(self) -> list[RuleResult]:
        """Results by layer, then in the order the rules are listed."""
        return sorted(self.results, key=lambda r: LAYERS.index(r.rule.layer))

    def drift_document(self) -> dict[str, Any]:
        """The drift report: each assumption's verdict, and what the spec does not know."""
        return {
            "target": self.base_url,
            "when": self.started_at,
            "mode": self.assumptions_mode,
            "assumptions": [v.to_json() for v in self.assumptions],
            "undocumented": list(self.undocumented),
        }

    def mode(self) -> str:
        """Whether the run may change the target's state, and why (see ``options.MODE``)."""
        if self.destructive and self.control_plane:
            after = ("puts its state back afterwards" if self.restore else
                     "leaves its state as the run left it (--no-restore)")
            return ("destructive: a kontext-mock (its control plane answered): the kit creates "
                    f"its own data, moves the mock's clock and {after}")
        if self.destructive:
            return ("destructive (--destructive): revoke-all and agent sessions on the target; "
                    "nothing is put back")
        if self.control_plane:
            return "read-only (--read-only): only reads, even to this kontext-mock"
        why = "--read-only" if self.mode_chosen else "not a kontext-mock (no control plane)"
        return (f"read-only: {why}, so only reads; --destructive adds the stateful rules "
                "(revoke-all, agent sessions)")

    def header(self) -> str:
        """The first line of the output: the target, the mode, how assumptions count, the seed."""
        how = "enforced" if self.assumptions_mode == "enforce" else "reported as drift"
        return (f"kontext-contract {self.base_url}: {self.mode()}; assumptions {how}; "
                f"seed {self.seed}")

    def render(self) -> str:
        """The summary: the header, one line per rule, every failure in detail, the drift,
        the budget."""
        width = max((len(r.name) for r in self.results), default=10)
        lines: list[str] = [self.header()]
        layer = None
        for r in self.ordered():
            if r.rule.layer != layer:
                layer = r.rule.layer
                lines.append(f"{layer}:")
            mark = {"passed": "PASS", "failed": "FAIL", "drift": "DRIFT",
                    "skipped": "SKIP"}[r.status]
            shown = r.violations if r.status == "failed" else r.drift
            if r.status == "failed" and self.assumptions_mode == "report":
                shown = r.documented_violations
            text = shown[0].message.splitlines()[0] if shown else r.detail
            note = f" (assumes {', '.join(r.rule.assumes)})" if r.rule.assumes else ""
            if r.status == "drift":
                note = f" (contradicts {', '.join(sorted({v.assumption or '' for v in shown}))})"
            lines.append(f"  {mark:<5} {r.name:<{width}}  {text}{note}")
        self._failures(lines)
        self._drift(lines)
        self._undocumented(lines)
        if self.notes:
            lines.append("")
            lines.extend(f"note: {n}" for n in self.notes)
        lines.append("")
        if self.assumptions:
            tally = {s: sum(v.status == s for v in self.assumptions)
                     for s in ("confirmed", "contradicted", "unobserved")}
            how = "enforced" if self.assumptions_mode == "enforce" else "reported as drift"
            which = f" ({', '.join(self.contradicted())})" if tally["contradicted"] else ""
            lines.append(f"assumptions ({how}): {tally['confirmed']} confirmed, "
                         f"{tally['contradicted']} contradicted{which}, "
                         f"{tally['unobserved']} unobserved{':' if tally['unobserved'] else ''}")
            lines.extend(f"  unobserved  {v.id}: {v.why_unobserved()}"
                         for v in self.assumptions if v.status == "unobserved")
        if self.plan:
            shares = ", ".join(f"{k} {self.usage.get(k, 0)}/{v}" for k, v in self.plan.items())
            budget = f"of a budget of {self.budget}" if self.budget else "(no budget)"
            lines.append(f"requests by layer {budget}: {shares} (used/planned)")
        c = self.counts()
        drift = f", {c['drift']} drift" if c["drift"] else ""
        lines.append(
            f"{c['passed']} passed, {c['failed']} failed{drift}, {c['skipped']} skipped"
            f" in {self.duration:.1f} s ({self.requests} requests, seed {self.seed})"
        )
        return "\n".join(lines)

    def _failures(self, lines: list[str]) -> None:
        if not self.failed:
            return
        lines.append("")
        lines.append("Failures:")
        for r in self.failed:
            lines.append("")
            lines.append(f"  {r.name}: {r.rule.summary}")
            shown = r.documented_violations if self.assumptions_mode == "report" else r.violations
            for v in shown:
                if v.assumption:
                    lines.append(f"    (contradicts the assumption {v.assumption})")
                lines.append(v.render())

    def _drift(self, lines: list[str]) -> None:
        # (enforced, a contradiction is a failure and shown there)
        contradicted = [v for v in self.assumptions if v.status == "contradicted"]
        if not contradicted or self.assumptions_mode != "report":
            return
        lines.append("")
        lines.append("Drift (assumptions of openapi.yaml the target contradicts; reported, "
                     "not failures):")
        for v in contradicted:
            lines.append("")
            lines.append(f"  {v.id}: assumes {v.assumes}")
            for e in v.evidence:
                lines.append(f"    {e.rule}:")
                lines.append(e.render("      "))

    def _undocumented(self, lines: list[str]) -> None:
        # the drift report's list, so the two never disagree
        listed = self.drift_document()["undocumented"]
        if not listed:
            return
        lines.append("")
        lines.append("Undocumented (what the target sent that openapi.yaml does not describe):")
        for item in listed:
            example = item.get("example")
            shown = f", e.g. {example}" if example is not None else ""
            where = f" in {item['operation']}" if item.get("operation") else ""
            lines.append(f"  {item['kind']:<7} {item['name']}{where} "
                         f"({item['count']} times{shown})")
