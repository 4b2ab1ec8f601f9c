"""Passive rules: checked on every answer the kit sees, whichever layer asked.

Every session object in a list or read answer is judged against the server's ``Date``
header (its clock, to the second): derived status, ``disconnectedAt``, timestamp order
and ``agentId``. Every answer is checked for ``x-request-id`` and, for the sessions
operations, the documented envelope. Each rule is one function below, registered under
its name; :class:`PassiveRules` shows every answer to them.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from kontext_mock.contracts.assumptions import DISCONNECTED_AT, IDLE_THRESHOLD, PRECEDENCE, TIMES_ORDERED
from kontext_mock.contracts.drift import Ledger
from kontext_mock.contracts.http import Exchange, dumps
from kontext_mock.contracts.openapi import ApiSpec
from kontext_mock.contracts.report import Violation
from kontext_mock.contracts.rules import Rule, register, registered

__all__ = ["PassiveRules", "parse_time"]

# One full example per rule and kind (the rest are counted): a person acts on one at a time.
_KEEP = 1
# The Date header has a resolution of one second, and the server computed the answer a
# moment before it wrote the header: judge "now" within this much either way.
_SLACK = timedelta(seconds=1)
# Without a Date header the kit's own clock stands in, with a wider margin.
_SLACK_LOCAL = timedelta(seconds=5)


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime; None for null or unreadable values."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _secs(d: timedelta) -> str:
    return f"{d.total_seconds():.0f} s"


@dataclass(frozen=True, slots=True)
class Seen:
    """One session object in one answer, and the server's "now" to judge it by."""

    s: dict[str, Any]
    ex: Exchange
    now: datetime
    slack: timedelta

    @property
    def where(self) -> str:
        """How a message names the session."""
        s = self.s
        return (f"session {s.get('id', '?')} (status {s.get('status')}, "
                f"derivedStatus {s.get('derivedStatus')})")

    @property
    def unexpired_connection(self) -> bool:
        """Connected, and its token not expired by the server's clock (give or take)."""
        expires = parse_time(self.s.get("tokenExpiresAt"))
        return self.s.get("status") == "active" and (expires is None
                                                      or expires > self.now + self.slack)


class PassiveRules:
    """Shows every exchange to the passive rules and collects what they find."""

    def __init__(self, spec: ApiSpec, idle_after: timedelta, ledger: Ledger | None = None) -> None:
        self.spec = spec
        self.idle_after = idle_after
        self.ledger = ledger or Ledger()
        self.rules: list[Rule] = registered("semantic", "exchange", "session")
        self._on_exchange = [r for r in self.rules if r.kind == "exchange"]
        self._on_session = [r for r in self.rules if r.kind == "session"]
        self.violations: dict[str, list[Violation]] = {r.name: [] for r in self.rules}
        self.extra: dict[str, int] = {r.name: 0 for r in self.rules}
        self.checks: dict[str, int] = {r.name: 0 for r in self.rules}
        #: what the target's answers imply about its idle threshold: above the oldest
        #: activity still shown active, at most the most recent one shown idle
        self.idle_above: timedelta | None = None
        self.idle_at_most: timedelta | None = None
        self._lock = threading.Lock()

    # -- the observer ------------------------------------------------------------------

    def __call__(self, ex: Exchange) -> None:
        with self._lock:
            for r in self._on_exchange:
                r.check(self, ex)
            for s in self._sessions(ex):
                server = ex.server_time
                seen = Seen(s, ex, server or datetime.now(UTC),
                            _SLACK if server is not None else _SLACK_LOCAL)
                for r in self._on_session:
                    r.check(self, seen)

    def operation(self, ex: Exchange) -> str | None:
        """The operationId the exchange was for."""
        if ex.operation is not None:
            return ex.operation
        found = self.spec.operation_for(ex.method, ex.url)
        return found.operation_id if found else None

    def _sessions(self, ex: Exchange) -> list[dict[str, Any]]:
        if ex.status != 200:
            return []
        op = self.operation(ex)
        body = ex.json_or_none()
        if not isinstance(body, dict):
            return []
        if op == "listSessions" and isinstance(body.get("items"), list):
            return [i for i in body["items"] if isinstance(i, dict)]
        if op == "getSession" and isinstance(body.get("session"), dict):
            return [body["session"]]
        return []

    # -- what the rules call -----------------------------------------------------------

    def count(self, rule: str) -> None:
        """One more check of ``rule``."""
        self.checks[rule] += 1

    def fail(self, rule: str, message: str, ex: Exchange, assumption: str | None = None) -> None:
        """A violation of ``rule`` (of ``assumption``, when it is one)."""
        found = self.violations[rule]
        if sum(v.assumption == assumption for v in found) < _KEEP:
            found.append(Violation(rule, message, ex.curl(), ex.describe(), assumption))
        else:
            self.extra[rule] += 1

    def confirm(self, assumption: str, rule: str) -> None:
        """A check of ``assumption`` by ``rule`` held."""
        self.ledger.confirm(assumption, rule)

    # -- verdicts ----------------------------------------------------------------------

    def found(self, rule: str) -> list[Violation]:
        """The violations of ``rule`` (the first few), the count of the rest in the last one."""
        found = list(self.violations[rule])
        if self.extra[rule] and found:
            last = found[-1]
            found[-1] = Violation(last.rule, last.message + f"\n(and {self.extra[rule]} more "
                                  "answers like it)", last.request, last.response, last.assumption)
        return found

    def idle_bounds(self) -> str | None:
        """What the answers imply about the target's idle threshold, in words."""
        low, high = self.idle_above, self.idle_at_most
        if low is None and high is None:
            return None
        if low is not None and high is not None:
            return (f"the target's answers put its idle threshold above {_secs(low)} and at "
                    f"most {_secs(high)} (give or take the Date header's second)")
        if low is not None:
            return f"the target's answers put its idle threshold above {_secs(low)}"
        assert high is not None
        return f"the target's answers put its idle threshold at most {_secs(high)}"


