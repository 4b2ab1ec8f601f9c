"""Lifecycles: scripted futures of sessions, and what happens as the clock moves.

A :class:`Script` says how a session's agent behaves from now on: it heartbeats every
``every`` until ``until``, then disconnects (with a reason), lets its token expire, or
goes quiet. When the clock moves from one instant to a later one, :meth:`Lifecycles.run`
plays everything due in between in time order: scripted heartbeats and endings, and the
``session.idle`` / ``session.expired`` events of sessions whose derived status changes on
the way (the status itself is always derived at read time; the events tell listeners).
Same state, same clock moves, same events: nothing here draws a random number.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from kontext_mock.core.durations import DurationError, format_instant, parse_duration, parse_instant
from kontext_mock.core.fields import RecordError, parse_time
from kontext_mock.core.records import CONNECTED, Session
from kontext_mock.core.store import Store

__all__ = ["ENDINGS", "Lifecycles", "Script", "script_from_spec"]

Ending = Literal["disconnect", "expire", "idle"]
ENDINGS: tuple[str, ...] = ("disconnect", "expire", "idle")
_REASONS = ("agent", "timeout", "revoked")
_DEFAULT_EVERY = timedelta(seconds=60)
_MIN_EVERY = timedelta(seconds=1)
# A script longer than this many heartbeats is a typo, and would make a clock move slow.
_MAX_HEARTBEATS = 100_000

Publish = Callable[..., Any]  # (type, session, at, **extra)
Disconnect = Callable[[Session, datetime, str], None]


@dataclass(frozen=True, slots=True)
class Script:
    """A session's scripted future. ``next_at`` None: no heartbeat is left before ``until``."""

    session_id: str
    every: timedelta
    next_at: datetime | None
    until: datetime
    then: Ending
    reason: str

    @property
    def due(self) -> datetime:
        """When its next step happens."""
        return self.next_at if self.next_at is not None else self.until

    def to_dict(self) -> dict[str, Any]:
        """The script as data (the control plane's ``Lifecycle``, with its session id)."""
        return {
            "sessionId": self.session_id,
            "heartbeatEvery": self.every.total_seconds(),
            "nextHeartbeatAt": None if self.next_at is None else format_instant(self.next_at),
            "until": format_instant(self.until),
            "then": self.then,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Script:
        """Read back :meth:`to_dict` (exported state)."""
        try:
            every = parse_duration(data["heartbeatEvery"])
            until = parse_instant(data["until"])
            next_raw = data.get("nextHeartbeatAt")
            next_at = None if next_raw is None else parse_instant(next_raw)
        except (DurationError, KeyError, TypeError) as exc:
            raise RecordError("lifecycle", f"unreadable lifecycle: {exc}") from None
        if every < _MIN_EVERY:
            raise RecordError("heartbeatEvery", "must be at least 1 second")
        return cls(str(data["sessionId"]), every, next_at, until,
                   _ending(data.get("then", "disconnect")), _reason(data.get("reason", "agent")))


def _ending(value: Any) -> Ending:
    if value not in ENDINGS:
        raise RecordError("then", f"must be one of {', '.join(ENDINGS)}, not {value!r}")
    return value  # type: ignore[no-any-return]


def _reason(value: Any) -> str:
    if value not in _REASONS:
        raise RecordError("reason", f"must be one of {', '.join(_REASONS)}, not {value!r}")
    return str(value)


def script_from_spec(session_id: str, spec: Mapping[str, Any], now: datetime) -> Script:
    """A script from its description (``heartbeatEvery``, ``until``, ``then``, ``reason``),
    starting at ``now``; RecordError naming the field that is wrong."""
    known = {"heartbeatEvery", "until", "then", "reason"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise RecordError(unknown[0], f"unknown lifecycle field (known: {', '.join(sorted(known))})")
    try:
        every = parse_duration(spec.get("heartbeatEvery", 60))
    except DurationError as exc:
        raise RecordError("heartbeatEvery", str(exc)) from None
    if every < _MIN_EVERY:
        raise RecordError("heartbeatEvery", "must be at least 1 second")
    if "until" not in spec:
        raise RecordError("until", "is required (when the scripted heartbeats stop, e.g. +20m)")
    until = parse_time(spec["until"], now, "until")
    assert until is not None
    if until <= now:
        raise RecordError("until", f"{format_instant(until)} is not after now ({format_instant(now)})")
    if (until - now) / every > _MAX_HEARTBEATS:
        raise RecordError(
            "until", f"more than {_MAX_HEARTBEATS} heartbeats before until; heartbeat less often"
        )
    first = now + every
    return Script(session_id, every, first if first <= until else None, until,
                  _ending(spec.get("then", "disconnect")), _reason(spec.get("reason", "agent")))


class Lifecycles:
    """The scripts of the mock's sessions, and the instant up to which time has been played."""

    def __init__(self) -> None:
        #: session id -> script; empty means clock moves only look for idle/expired events
        self.scripts: dict[str, Script] = {}
        #: the last instant played; None before the first run
        self.horizon: datetime | None = None

    def attach(self, script: Script) -> None:
        """Give a session its script (replacing any)."""
        self.scripts[script.session_id] = script

    def detach(self, session_id: str) -> Script | None:
        """Remove a session's script."""
        return self.scripts.pop(session_id, None)

    def reset(self, now: datetime, scripts: list[Script] | None = None) -> None:
        """Start afresh at ``now`` (reset, scenario, import)."""
        self.scripts = {s.session_id: s for s in scripts or []}
        self.horizon = now

    def export(self) -> list[dict[str, Any]]:
        """Every script as data, by session id."""
        return [self.scripts[k].to_dict() for k in sorted(self.scripts)]

    def run(
        self,
        store: Store,
        idle_after: timedelta,
        until: datetime,
        publish: Publish,
        disconnect: Disconnect,
    ) -> None:
        """Play everything due after the horizon up to ``until``, in time order (call with
        the store's lock held). Going back in time only moves the horizon back."""
        start = self.horizon
        self.horizon = until
        if start is None or until <= start:
            return
        order = itertools.count()
        # (time, 0 for a scripted step / 1 for a status change, order, kind, session id, version)
        heap: list[tuple[datetime, int, int, str, str, int]] = []
        versions: dict[str, int] = {}

        def watch(session: Session, after: datetime, push: Callable[[Any], None]) -> None:
            if session.status != CONNECTED:
                return
            version = versions.get(session.id, 0)
            expires = session.token_expires_at
            if expires is not None and after < expires <= until:
                push((expires, 1, next(order), "expired", session.id, version))
            last = session.last_active_at
            if last is not None:
                idle_at = last + idle_after
                if after < idle_at <= until and (expires is None or idle_at < expires):
                    push((idle_at, 1, next(order), "idle", session.id, version))

        for each in store.sessions.values():
            watch(each, start, heap.append)
        for script in self.scripts.values():
            if script.due <= until:
                heap.append((script.due, 0, next(order), "step", script.session_id, 0))
        heapq.heapify(heap)

        def push_step(script: Script) -> None:
            if script.due <= until:
                heapq.heappush(heap, (script.due, 0, next(order), "step", script.session_id, 0))

        def rewatch(session: Session, at: datetime) -> None:
            versions[session.id] = versions.get(session.id, 0) + 1
            watch(session, at, lambda item: heapq.heappush(heap, item))

        while heap:
            at, _, _, kind, session_id, version = heapq.heappop(heap)
            found = store.sessions.get(session_id)
            if kind != "step":
                if found is not None and versions.get(session_id, 0) == version and (
                    found.status == CONNECTED
                ):
                    publish(f"session.{kind}", found, at)
                continue
            current = self.scripts.get(session_id)
            if current is None or current.due != at:
                continue
            script = current
            if found is None or found.status != CONNECTED or (
                found.token_expires_at is not None and found.token_expires_at <= at
                and script.next_at is not None
            ):
                # The agent learns on its next heartbeat that the session is gone.
                self.scripts.pop(session_id, None)
                continue
            session = found
            if script.next_at is not None:
                session.last_active_at = at
                store.touch(session)
                publish("session.heartbeat", session, at)
                following = at + script.every
                script = replace(script, next_at=following if following <= script.until else None)
                self.scripts[session_id] = script
                push_step(script)
                rewatch(session, at)
                continue
            self.scripts.pop(session_id, None)
            if script.then == "disconnect":
                disconnect(session, at, script.reason)
                versions[session_id] = versions.get(session_id, 0) + 1
            elif script.then == "expire" and (
                session.token_expires_at is None or session.token_expires_at > at
            ):
                session.token_expires_at = at
                store.touch(session)
                versions[session_id] = versions.get(session_id, 0) + 1
                publish("session.expired", session, at)
            # "idle": the heartbeats stop; the idle event comes from the watch above.
