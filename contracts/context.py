"""What every layer of a run shares: the client, the spec, the target's facts, the verdicts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kontext_mock.contracts.budget import Plan
from kontext_mock.contracts.drift import Ledger
from kontext_mock.contracts.http import ApiClient, Exchange
from kontext_mock.contracts.invariants import PassiveRules
from kontext_mock.contracts.openapi import ApiSpec
from kontext_mock.contracts.options import Options
from kontext_mock.contracts.report import Status, Violation

if TYPE_CHECKING:
    from kontext_mock.contracts.control import ControlPlane

__all__ = ["BadAnswerError", "Outcome", "RunContext"]


@dataclass(slots=True)
class Outcome:
    """The verdict of one rule, before the report dresses it."""

    status: Status
    detail: str = ""
    violations: list[Violation] = field(default_factory=list)
    checks: int = 0
    #: seconds spent checking it
    duration: float = 0.0

    @classmethod
    def judged(cls, violations: list[Violation], checks: int, detail: str) -> Outcome:
        """Failed when there are violations, else passed with ``detail``."""
        if violations:
            return cls("failed", detail, violations, checks)
        return cls("passed", detail, [], checks)

    @classmethod
    def skipped(cls, why: str) -> Outcome:
        """Not checked, and why."""
        return cls("skipped", why)


class BadAnswerError(Exception):
    """An answer the rule cannot work with (wrong status, not JSON, wrong shape)."""

    def __init__(self, message: str, exchange: Exchange | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exchange = exchange

    def violation(self, rule: str) -> Violation:
        """This problem as a violation of ``rule`` (a documented one: an answer no reading of
        the contract allows)."""
        ex = self.exchange
        return Violation(rule, self.message, ex.curl() if ex else None,
                         ex.describe() if ex else None)


@dataclass(slots=True)
class RunContext:
    """Everything a layer needs."""

    client: ApiClient
    spec: ApiSpec
    options: Options
    application_id: str
    seed: int
    passive: PassiveRules
    control: ControlPlane | None = None
    foreign_session_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    progress: Callable[[str], None] = field(default=lambda line: None)
    #: operations the target serves (by operationId)
    served: set[str] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)
    #: the checks of assumptions that held
    ledger: Ledger = field(default_factory=Ledger)
    #: the largest list limit the target accepts (the spec's, unless the target refused it)
    max_limit: int = 200
    #: the request budget's plan (None: no budget)
    plan: Plan | None = None

    @property
    def frugal(self) -> bool:
        """True when requests are counted against a budget: each rule takes few examples."""
        return self.plan is not None

    @property
    def destructive(self) -> bool:
        """True when the run may change the target's state."""
        return self.client.destructive

    @property
    def sessions_path(self) -> str:
        """The list path of the application under test."""
        return f"/api/v1/applications/{self.application_id}/sessions"

    def violation(self, rule: str, message: str, ex: Exchange | None = None,
                  assumption: str | None = None) -> Violation:
        """A violation of ``rule`` shown with the exchange that broke it; ``assumption`` names
        the assumption it contradicts (None: a documented rule)."""
        return Violation(rule, message, ex.curl() if ex else None, ex.describe() if ex else None,
                         assumption)

    def list_sessions(self, params: dict[str, Any] | None = None,
                      application_id: str | None = None) -> tuple[list[dict[str, Any]], Exchange]:
        """``GET .../sessions``: the items and the exchange; :class:`BadAnswerError` unless a 200
        with an ``items`` array of objects."""
        app = application_id or self.application_id
        ex = self.client.get(f"/api/v1/applications/{app}/sessions", params=params,
                             operation="listSessions")
        if ex.status != 200:
            raise BadAnswerError(f"listing sessions answered {ex.status}, not 200", ex)
        body = ex.json_or_none()
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise BadAnswerError("the list answer has no 'items' array of session objects", ex)
        return items, ex

    def get_session(self, session_id: str) -> tuple[dict[str, Any], Exchange]:
        """``GET .../sessions/{id}``: the session and the exchange; :class:`BadAnswerError` unless a
        200 with a ``session`` object."""
        ex = self.client.get(f"{self.sessions_path}/{session_id}", operation="getSession")
        if ex.status != 200:
            raise BadAnswerError(f"reading session {session_id} answered {ex.status}, not 200", ex)
        body = ex.json_or_none()
        session = body.get("session") if isinstance(body, dict) else None
        if not isinstance(session, dict):
            raise BadAnswerError("the read answer has no 'session' object", ex)
        return session, ex