# -- every answer ----------------------------------------------------------------------


@register("x-request-id", "semantic", "every response carries an x-request-id header",
          kind="exchange", detail="{n} responses")
def _x_request_id(p: PassiveRules, ex: Exchange) -> None:
    p.count("x-request-id")
    if not ex.headers.get("x-request-id", "").strip():
        p.fail("x-request-id", f"{ex.method} {_path(ex.url)} answered {ex.status} "
               "without an x-request-id header", ex)


@register("envelope", "semantic",
          'lists answer {"items": [...]}, reads {"session": {...}}, '
          'revoke-all {"success": true, "disconnectedCount": N}',
          kind="exchange", detail="{n} list, read and revoke answers")
def _envelope(p: PassiveRules, ex: Exchange) -> None:
    if ex.status != 200:
        return
    op = p.operation(ex)
    expected = {"listSessions": ("items", list, "a list answer has no 'items' array"),
                "getSession": ("session", dict, "a read answer has no 'session' object")}
    body = ex.json_or_none()
    if op in expected:
        p.count("envelope")
        key, kind, missing = expected[op]
        if not isinstance(body.get(key) if isinstance(body, dict) else None, kind):
            keys = sorted(body) if isinstance(body, dict) else type(body).__name__
            p.fail("envelope", f"{missing} (keys: {keys})", ex)
    elif op == "revokeAllSessions":
        p.count("envelope")
        count = body.get("disconnectedCount") if isinstance(body, dict) else None
        if not (isinstance(body, dict) and body.get("success") is True
                and isinstance(count, int) and not isinstance(count, bool)):
            p.fail("envelope", "revoke-all did not answer "
                   '{"success": true, "disconnectedCount": <integer>}', ex)


# -- every session object ----------------------------------------------------------------


@register("agent-id", "semantic", "agentId equals the application id of the path",
          kind="session", detail="{n} session objects")
def _agent_id(p: PassiveRules, seen: Seen) -> None:
    p.count("agent-id")
    app = _application_of(seen.ex.url)
    if app is not None and seen.s.get("agentId") != app:
        p.fail("agent-id", f"{seen.where}: agentId {seen.s.get('agentId')!r} is not the "
               f"application id {app}", seen.ex)


@register("derived-status-disconnected", "semantic",
          "derivedStatus is disconnected exactly when status is disconnected",
          assumes=(PRECEDENCE,), kind="session", detail="{n} session objects")
def _derived_disconnected(p: PassiveRules, seen: Seen) -> None:
    rule = "derived-status-disconnected"
    p.count(rule)
    status, derived = seen.s.get("status"), seen.s.get("derivedStatus")
    if derived == "disconnected" and status != "disconnected":
        # documented: disconnected means the transport is closed
        p.fail(rule, f"{seen.where}: derivedStatus is disconnected but the transport is "
               "not closed", seen.ex)
    elif status == "disconnected" and derived != "disconnected":
        p.fail(rule, f"{seen.where}: status is disconnected, so derivedStatus must be "
               "disconnected (disconnected comes first)", seen.ex, PRECEDENCE)
    elif status == "disconnected":
        p.confirm(PRECEDENCE, rule)


@register("derived-status-expired", "semantic",
          "a connected session is expired exactly when tokenExpiresAt is not after the "
          "server's Date", assumes=(PRECEDENCE,), kind="session",
          detail="{n} connected sessions judged against the server's Date")
