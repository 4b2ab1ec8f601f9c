"""The ``lifecycle-model`` rule: a hypothesis state machine against a model of the rules.

Needs the mock's control plane: it freezes the clock (so the model knows "now"
exactly), creates an application and an agent client for each run, then draws steps:
open a session (agent side), heartbeat, disconnect, revoke-all (management side) and
move the clock. After every step the target's list must agree with the model: status,
derivedStatus (disconnected > expired > idle > active), disconnectedAt, lastActiveAt,
and which sessions ``status=active`` lists. Every answer is checked as the step happens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import hypothesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from kontext_mock.contracts.assumptions import (
    AGENT_APPLICATION,
    DISCONNECT_IDEMPOTENT,
    HEARTBEAT_ENDED,
    REVOKE_SCOPE,
    USER_AGENT_FALLBACK,
)
from kontext_mock.contracts.context import Outcome, RunContext
from kontext_mock.contracts.control import ControlPlane
from kontext_mock.contracts.http import Exchange, dumps
from kontext_mock.contracts.invariants import parse_time
from kontext_mock.contracts.report import Violation
from kontext_mock.contracts.rules import register

__all__ = ["lifecycle_model", "run_lifecycle_model"]

RULE = "lifecycle-model"
# Clock moves worth trying: around the idle threshold and the one-hour token lifetime.
_MOVES = [1, 30, 120, 299, 300, 301, 600, 1800, 3599, 3600, 3601, 7200]


class _StopError(Exception):
    """The model and the target disagreed; the violation is recorded."""


@dataclass
class _Modelled:
    """What the model says about one session."""

    id: str
    status: str
    expires: datetime | None
    last: datetime | None
    disconnected: datetime | None = None
    reason: str | None = None

    def derived(self, now: datetime, idle_after: timedelta) -> str:
        if self.status == "disconnected":
            return "disconnected"
        if self.expires is not None and self.expires <= now:
            return "expired"
        if self.last is None or now - self.last >= idle_after:
            return "idle"
        return "active"


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _scripted_walk(m: Any, idle_after: timedelta) -> None:
    """One fixed walk through every transition, before the random ones: each session state,
    each way of ending, idempotence, and a token expiring while connected."""
    check = m.the_list_agrees_with_the_model

    def do(step: Any, *args: Any) -> Any:
        result = step(*args)
        check()
        return result

    check()
    first, second, third = (do(m.open_session) for _ in range(3))
    do(m.heartbeat, first)
    do(m.advance, int(idle_after.total_seconds()) + 1)  # all three idle
    do(m.heartbeat, second)  # active again
    do(m.disconnect, third)
    do(m.advance, 30)
    do(m.disconnect, third)  # idempotent: nothing moves
    do(m.heartbeat, third)  # gone (agent)
    do(m.revoke_all)  # first and second
    do(m.heartbeat, first)  # gone (revoked)
    do(m.revoke_all)  # nothing left to revoke
    fourth = do(m.open_session)
    expires = m.model[fourth].expires
    if expires is not None:
        do(m.advance, int((expires - m.now).total_seconds()) + 1)  # expired, still connected
        do(m.heartbeat, fourth)  # gone (expired)
        do(m.revoke_all)  # an expired but connected session is revoked too
        do(m.heartbeat, fourth)  # gone (revoked)


@register("lifecycle-model", "stateful",
          "a state machine of agent sessions, revokes and clock moves agrees with a model "
          "of the rules at every step (needs a control plane)",
          assumes=(AGENT_APPLICATION, HEARTBEAT_ENDED, DISCONNECT_IDEMPOTENT, REVOKE_SCOPE,
                   USER_AGENT_FALLBACK))
def lifecycle_model(layer: Any) -> Outcome:
    """The rule's check: the state machine, against the stateful layer's target."""
    return run_lifecycle_model(layer.ctx)


def run_lifecycle_model(ctx: RunContext) -> Outcome:
    """Run the state machine; a violation names the steps that led to it."""
    if ctx.control is None:
        return Outcome.skipped("not available: the target has no control plane (/_mock)")
    control: ControlPlane = ctx.control
    client = ctx.client
    idle_after: timedelta = (ctx.extra.get("idle_after") or ctx.options.idle_after
                             or timedelta(minutes=5))
    organization = ctx.extra.get("organization_id")
    before = control.clock()
    # Frozen on the next whole second (forward, so no answer predates the clock): the
    # model then knows "now" exactly, to the millisecond the API reports.
    start = (parse_time(before["now"]) or datetime.now(UTC)).replace(microsecond=0)
    start += timedelta(seconds=1)
    control.set_time(_iso(start) or "", frozen=True)
    found: list[Violation] = []
    totals = {"steps": 0, "runs": 0}

    class LifecycleMachine(RuleBasedStateMachine):
        sessions = Bundle("sessions")

        def __init__(self) -> None:
            super().__init__()
            totals["runs"] += 1
            self.app = str(control.create_application("kontext-contract lifecycle",
                                                      organization)["id"])
            token = f"kc-agent-{uuid.uuid4().hex}"
            control.create_client(f"kontext-contract-{uuid.uuid4().hex[:16]}",
                                  uuid.uuid4().hex, ["management:applications:read"],
                                  application_id=self.app, token=token)
            client.redact.add(token)
            self.agent = f"Bearer {token}"
            self.now = parse_time(control.clock()["now"]) or start
            self.model: dict[str, _Modelled] = {}
            self.log: list[str] = [f"a new application {self.app}, clock frozen at {_iso(self.now)}"]

        # -- helpers -----------------------------------------------------------------

        def fail(self, message: str, ex: Exchange | None = None,
                 assumption: str | None = None) -> NoReturn:
            steps = "\n".join(f"  {i + 1}. {s}" for i, s in enumerate(self.log[-12:]))
            text = f"{message}\nsteps so far (the last {min(12, len(self.log))}):\n{steps}"
            if not found:
                found.append(Violation(RULE, text, ex.curl() if ex else None,
                                       ex.describe() if ex else None, assumption))
            raise _StopError

        def step(self, text: str) -> None:
            totals["steps"] += 1
            self.log.append(text)

        def agent_call(self, path: str, op: str, body: Any = None) -> Exchange:
            return client.request("POST", path, json=body, auth=self.agent, operation=op)

        def gone(self, ex: Exchange, m: _Modelled, what: str) -> None:
            body = ex.json_or_none() or {}
            expired = m.status == "active" and m.derived(self.now, idle_after) == "expired"
            error = "session_expired" if expired else "session_disconnected"
            reason = "expired" if expired else m.reason
            if not 400 <= ex.status < 500 or body.get("error") != error:
                self.fail(f"{what} of a session the model says is "
                          f"{'expired' if expired else 'disconnected'} answered {ex.status} "
                          f"{dumps(body.get('error'))}; expected a 4xx {error}", ex,
                          HEARTBEAT_ENDED if ex.status < 500 else None)
            if body.get("reason") != reason:
                self.fail(f"{what} answered reason {dumps(body.get('reason'))}; expected "
                          f"{reason!r}", ex, HEARTBEAT_ENDED)
            ctx.ledger.confirm(HEARTBEAT_ENDED, RULE)

        # -- rules -------------------------------------------------------------------

        @rule(target=sessions)
        def open_session(self) -> str:
            self.step("open a session (POST /api/v1/agent-sessions)")
            body = {"tokenIdentifier": f"tok_kc_{uuid.uuid4().hex[:12]}",
                    "authenticatedUserId": "user_kontext_contract",
                    "clientSessionId": str(uuid.uuid4()), "hostname": "kontext-contract.local",
                    "clientInfo": {"name": "kontext-contract", "version": "1"}}
            ex = self.agent_call("/api/v1/agent-sessions", "createAgentSession", body)
            created = ex.json_or_none()
            sid = created.get("sessionId") if isinstance(created, dict) else None
            if ex.status != 201 or not isinstance(sid, str):
                self.fail(f"opening a session answered {ex.status}, expected 201 with a "
                          "sessionId", ex, AGENT_APPLICATION if ex.status in (401, 403) else None)
            ctx.ledger.confirm(AGENT_APPLICATION, RULE)
            read = client.get(f"/api/v1/applications/{self.app}/sessions/{sid}",
                              operation="getSession")
            session = (read.json_or_none() or {}).get("session")
            if read.status != 200 or not isinstance(session, dict):
                self.fail(f"the session just opened ({sid}) does not read back: {read.status}",
                          read)
            expires = parse_time(session.get("tokenExpiresAt"))
            for key in ("createdAt", "connectedAt", "lastActiveAt"):
                if parse_time(session.get(key)) != self.now:
                    self.fail(f"a session opened at {_iso(self.now)} has {key} "
                              f"{session.get(key)}", read)
            if session.get("status") != "active" or session.get("derivedStatus") != "active":
                self.fail("a session just opened is not active", read)
            if expires is not None and expires <= self.now:
                self.fail(f"a session just opened has an expired token ({_iso(expires)})", read)
            sent = ex.request_headers.get("User-Agent")
            if session.get("userAgent") != sent:
                self.fail(f"a session opened without userAgent, with the User-Agent header "
                          f"{sent!r}, reads back userAgent {dumps(session.get('userAgent'))}",
                          read, USER_AGENT_FALLBACK)
            ctx.ledger.confirm(USER_AGENT_FALLBACK, RULE)
            self.model[str(sid)] = _Modelled(str(sid), "active", expires, self.now)
            self.log[-1] += f" -> {sid}"
            return str(sid)

        @rule(sid=sessions)
        def heartbeat(self, sid: str) -> None:
            m = self.model[sid]
            self.step(f"heartbeat {sid} (model: {m.derived(self.now, idle_after)})")
            ex = self.agent_call(f"/api/v1/agent-sessions/{sid}/heartbeat",
                                 "heartbeatAgentSession")
            if m.derived(self.now, idle_after) in ("disconnected", "expired"):
                self.gone(ex, m, "a heartbeat")
                return
            body = ex.json_or_none() or {}
            if ex.status != 200:
                self.fail(f"a heartbeat of a connected session answered {ex.status}", ex)
            if parse_time(body.get("lastActiveAt")) != self.now:
                self.fail(f"after a heartbeat at {_iso(self.now)} lastActiveAt is "
                          f"{body.get('lastActiveAt')}", ex)
            m.last = self.now

        @rule(sid=sessions)
        def disconnect(self, sid: str) -> None:
            m = self.model[sid]
            self.step(f"disconnect {sid} (model: {m.derived(self.now, idle_after)})")
            ex = self.agent_call(f"/api/v1/agent-sessions/{sid}/disconnect",
                                 "disconnectAgentSession")
            body = ex.json_or_none() or {}
            again = m.status != "active"
            if ex.status != 200:
                self.fail(f"disconnecting answered {ex.status}, expected 200", ex,
                          DISCONNECT_IDEMPOTENT if again and ex.status < 500 else None)
            if m.status == "active":
                m.status, m.disconnected, m.reason = "disconnected", self.now, "agent"
            if body.get("status") != "disconnected" or parse_time(
                    body.get("disconnectedAt")) != m.disconnected:
                self.fail(f"after disconnecting, the answer says status "
                          f"{body.get('status')}, disconnectedAt {body.get('disconnectedAt')}; "
                          f"the model says disconnected at {_iso(m.disconnected)}", ex,
                          DISCONNECT_IDEMPOTENT if again else None)
            if again:
                ctx.ledger.confirm(DISCONNECT_IDEMPOTENT, RULE)

        @rule()
        def revoke_all(self) -> None:
            connected = [m for m in self.model.values() if m.status == "active"]
            self.step(f"revoke-all ({len(connected)} connected in the model)")
            ex = client.request("DELETE", f"/api/v1/applications/{self.app}/sessions",
                                operation="revokeAllSessions")
            body = ex.json_or_none() or {}
            telling = [m for m in connected if m.derived(self.now, idle_after) != "active"]
            if ex.status != 200 or body.get("disconnectedCount") != len(connected):
                self.fail(f"revoke-all answered {ex.status} disconnectedCount "
                          f"{dumps(body.get('disconnectedCount'))}; the model has "
                          f"{len(connected)} connected sessions ({len(telling)} of them idle "
                          "or expired)", ex, REVOKE_SCOPE if ex.status == 200 and telling else None)
            if telling:
                ctx.ledger.confirm(REVOKE_SCOPE, RULE)
            for m in connected:
                m.status, m.disconnected, m.reason = "disconnected", self.now, "revoked"

        @rule(seconds=st.one_of(st.sampled_from(_MOVES), st.integers(1, 7200)))
        def advance(self, seconds: int) -> None:
            self.step(f"move the clock {seconds} s")
            moved = control.advance(seconds)
            now = parse_time(moved.get("now"))
            if now != self.now + timedelta(seconds=seconds):
                self.fail(f"the control plane moved the clock from {_iso(self.now)} to "
                          f"{moved.get('now')}, not by {seconds} s")
            self.now = now or self.now

        # -- the invariant -----------------------------------------------------------

        @invariant()
        def the_list_agrees_with_the_model(self) -> None:
            path = f"/api/v1/applications/{self.app}/sessions"
            ex = client.get(path, params={"status": "all", "limit": 200},
                            operation="listSessions")
            body = ex.json_or_none()
            items = body.get("items") if isinstance(body, dict) else None
            if ex.status != 200 or not isinstance(items, list):
                self.fail(f"listing answered {ex.status}", ex)
            listed = {str(i.get("id")): i for i in items if isinstance(i, dict)}
            extra = set(listed) - set(self.model)
            if extra:
                self.fail(f"status=all lists sessions the model never opened: "
                          f"{sorted(extra)[:3]}", ex)
            for sid, m in self.model.items():
                s = listed.get(sid)
                if s is None:
                    self.fail(f"session {sid} is missing from status=all", ex)
                    return
                want = {"status": m.status, "derivedStatus": m.derived(self.now, idle_after)}
                got = {k: s.get(k) for k in want}
                if got != want:
                    self.fail(f"at {_iso(self.now)} session {sid} is listed with {dumps(got)}; "
                              f"the model says {dumps(want)} (tokenExpiresAt "
                              f"{_iso(m.expires)}, lastActiveAt {_iso(m.last)}, idle after "
                              f"{idle_after.total_seconds():.0f} s)", ex)
                for key, value in (("disconnectedAt", m.disconnected), ("lastActiveAt", m.last)):
                    if parse_time(s.get(key)) != value:
                        self.fail(f"session {sid} is listed with {key} {s.get(key)}; the model "
                                  f"says {_iso(value)}", ex)
            active = client.get(path, params={"status": "active", "limit": 200},
                                operation="listSessions")
            active_body = active.json_or_none()
            active_items = active_body.get("items") if isinstance(active_body, dict) else []
            got_ids = {str(i.get("id")) for i in active_items or [] if isinstance(i, dict)}
            want_ids = {sid for sid, m in self.model.items()
                        if m.derived(self.now, idle_after) in ("active", "idle")}
            if got_ids != want_ids:
                self.fail(f"status=active lists {len(got_ids)} sessions; the model expects "
                          f"{len(want_ids)} (active or idle)", active)

    runs = max(1, ctx.options.max_examples // 10)
    machine: Any = hypothesis.seed(ctx.seed)(LifecycleMachine)
    try:
        _scripted_walk(LifecycleMachine(), idle_after)
        if ctx.frugal:  # under a request budget the scripted walk alone: every transition
            raise _StopError
        run_state_machine_as_test(machine, settings=settings(
            max_examples=runs, stateful_step_count=ctx.options.state_machine_steps,
            deadline=None, database=None, phases=(Phase.generate,),
            suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
            print_blob=False,
        ))
    except _StopError:
        pass
    except Exception:
        if not found:
            raise
    finally:
        if not before.get("frozen"):
            clock = control.clock()
            control.set_time(clock["now"], frozen=False)
    detail = (f"a scripted walk and {max(0, totals['runs'] - 1)} random runs: "
              f"{totals['steps']} steps of agent sessions, revokes and clock moves agreed "
              "with the model")
    return Outcome.judged(found[:1], totals["steps"], detail)
