"""Staying within the target's rate limit: a sliding window shared by every layer, and Retry-After."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from email.utils import parsedate_to_datetime

__all__ = ["RateLimiter", "parse_rate", "retry_after_seconds"]

_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$", re.IGNORECASE)
_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
          "h": 3600.0, "hour": 3600.0}


def parse_rate(text: str) -> tuple[int, float]:
    """``"120/min"`` -> ``(120, 60.0)``: requests per window of seconds (a bare number is per minute)."""
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"bad rate {text!r}: expected N/min, N/s or N/h with N >= 1")
    unit = (match.group(2) or "min").lower()
    return int(match.group(1)), _UNITS[unit]


class RateLimiter:
    """At most ``limit`` requests in any ``window`` seconds; :meth:`acquire` waits for a slot."""

    def __init__(self, limit: int, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        #: seconds spent waiting, for the report
        self.waited = 0.0

    @classmethod
    def from_text(cls, text: str) -> RateLimiter:
        """A limiter from ``"N/min"``."""
        return cls(*parse_rate(text))

    def acquire(self) -> None:
        """Wait until one more request fits in the window, then count it."""
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.window:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                wait = self._sent[0] + self.window - now
            self.waited += wait
            self._sleep(wait)


def retry_after_seconds(value: str | None, cap: float = 60.0) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(cap, seconds))