def _derived_expired(p: PassiveRules, seen: Seen) -> None:
    rule = "derived-status-expired"
    s, now, slack = seen.s, seen.now, seen.slack
    if s.get("status") != "active":
        return
    p.count(rule)
    derived = s.get("derivedStatus")
    expires = parse_time(s.get("tokenExpiresAt"))
    if derived == "expired" and (expires is None or expires > now + slack):
        # documented: expired means the token has expired
        when = "null" if expires is None else f"{_iso(expires)}, after the server's Date {_iso(now)}"
        p.fail(rule, f"{seen.where}: derivedStatus is expired but tokenExpiresAt is {when}",
               seen.ex)
    elif expires is not None and expires <= now - slack:
        if derived != "expired":
            p.fail(rule, f"{seen.where}: tokenExpiresAt {_iso(expires)} is before the server's "
                   f"Date {_iso(now)}, so derivedStatus must be expired (expired comes before "
                   "idle and active)", seen.ex, PRECEDENCE)
        else:
            p.confirm(PRECEDENCE, rule)


@register("derived-status-idle", "semantic",
          "a connected, unexpired session is idle exactly when lastActiveAt is at least the "
          "idle threshold before the server's Date", assumes=(IDLE_THRESHOLD,), kind="session",
          detail="{n} connected, unexpired sessions judged against the server's Date")
def _derived_idle(p: PassiveRules, seen: Seen) -> None:
    rule = "derived-status-idle"
    derived = seen.s.get("derivedStatus")
    if derived not in ("active", "idle") or not seen.unexpired_connection:
        return
    p.count(rule)
    last = parse_time(seen.s.get("lastActiveAt"))
    if last is None:
        return  # nothing says when it was last active: either answer is defensible
    now, slack = seen.now, seen.slack
    age = now - last
    threshold = p.idle_after
    if derived == "active":
        p.idle_above = age if p.idle_above is None else max(p.idle_above, age)
    else:
        p.idle_at_most = age if p.idle_at_most is None else min(p.idle_at_most, age)
    if derived == "active" and age - slack >= threshold:
        p.fail(rule, f"{seen.where}: lastActiveAt {_iso(last)} is {_secs(age)} before the "
               f"server's Date {_iso(now)} (idle threshold {_secs(threshold)}), so "
               "derivedStatus must be idle", seen.ex, IDLE_THRESHOLD)
    elif derived == "idle" and age + slack < threshold:
        p.fail(rule, f"{seen.where}: lastActiveAt {_iso(last)} is only {_secs(age)} before "
               f"the server's Date {_iso(now)} (idle threshold {_secs(threshold)}), so "
               "derivedStatus must be active", seen.ex, IDLE_THRESHOLD)
    else:
        p.confirm(IDLE_THRESHOLD, rule)


@register("disconnected-at", "semantic", "disconnectedAt is set exactly on disconnected sessions",
          assumes=(DISCONNECTED_AT,), kind="session", detail="{n} session objects")
def _disconnected_at(p: PassiveRules, seen: Seen) -> None:
    rule = "disconnected-at"
    p.count(rule)
    s = seen.s
    status, disconnected_at = s.get("status"), s.get("disconnectedAt")
    if status == "disconnected" and not disconnected_at:
        shown = dumps(disconnected_at) if "disconnectedAt" in s else "missing"
        p.fail(rule, f"{seen.where}: disconnected, but disconnectedAt is {shown}", seen.ex,
               DISCONNECTED_AT)
    elif status == "active" and disconnected_at:
        p.fail(rule, f"{seen.where}: connected, but disconnectedAt is {disconnected_at}",
               seen.ex, DISCONNECTED_AT)
    else:
        p.confirm(DISCONNECTED_AT, rule)


@register("timestamps-ordered", "semantic",
          "createdAt <= connectedAt <= lastActiveAt, none after the server's Date",
          assumes=(TIMES_ORDERED,), kind="session", detail="{n} session objects")
def _timestamps_ordered(p: PassiveRules, seen: Seen) -> None:
    rule = "timestamps-ordered"
    p.count(rule)
    s, now, slack = seen.s, seen.now, seen.slack
    for key in ("createdAt", "connectedAt", "lastActiveAt", "disconnectedAt"):
        t = parse_time(s.get(key))
        if t is not None and t > now + slack:
            # documented enough: these are instants of things that already happened
            p.fail(rule, f"{seen.where}: {key} {_iso(t)} is after the server's Date "
                   f"{_iso(now)}", seen.ex)
            return
    order = [(k, parse_time(s.get(k))) for k in ("createdAt", "connectedAt", "lastActiveAt")]
    known = [(k, t) for k, t in order if t is not None]
    for (k1, t1), (k2, t2) in itertools.pairwise(known):
        if t2 < t1:
            p.fail(rule, f"{seen.where}: {k2} {_iso(t2)} is before {k1} {_iso(t1)}", seen.ex,
                   TIMES_ORDERED)
            return
    if len(known) > 1:
        p.confirm(TIMES_ORDERED, rule)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _application_of(url: str) -> str | None:
    segments = urlsplit(url).path.split("/")
    try:
        index = segments.index("applications")
    except ValueError:
        return None
    return unquote(segments[index + 1]) if index + 1 < len(segments) else None
