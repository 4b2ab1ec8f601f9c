"""Layer 3, stateful properties (destructive): revoke-all, and with a control plane a
model-based state machine of agent sessions, revokes and clock moves (``lifecycle.py``).

Revoke-all runs twice on one application; the three revoke rules judge that one run.
Documented: the count is the number of sessions it terminated, every session that was
active is terminated and reads back disconnected, nothing else changes, a second call
terminates nothing. Assumed (``revoke-all-disconnects-connected``): it terminates every
*connected* session, the idle and expired-token ones too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from kontext_mock.contracts.assumptions import REVOKE_SCOPE
from kontext_mock.contracts.budget import BudgetSpentError
from kontext_mock.contracts.context import BadAnswerError, Outcome, RunContext
from kontext_mock.contracts.http import Exchange
from kontext_mock.contracts.invariants import parse_time
from kontext_mock.contracts.report import Violation
from kontext_mock.contracts.rules import register, registered

__all__ = ["StatefulLayer"]

_SLACK = timedelta(seconds=2)


class StatefulLayer:
    """Revoke-all on the application under test, then the lifecycle model (control plane)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.hi = ctx.max_limit
        self._revoked: dict[str, Outcome] | None = None

    def run(self, wanted: Callable[[str], bool]) -> dict[str, Outcome]:
        """Outcomes of the stateful rules ``wanted`` admits, in registration order."""
        out: dict[str, Outcome] = {}
        for r in registered("stateful"):
            if not wanted(r.name):
                continue
            started = time.monotonic()
            try:
                out[r.name] = r.check(self)
            except BudgetSpentError:
                out[r.name] = Outcome.skipped("not checked: the request budget was spent")
            out[r.name].duration = time.monotonic() - started
            self.ctx.progress(f"  {r.name}: {out[r.name].status} ({out[r.name].duration:.1f} s)")
        return out

    # -- revoke-all ------------------------------------------------------------------------

    def _revoke_outcomes(self) -> dict[str, Outcome]:
        """The one revoke-all run the three revoke rules judge."""
        if self._revoked is None:
            names = ("revoke-count", "revoke-persists", "revoke-idempotent")
            try:
                self._revoked = self.revoke(self.ctx.extra.get("revoke_application")
                                            or self.ctx.application_id)
            except BadAnswerError as exc:
                self._revoked = {r: Outcome.judged([exc.violation(r)], 1, "") for r in names}
        return self._revoked

    @register("revoke-count", "stateful",
              "revoke-all returns the number of sessions it terminated")
    def revoke_count(self) -> Outcome:
        return self._revoke_outcomes()["revoke-count"]

    @register("revoke-persists", "stateful",
              "after revoke-all, list and get agree that every session it terminated is "
              "disconnected (disconnectedAt set), every active one among them, every connected "
              "one by the assumption, and the others are unchanged", assumes=(REVOKE_SCOPE,))
    def revoke_persists(self) -> Outcome:
        return self._revoke_outcomes()["revoke-persists"]

    @register("revoke-idempotent", "stateful", "a second revoke-all returns 0 and changes nothing")
    def revoke_idempotent(self) -> Outcome:
        return self._revoke_outcomes()["revoke-idempotent"]

    def _all(self, app: str) -> tuple[dict[str, dict[str, Any]], Exchange]:
        items, ex = self.ctx.list_sessions({"status": "all", "limit": self.hi}, app)
        return {str(i.get("id")): i for i in items}, ex

    def _revoke(self, app: str) -> tuple[int, Exchange]:
        ex = self.ctx.client.request("DELETE", f"/api/v1/applications/{app}/sessions",
                                     operation="revokeAllSessions")
        body = ex.json_or_none()
        count = body.get("disconnectedCount") if isinstance(body, dict) else None
        if ex.status != 200 or not isinstance(count, int) or isinstance(count, bool):
            raise BadAnswerError(f"revoke-all answered {ex.status} without a disconnectedCount", ex)
        return count, ex

    def revoke(self, app: str) -> dict[str, Outcome]:
        """Revoke twice; judge the count, what list and get show afterwards, idempotence."""
        before, ex0 = self._all(app)
        connected = {sid for sid, s in before.items() if s.get("status") == "active"}
        telling = {sid for sid in connected if before[sid].get("derivedStatus") != "active"}
        if not connected:
            self.ctx.notes.append(
                f"application {app} had no connected session before revoke-all: the revoke "
                "rules were checked on an empty case (a count of 0)")
        if not telling:
            self.ctx.ledger.note(REVOKE_SCOPE, "revoke-persists", f"application {app} had no "
                                 "idle or expired-token connected session before revoke-all, "
                                 "so nothing could tell the reading")
        saturated = len(before) >= self.hi
        count, ex1 = self._revoke(app)
        after, ex2 = self._all(app)
        window = (ex0.server_time, ex1.server_time)
        changed = {sid for sid in connected
                   if after.get(sid, {}).get("status") == "disconnected"}
        new = set(after) - set(before)

        # revoke-count: the sessions it terminated, give or take those opened meanwhile
        count_v: list[Violation] = []
        low, high = len(changed), len(changed) + len(new)
        if count < low or (count > high and not saturated):
            expected = str(low) if low == high else f"{low}..{high}"
            count_v.append(self.ctx.violation(
                "revoke-count", f"revoke-all returned disconnectedCount {count}, but {len(changed)} "
                f"sessions went from connected to disconnected (of {len(connected)} connected, "
                f"{len(before)} listed by status=all); expected {expected}", ex1))

        persist_v = _Found()
        for sid in sorted(connected):
            self._persisted(persist_v, sid, before[sid], after.get(sid), ex2, "in the list",
                            "is no longer listed by status=all", saturated, window)
        reads = 1 if self.ctx.frugal else max(3, self.ctx.options.max_examples)
        for sid in sorted(connected)[:reads]:
            ex = self.ctx.client.get(f"/api/v1/applications/{app}/sessions/{sid}",
                                     operation="getSession")
            body = ex.json_or_none()
            session = body.get("session") if isinstance(body, dict) else None
            if ex.status != 200 or not isinstance(session, dict):
                why = "without a 'session' object" if ex.status == 200 else ""
                persist_v.add(self.ctx.violation(
                    "revoke-persists", f"session {sid}, connected before revoke-all, does not "
                    f"read back by id: {ex.status} {why}".strip(), ex))
            else:
                self._persisted(persist_v, sid, before[sid], session, ex, "when read by id", "",
                                saturated, window)
        for sid, s in before.items():
            if s.get("status") == "disconnected" and sid in after:
                was, now = s.get("disconnectedAt"), after[sid].get("disconnectedAt")
                if was != now:
                    persist_v.add(self.ctx.violation(
                        "revoke-persists", f"session {sid} was already disconnected (at {was}); "
                        f"revoke-all changed its disconnectedAt to {now}", ex2))
        still, ex3 = self.ctx.list_sessions({"status": "active", "limit": self.hi}, app)
        leftover = changed & {str(i.get("id")) for i in still}
        if leftover:
            persist_v.add(self.ctx.violation(
                "revoke-persists", f"status=active still lists {len(leftover)} of the sessions "
                f"revoke-all disconnected, e.g. {sorted(leftover)[0]}", ex3))
        if telling & changed:
            self.ctx.ledger.confirm(REVOKE_SCOPE, "revoke-persists", len(telling & changed))

        # revoke-idempotent: nothing active is left, so nothing more to terminate
        idem_v: list[Violation] = []
        again, ex4 = self._revoke(app)
        if again != 0:
            idem_v.append(self.ctx.violation(
                "revoke-idempotent", f"a second revoke-all returned disconnectedCount {again}, "
                "expected 0", ex4))
        final, ex5 = self._all(app)
        moved = [sid for sid in after if sid in final and sid not in new
                 and after[sid].get("disconnectedAt") != final[sid].get("disconnectedAt")]
        if moved:
            idem_v.append(self.ctx.violation(
                "revoke-idempotent", f"a second revoke-all changed disconnectedAt of "
                f"{len(moved)} sessions, e.g. {moved[0]}: "
                f"{after[moved[0]].get('disconnectedAt')} -> "
                f"{final[moved[0]].get('disconnectedAt')}", ex5))

        what = f"{len(changed)} of {len(connected)} connected, {len(before)} sessions"
        return {
            "revoke-count": Outcome.judged(count_v, 1, f"disconnectedCount {count} ({what})"),
            "revoke-persists": Outcome.judged(persist_v.kept(), len(connected) + len(before),
                                              f"list and get agree after revoke-all ({what})"),
            "revoke-idempotent": Outcome.judged(idem_v, 2, "a second revoke-all returned 0"),
        }

    def _persisted(self, found: _Found, sid: str, was: dict[str, Any],
                   s: dict[str, Any] | None, ex: Exchange, how: str, missing: str,
                   saturated: bool, window: tuple[datetime | None, datetime | None]) -> None:
        """Judge one session that was connected before revoke-all, as listed or read after."""
        if s is None:
            if not saturated:
                found.add(self.ctx.violation(
                    "revoke-persists", f"session {sid}, connected before revoke-all, {missing}",
                    ex))
            return
        derived_before = was.get("derivedStatus")
        if s.get("status") != "disconnected" or s.get("derivedStatus") != "disconnected":
            # every session that was active is terminated (documented); that the idle and
            # expired-token ones are too is the assumption
            assumption = None if derived_before == "active" else REVOKE_SCOPE
            found.add(self.ctx.violation(
                "revoke-persists", f"session {sid} was connected (derivedStatus "
                f"{derived_before}) before revoke-all and is still status {s.get('status')}, "
                f"derivedStatus {s.get('derivedStatus')} {how} afterwards", ex, assumption))
            return
        at = parse_time(s.get("disconnectedAt"))
        start, end = window
        if at is None or (start and at < start - _SLACK) or (end and at > end + _SLACK):
            found.add(self.ctx.violation(
                "revoke-persists", f"session {sid} was disconnected by revoke-all, but its "
                f"disconnectedAt is {s.get('disconnectedAt')} {how}, not the time of the "
                f"revoke ({end.isoformat() if end else '?'})", ex))


class _Found:
    """Violations of one rule: the first of each kind kept, the rest counted."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.more = 0

    def add(self, violation: Violation) -> None:
        if any(v.assumption == violation.assumption for v in self.violations):
            self.more += 1
        else:
            self.violations.append(violation)

    def kept(self) -> list[Violation]:
        if self.more and self.violations:
            first = self.violations[0]
            self.violations[0] = Violation(first.rule, f"{first.message}\n(and {self.more} more "
                                           "like it)", first.request, first.response,
                                           first.assumption)
        return self.violations
