"""The only source of "now".

The mock always keeps a :class:`VirtualClock`: started at the system's time and left
running, it *is* the system clock; frozen, set or advanced, it is a test's clock. One
class means a running mock can be frozen or moved at any moment without swapping clocks
under the store.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ClockError", "VirtualClock"]

_MILLISECOND = timedelta(milliseconds=1)


class ClockError(ValueError):
    """An operation the clock refuses (e.g. advancing by a negative duration)."""


class Clock(Protocol):
    """What the store and the HTTP layer read the time from."""

    def now(self) -> datetime:
        """The current instant, an aware UTC datetime."""
        ...

    @property
    def frozen(self) -> bool:
        """True when time moves only when told to."""
        ...


class VirtualClock:
    """A clock under the test's control.

    Running, it moves with real time from the instant it was set to; frozen, it moves
    only through :meth:`advance` and :meth:`set`. Instants are kept to the millisecond,
    as the API reports them, so that what a client reads back is what the clock says.
    """

    def __init__(self, start: datetime, *, frozen: bool = True) -> None:
        self._lock = threading.Lock()
        # (anchor instant, monotonic time at the anchor, frozen): replaced whole, so a
        # reader gets a consistent triple without taking the lock
        self._state = (_to_ms(start), time.monotonic(), frozen)
        # (the state it was read from, the monotonic time it holds until, the instant): the
        # last instant a running clock told, told again within the same millisecond
        self._last: tuple[object, float, datetime] = ((), 0.0, self._state[0])

    @classmethod
    def system(cls) -> VirtualClock:
        """A running clock that starts at the system's current time."""
        return cls(datetime.now(UTC), frozen=False)

    @property
    def frozen(self) -> bool:
        """True when time moves only when told to."""
        return self._state[2]

    def now(self) -> datetime:
        """The clock's current instant."""
        state = self._state
        anchor, anchor_mono, frozen = state
        if frozen:
            return anchor
        mono = time.monotonic()
        last_state, until, last = self._last
        if last_state is state and mono < until:
            return last
        # The anchor is a whole millisecond, so the instant cut to the millisecond is the
        # anchor plus the whole milliseconds elapsed.
        elapsed = timedelta(seconds=mono - anchor_mono) // _MILLISECOND
        instant = anchor + elapsed * _MILLISECOND
        # (until a microsecond before the next millisecond: from there, timedelta's
        # rounding to the microsecond decides, as above)
        self._last = (state, anchor_mono + (elapsed + 1) / 1000 - 1e-6, instant)
        return instant

    def set(self, instant: datetime) -> datetime:
        """Move the clock to ``instant`` (forwards or backwards); returns the new now."""
        if instant.tzinfo is None:
            raise ClockError("the instant must carry a time zone (e.g. Z)")
        with self._lock:
            anchor = _to_ms(instant)
            self._state = (anchor, time.monotonic(), self._state[2])
            return anchor

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta``; returns the new now."""
        if delta < timedelta(0):
            raise ClockError("the clock only advances; use set() to go back")
        return self.set(self.now() + delta)

    def freeze(self) -> datetime:
        """Stop the clock at the current instant."""
        with self._lock:
            now = self.now()
            self._state = (now, time.monotonic(), True)
        return now

    def unfreeze(self) -> datetime:
        """Let the clock run with real time again, from the current instant."""
        with self._lock:
            now = self.now()
            self._state = (now, time.monotonic(), False)
        return now


def _to_ms(instant: datetime) -> datetime:
    instant = instant.astimezone(UTC)
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)
