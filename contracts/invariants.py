"""Passive rules: checked on every answer the kit sees, whichever layer asked.

Every session object in a list or read answer is judged against the server's ``Date``
header (its clock, to the second): derived status, ``disconnectedAt``, timestamp order
and ``agentId``. Every answer is checked for ``x-request-id`` and, for the sessions
operations, the documented envelope.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from .http import Exchange, dumps
from .report import Violation
from .spec import ApiSpec

__all__ = ["PASSIVE_RULES", "PassiveRules", "parse_time"]

PASSIVE_RULES = (
    "envelope", "x-request-id", "derived-status-disconnected", "derived-status-expired",
    "derived-status-idle", "disconnected-at", "timestamps-ordered", "agent-id",
)
# One full example per rule (the rest are counted): a person acts on one at a time.
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


class PassiveRules:
    """Collects violations of the passive rules from every exchange it is shown."""

    def __init__(self, spec: ApiSpec, idle_after: timedelta) -> None:
        self.spec = spec
        self.idle_after = idle_after
        self.violations: dict[str, list[Violation]] = {r: [] for r in PASSIVE_RULES}
        self.extra: dict[str, int] = dict.fromkeys(PASSIVE_RULES, 0)
        self.checks: dict[str, int] = dict.fromkeys(PASSIVE_RULES, 0)
        self._lock = threading.Lock()

    # -- the observer ------------------------------------------------------------------

    def __call__(self, ex: Exchange) -> None:
        with self._lock:
            self._exchange(ex)

    def _fail(self, rule: str, message: str, ex: Exchange) -> None:
        found = self.violations[rule]
        if len(found) < _KEEP:
            found.append(Violation(rule, message, ex.curl(), ex.describe()))
        else:
            self.extra[rule] += 1

    def _exchange(self, ex: Exchange) -> None:
        self.checks["x-request-id"] += 1
        if not ex.headers.get("x-request-id", "").strip():
            self._fail("x-request-id", f"{ex.method} {_path(ex.url)} answered {ex.status} "
                       "without an x-request-id header", ex)
        if ex.status != 200:
            return
        op = ex.operation
        if op is None:
            found = self.spec.operation_for(ex.method, ex.url)
            op = found.operation_id if found else None
        if op == "listSessions":
            self._list(ex)
        elif op == "getSession":
            self._read(ex)
        elif op == "revokeAllSessions":
            self._revoke(ex)

    def _list(self, ex: Exchange) -> None:
        items = self._enveloped(ex, "items", list, "a list answer has no 'items' array")
        for item in items or ():
            if isinstance(item, dict):
                self._session(item, ex)

    def _read(self, ex: Exchange) -> None:
        session = self._enveloped(ex, "session", dict, "a read answer has no 'session' object")
        if session is not None:
            self._session(session, ex)

    def _enveloped(self, ex: Exchange, key: str, kind: type, missing: str) -> Any:
        """The answer's ``key`` member if it is a ``kind``; else a failure, and None."""
        self.checks["envelope"] += 1
        body = ex.json_or_none()
        value = body.get(key) if isinstance(body, dict) else None
        if isinstance(value, kind):
            return value
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        self._fail("envelope", f"{missing} (keys: {keys})", ex)
        return None

    def _revoke(self, ex: Exchange) -> None:
        self.checks["envelope"] += 1
        body = ex.json_or_none()
        ok = (isinstance(body, dict) and body.get("success") is True
              and isinstance(body.get("disconnectedCount"), int)
              and not isinstance(body.get("disconnectedCount"), bool))
        if not ok:
            self._fail("envelope", "revoke-all did not answer "
                       '{"success": true, "disconnectedCount": <integer>}', ex)

    # -- one session -------------------------------------------------------------------

    def _session(self, s: dict[str, Any], ex: Exchange) -> None:
        sid = s.get("id", "?")
        server = ex.server_time
        slack = _SLACK if server is not None else _SLACK_LOCAL
        now = server or datetime.now(UTC)
        status, derived = s.get("status"), s.get("derivedStatus")
        where = f"session {sid} (status {status}, derivedStatus {derived})"

        self.checks["agent-id"] += 1
        app = _application_of(ex.url)
        if app is not None and s.get("agentId") != app:
            self._fail("agent-id", f"{where}: agentId {s.get('agentId')!r} is not the "
                       f"application id {app}", ex)

        self.checks["derived-status-disconnected"] += 1
        if (status == "disconnected") != (derived == "disconnected"):
            self._fail("derived-status-disconnected",
                       f"{where}: derivedStatus must be disconnected exactly when status is", ex)

        self.checks["disconnected-at"] += 1
        disconnected_at = s.get("disconnectedAt")
        if status == "disconnected" and not disconnected_at:
            self._fail("disconnected-at", f"{where}: disconnected, but disconnectedAt is "
                       f"{dumps(disconnected_at) if 'disconnectedAt' in s else 'missing'}", ex)
        elif status == "active" and disconnected_at:
            self._fail("disconnected-at",
                       f"{where}: connected, but disconnectedAt is {disconnected_at}", ex)

        self._times(s, where, now, slack, ex)
        if status != "active":
            return
        self._expiry(s, where, now, slack, ex)

    def _expiry(self, s: dict[str, Any], where: str, now: datetime, slack: timedelta,
                ex: Exchange) -> None:
        derived = s.get("derivedStatus")
        expires = parse_time(s.get("tokenExpiresAt"))
        self.checks["derived-status-expired"] += 1
        if expires is not None and expires <= now - slack and derived != "expired":
            self._fail("derived-status-expired",
                       f"{where}: tokenExpiresAt {_iso(expires)} is before the server's Date "
                       f"{_iso(now)}, so derivedStatus must be expired", ex)
            return
        if derived == "expired" and (expires is None or expires > now + slack):
            when = "null" if expires is None else f"{_iso(expires)}, after the server's Date {_iso(now)}"
            self._fail("derived-status-expired",
                       f"{where}: derivedStatus is expired but tokenExpiresAt is {when}", ex)
            return
        if derived not in ("active", "idle") or (expires is not None and expires <= now + slack):
            return
        self.checks["derived-status-idle"] += 1
        last = parse_time(s.get("lastActiveAt"))
        if last is None:
            return  # nothing says when it was last active: either answer is defensible
        age = now - last
        threshold = self.idle_after
        if derived == "active" and age - slack >= threshold:
            self._fail("derived-status-idle",
                       f"{where}: lastActiveAt {_iso(last)} is {_secs(age)} before the server's "
                       f"Date {_iso(now)} (idle threshold {_secs(threshold)}), so derivedStatus "
                       "must be idle", ex)
        elif derived == "idle" and age + slack < threshold:
            self._fail("derived-status-idle",
                       f"{where}: lastActiveAt {_iso(last)} is only {_secs(age)} before the "
                       f"server's Date {_iso(now)} (idle threshold {_secs(threshold)}), so "
                       "derivedStatus must be active", ex)

    def _times(self, s: dict[str, Any], where: str, now: datetime, slack: timedelta,
               ex: Exchange) -> None:
        self.checks["timestamps-ordered"] += 1
        order = [(k, parse_time(s.get(k))) for k in ("createdAt", "connectedAt", "lastActiveAt")]
        known = [(k, t) for k, t in order if t is not None]
        for (k1, t1), (k2, t2) in itertools.pairwise(known):
            if t2 < t1:
                self._fail("timestamps-ordered", f"{where}: {k2} {_iso(t2)} is before "
                           f"{k1} {_iso(t1)}", ex)
                return
        for key in ("createdAt", "connectedAt", "lastActiveAt", "disconnectedAt"):
            t = parse_time(s.get(key))
            if t is not None and t > now + slack:
                self._fail("timestamps-ordered", f"{where}: {key} {_iso(t)} is after the "
                           f"server's Date {_iso(now)}", ex)
                return

    # -- verdicts ----------------------------------------------------------------------

    def found(self, rule: str) -> list[Violation]:
        """The violations of ``rule`` (the first few), the count of the rest in the last one."""
        found = list(self.violations[rule])
        if self.extra[rule] and found:
            last = found[-1]
            found[-1] = Violation(last.rule, last.message + f"\n(and {self.extra[rule]} more "
                                  "answers like it)", last.request, last.response)
        return found


def _path(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _application_of(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    segments = urlsplit(url).path.split("/")
    try:
        index = segments.index("applications")
    except ValueError:
        return None
    return unquote(segments[index + 1]) if index + 1 < len(segments) else None


def _secs(d: timedelta) -> str:
    return f"{d.total_seconds():.0f} s"
