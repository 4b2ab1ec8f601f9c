"""The clock moved on purpose: advance, set, freeze, unfreeze, and what plays on the way.

A clock move forwards plays everything due between the two instants, in time order:
scripted heartbeats and endings, and the ``session.idle`` and ``session.expired`` events
of sessions whose derived status changes on the way (the status itself is always derived
at read time; the events tell listeners).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from kontext_mock.core.clock import ClockError
from kontext_mock.core.durations import format_instant, parse_duration
from kontext_mock.core.fields import RecordError, check_instant, parse_time
from kontext_mock.core.state import MockState

__all__ = ["Duration", "Timeline"]

Duration = timedelta | str | int | float


class Timeline:
    """The mock's clock, moved as a test or a client asks."""

    def __init__(self, state: MockState) -> None:
        self.state = state

    def advance(self, duration: Duration) -> datetime:
        """Move the clock forward (``"PT10M"``, ``"10m"``, ``600`` or a timedelta), playing
        what is due on the way."""
        delta = duration if isinstance(duration, timedelta) else parse_duration(duration)
        if delta < timedelta(0):
            raise ClockError("the clock only advances; use set_time() to go back")
        state = self.state
        with state.store.lock:
            _in_range(state.clock.now() + delta)
            now = state.clock.advance(delta)
            state.play(now)
            return now

    def set_time(self, instant: datetime | str) -> datetime:
        """Move the clock to an instant (ISO 8601, ``now``, or relative to the clock:
        ``+1h30m``, ``-10m``); forwards it plays what is due, as :meth:`advance` does;
        backwards nothing is undone."""
        try:
            target = parse_time(instant, self.state.clock.now())
        except RecordError as exc:
            raise ClockError(exc.message) from None
        assert target is not None
        state = self.state
        with state.store.lock:
            now = state.clock.set(target)
            state.play(now)
            return now

    def freeze(self) -> datetime:
        """Stop the clock (after playing what is due)."""
        state = self.state
        with state.store.lock:
            state.play(state.clock.now())
            return state.clock.freeze()

    def unfreeze(self) -> datetime:
        """Let the clock run again."""
        return self.state.clock.unfreeze()

    def tick(self) -> None:
        """Play what is due up to now (a running clock moves without being told)."""
        state = self.state
        with state.store.lock:
            state.play(state.clock.now())

    def clock_state(self) -> dict[str, Any]:
        """``{"now": ..., "frozen": ...}``."""
        clock = self.state.clock
        return {"now": format_instant(clock.now()), "frozen": clock.frozen}


def _in_range(instant: datetime) -> datetime:
    try:
        return check_instant(instant)
    except RecordError as exc:
        raise ClockError(exc.message) from None
