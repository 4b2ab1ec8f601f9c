"""Layer 3, stateful properties (destructive): revoke-all, and with a control plane a
model-based state machine of agent sessions, revokes and clock moves.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from .context import BadAnswerError, Outcome, RunContext
from .http import Exchange
from .invariants import parse_time
from .report import Violation

__all__ = ["STATEFUL_RULES", "StatefulLayer"]

STATEFUL_RULES = ("revoke-count", "revoke-persists", "revoke-idempotent", "lifecycle-model")
_SLACK = timedelta(seconds=2)
_KEEP = 1


class StatefulLayer:
    """Revoke-all on the application under test, then the lifecycle model (control plane)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.hi = ctx.spec.limit_range()[1]

    def run(self, wanted: Any) -> dict[str, Outcome]:
        """Outcomes of the stateful rules ``wanted`` admits."""
        out: dict[str, Outcome] = {}
        revoke_rules = [r for r in ("revoke-count", "revoke-persists", "revoke-idempotent")
                        if wanted(r)]
        started = time.monotonic()
        if revoke_rules:
            try:
                out.update(self.revoke(self.ctx.extra.get("revoke_application")
                                       or self.ctx.application_id))
            except BadAnswerError as exc:
                out.update({r: Outcome.judged([exc.violation(r)], 1, "") for r in revoke_rules})
            out = {k: v for k, v in out.items() if k in revoke_rules}
            for name in out:
                out[name].duration = (time.monotonic() - started) / len(out)
            self.ctx.progress(f"  revoke-all: {time.monotonic() - started:.1f} s")
        if wanted("lifecycle-model"):
            started = time.monotonic()
            if self.ctx.control is None:
                out["lifecycle-model"] = Outcome.skipped(
                    "not available: the target has no control plane (/_mock)")
            else:
                from .lifecycle import run_lifecycle_model

                out["lifecycle-model"] = run_lifecycle_model(self.ctx)
            out["lifecycle-model"].duration = time.monotonic() - started
            self.ctx.progress(f"  lifecycle-model: {out['lifecycle-model'].status} "
                              f"({out['lifecycle-model'].duration:.1f} s)")
        return out

    # -- revoke-all ------------------------------------------------------------------------

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
        if not connected:
            self.ctx.notes.append(
                f"application {app} had no connected session before revoke-all: the revoke "
                "rules were checked on an empty case (a count of 0)")
        saturated = len(before) >= self.hi
        count, ex1 = self._revoke(app)
        after, ex2 = self._all(app)
        t_before = ex0.server_time
        t_after = ex1.server_time

        # revoke-count -----------------------------------------------------------------
        new = set(after) - set(before)
        low, high = len(connected), len(connected) + len(new)
        count_v: list[Violation] = []
        if count < low or count > high or (saturated and count < low):
            expected = str(low) if low == high else f"{low}..{high}"
            count_v.append(self.ctx.violation(
                "revoke-count", f"revoke-all returned disconnectedCount {count}, but "
                f"{len(connected)} sessions were connected before it (status=all lists "
                f"{len(before)}); expected {expected}", ex1))

        # revoke-persists ---------------------------------------------------------------
        persist_v: list[Violation] = []
        more = [0]

        def persisted(sid: str, s: dict[str, Any] | None, ex: Exchange, how: str,
                      missing: str) -> None:
            problem = s is None and not saturated
            if s is not None:
                at = parse_time(s.get("disconnectedAt"))
                problem = (s.get("status") != "disconnected"
                           or s.get("derivedStatus") != "disconnected" or at is None
                           or bool(t_before and at < t_before - _SLACK)
                           or bool(t_after and at > t_after + _SLACK))
            if problem and len(persist_v) >= _KEEP:
                more[0] += 1
                return
            if s is None:
                if not saturated:
                    persist_v.append(self.ctx.violation(
                        "revoke-persists", f"session {sid}, connected before revoke-all, "
                        f"{missing}", ex))
                return
            at = parse_time(s.get("disconnectedAt"))
            if s.get("status") != "disconnected" or s.get("derivedStatus") != "disconnected":
                persist_v.append(self.ctx.violation(
                    "revoke-persists", f"session {sid} was connected before revoke-all and is "
                    f"still status {s.get('status')}, derivedStatus {s.get('derivedStatus')} "
                    f"{how} afterwards", ex))
            elif at is None or (t_before and at < t_before - _SLACK) or (
                    t_after and at > t_after + _SLACK):
                persist_v.append(self.ctx.violation(
                    "revoke-persists", f"session {sid} was disconnected by revoke-all, but its "
                    f"disconnectedAt is {s.get('disconnectedAt')} {how}, not the time of the "
                    f"revoke ({t_after.isoformat() if t_after else '?'})", ex))

        for sid in sorted(connected):
            persisted(sid, after.get(sid), ex2, "in the list",
                      "is no longer listed by status=all")
        for sid in sorted(connected)[: max(3, self.ctx.options.max_examples)]:
            ex = self.ctx.client.get(f"/api/v1/applications/{app}/sessions/{sid}",
                                     operation="getSession")
            body = ex.json_or_none()
            session = body.get("session") if isinstance(body, dict) else None
            if ex.status != 200 or not isinstance(session, dict):
                why = "without a 'session' object" if ex.status == 200 else ""
                persisted(sid, None, ex, "", f"does not read back by id: {ex.status} {why}".strip())
            else:
                persisted(sid, session, ex, "when read by id", "")
        for sid, s in before.items():
            if s.get("status") == "disconnected" and sid in after:
                was, now = s.get("disconnectedAt"), after[sid].get("disconnectedAt")
                if was != now and len(persist_v) < _KEEP:
                    persist_v.append(self.ctx.violation(
                        "revoke-persists", f"session {sid} was already disconnected (at {was}); "
                        f"revoke-all changed its disconnectedAt to {now}", ex2))
        still, ex3 = self.ctx.list_sessions({"status": "active", "limit": self.hi}, app)
        leftover = connected & {str(i.get("id")) for i in still}
        if leftover and len(persist_v) < _KEEP:
            persist_v.append(self.ctx.violation(
                "revoke-persists", f"status=active still lists {len(leftover)} of the sessions "
                f"revoke-all disconnected, e.g. {sorted(leftover)[0]}", ex3))

        # revoke-idempotent -------------------------------------------------------------
        idem_v: list[Violation] = []
        again, ex4 = self._revoke(app)
        if again != 0:
            idem_v.append(self.ctx.violation(
                "revoke-idempotent", f"a second revoke-all returned disconnectedCount {again}, "
                "expected 0", ex4))
        final, ex5 = self._all(app)
        changed = [sid for sid in after if sid in final and sid not in new
                   and after[sid].get("disconnectedAt") != final[sid].get("disconnectedAt")]
        if changed:
            idem_v.append(self.ctx.violation(
                "revoke-idempotent", f"a second revoke-all changed disconnectedAt of "
                f"{len(changed)} sessions, e.g. {changed[0]}: "
                f"{after[changed[0]].get('disconnectedAt')} -> "
                f"{final[changed[0]].get('disconnectedAt')}", ex5))

        if more[0] and persist_v:
            first = persist_v[0]
            persist_v[0] = Violation(first.rule, f"{first.message}\n(and {more[0]} more like it)",
                                     first.request, first.response)
        what = f"{len(connected)} connected of {len(before)} sessions"
        return {
            "revoke-count": Outcome.judged(count_v, 1, f"disconnectedCount {count} ({what})"),
            "revoke-persists": Outcome.judged(persist_v, len(connected) + len(before),
                                              f"list and get agree after revoke-all ({what})"),
            "revoke-idempotent": Outcome.judged(idem_v, 2, "a second revoke-all returned 0"),
        }
