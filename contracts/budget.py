"""The request budget of a run, and the plan that shares it among the layers.

Against a rate-limited target (the real API allows 120 requests a minute per credential)
every request costs time, so a run gets a budget: a number of requests for the whole
run, shared by a plan the output shows. The plan gives each layer enough to exercise
every one of its rules at least once and the schema layer what is left; the client
refuses a request past the budget (:class:`BudgetSpentError`), so a run never sends
more than its budget, and the report says what each layer used.
"""

from __future__ import annotations

from dataclasses import dataclass

from kontext_mock.clients.errors import BudgetSpentError

__all__ = ["DEFAULT_BUDGET", "PHASES", "BudgetSpentError", "Plan", "default_budget"]

#: the budget against a target that is not a kontext-mock: two windows' worth at the real
#: API's 120 requests a minute, so even a run that spends all of it waits out one window
#: (about a minute) and ends well within two; a read-only run needs less than it
DEFAULT_BUDGET = 240
#: the parts of a run that spend requests, in the order they run
PHASES = ("preflight", "semantic", "stateful", "schema")
# What each part needs to exercise every rule once (measured against the mock; the
# preflight probes are fixed, the layers scale down to these in a frugal run).
_PREFLIGHT = 12
_SEMANTIC_LEAST = 44
_STATEFUL_LEAST = 14
_LIFECYCLE_LEAST = 60
_SCHEMA_LEAST = 120


def default_budget(rate_limit: str | None) -> int:
    """Two windows' worth at ``rate_limit`` (N requests a minute: 2N), else
    :data:`DEFAULT_BUDGET`; never less than a read-only run needs to exercise every rule."""
    if rate_limit is None:
        return DEFAULT_BUDGET
    from kontext_mock.clients.pacing import parse_rate

    limit, window = parse_rate(rate_limit)
    return max(_PREFLIGHT + _SEMANTIC_LEAST + _SCHEMA_LEAST, int(limit * 120 / window))


@dataclass(frozen=True, slots=True)
class Plan:
    """How many requests each part of the run may send."""

    total: int
    shares: dict[str, int]

    @classmethod
    def make(cls, total: int, layers: tuple[str, ...], destructive: bool,
             lifecycle: bool) -> Plan:
        """Share ``total``: the preflight and the stateful layer get what they need, the
        semantic layer a quarter of the rest (at least its least), the schema layer the rest."""
        shares = dict.fromkeys(PHASES, 0)
        shares["preflight"] = min(_PREFLIGHT, total)
        if destructive and "stateful" in layers:
            wanted = _STATEFUL_LEAST + (_LIFECYCLE_LEAST if lifecycle else 0)
            shares["stateful"] = min(wanted, total - shares["preflight"])
        rest = total - shares["preflight"] - shares["stateful"]
        if "semantic" in layers:
            wanted = rest if "schema" not in layers else max(_SEMANTIC_LEAST, rest // 4)
            shares["semantic"] = min(wanted, rest)
        if "schema" in layers:
            shares["schema"] = rest - shares["semantic"]
        return cls(total, shares)

    def render(self) -> str:
        """The plan in one line."""
        return ", ".join(f"{k} {v}" for k, v in self.shares.items() if v)
