"""What a contract run found: one result per rule, each failure with the request that broke it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .rules import LAYERS, Rule

__all__ = ["Report", "RuleResult", "Status", "Violation"]

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a rule was broken: what, the request (a curl line, token redacted) and the answer."""

    rule: str
    message: str
    request: str | None = None
    response: str | None = None

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


@dataclass(slots=True)
class Report:
    """A whole run: every rule's result, and how the run went."""

    base_url: str
    application_id: str | None
    seed: int
    destructive: bool
    control_plane: bool
    results: list[RuleResult] = field(default_factory=list)
    #: things the reader should know (operations not served, restored state, ...)
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    duration: float = 0.0

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

    def failed_rules(self) -> list[str]:
        """Names of the rules that failed."""
        return [r.name for r in self.failed]

    def counts(self) -> dict[str, int]:
        """How many rules passed, failed and were skipped."""
        out = {"passed": 0, "failed": 0, "skipped": 0}
        for r in self.results:
            out[r.status] += 1
        return out

    def ordered(self) -> list[RuleResult]:
        """Results by layer, then in the order the rules are listed."""
        return sorted(self.results, key=lambda r: LAYERS.index(r.rule.layer))

    def render(self) -> str:
        """The summary: one line per rule, then every failure in detail."""
        width = max((len(r.name) for r in self.results), default=10)
        lines: list[str] = []
        layer = None
        for r in self.ordered():
            if r.rule.layer != layer:
                layer = r.rule.layer
                lines.append(f"{layer}:")
            mark = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[r.status]
            note = " (assumption)" if r.rule.assumption else ""
            text = r.detail if r.status != "failed" else r.violations[0].message.splitlines()[0]
            lines.append(f"  {mark}  {r.name:<{width}}  {text}{note}")
        if self.failed:
            lines.append("")
            lines.append("Failures:")
            for r in self.failed:
                lines.append("")
                lines.append(f"  {r.name}: {r.rule.summary}")
                for v in r.violations:
                    lines.append(v.render())
        if self.notes:
            lines.append("")
            lines.extend(f"note: {n}" for n in self.notes)
        c = self.counts()
        lines.append("")
        lines.append(
            f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
            f" in {self.duration:.1f} s ({self.requests} requests, seed {self.seed})"
        )
        return "\n".join(lines)
