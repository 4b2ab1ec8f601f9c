"""Rate limiting per credential, on the mock's clock (off by default).

The production figure is 120 requests per minute per credential. The limiter keeps,
for each credential, the instants of its counted requests in the last minute (a
sliding window); a request beyond the limit is refused with the seconds until the
oldest counted one leaves the window, so ``Retry-After`` is exact on the mock's clock
and moving the clock lets requests through again.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from collections import deque
from datetime import datetime, timedelta

__all__ = ["MAX_CREDENTIALS", "PRODUCTION_PER_MINUTE", "WINDOW", "RateLimiter"]

PRODUCTION_PER_MINUTE = 120
WINDOW = timedelta(minutes=1)
#: credentials counted at once; past it, those with nothing in the window are forgotten,
#: then the least recently seen below their limit, down to nine tenths (each credential's
#: window holds at most ``per_minute`` instants)
MAX_CREDENTIALS = 10_000


class RateLimiter:
    """Counts requests per credential over the last minute of the mock's clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: requests allowed per minute per credential; None: no limit (one truth test per request)
        self.per_minute: int | None = None
        self._windows: dict[str, deque[datetime]] = {}

    def set(self, per_minute: int | None) -> None:
        """Turn limiting on with this figure, or off with None; counting starts afresh."""
        if per_minute is not None and per_minute < 1:
            raise ValueError(f"the rate limit must be at least 1 request per minute, not {per_minute}")
        with self._lock:
            self.per_minute = per_minute
            self._windows.clear()

    def hit(self, credential: str, now: datetime) -> int | None:
        """Count a request; None when it may pass, else the seconds to wait (``Retry-After``)."""
        limit = self.per_minute
        if limit is None:
            return None
        if len(credential) > 64:  # (a long one is kept as its digest: memory is per credential)
            credential = hashlib.blake2b(credential.encode(), digest_size=16).hexdigest()
        with self._lock:
            windows = self._windows
            window = windows.pop(credential, None)  # (put back last: the most recently seen)
            if window is None:
                if len(windows) >= MAX_CREDENTIALS:
                    self._forget(now - WINDOW, limit)
                window = deque()
            elif window and window[-1] > now:
                window.clear()  # the clock went back: the old counts are from the future
            windows[credential] = window
            start = now - WINDOW
            while window and window[0] <= start:
                window.popleft()
            if len(window) >= limit:
                wait = (window[0] + WINDOW - now).total_seconds()
                return max(1, math.ceil(wait))
            window.append(now)
            return None

    @property
    def credentials(self) -> int:
        """How many credentials are being counted."""
        return len(self._windows)

    def _forget(self, start: datetime, limit: int) -> None:
        """Make room for credentials (lock held): drop the windows with nothing after
        ``start``; then, down to nine tenths of the cap, the least recently seen of those
        below ``limit`` (a credential being refused keeps its count, whatever else comes);
        then, only if every one is at its limit, the least recently seen."""
        windows = self._windows
        for key in [k for k, w in windows.items() if not w or w[-1] <= start]:
            del windows[key]
        keep = MAX_CREDENTIALS - MAX_CREDENTIALS // 10
        excess = len(windows) - keep
        if excess > 0:
            below = [k for k, w in windows.items() if len(w) < limit]
            for key in below[:excess]:
                del windows[key]
        excess = len(windows) - keep
        if excess > 0:
            for key in list(itertools.islice(windows, excess)):
                del windows[key]

    def clear(self) -> None:
        """Forget the counts (the limit stays)."""
        with self._lock:
            self._windows.clear()
