"""The ``Date`` header: the mock's clock, as RFC 9110 writes an instant."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime

__all__ = ["HttpDate"]


class HttpDate:
    """The ``Date`` header for an instant, formatted once per second of the mock's clock."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        # (the last instant asked for, its second, the text): replaced whole, so a racing
        # thread reads a consistent triple (and may format the same second twice, equally)
        self._last: tuple[datetime | None, datetime | None, str] = (None, None, "")

    def __call__(self, instant: datetime) -> str:
        last, last_second, text = self._last
        if instant is last:
            return text  # (the clock tells the same instant object within a millisecond)
        second = instant.replace(microsecond=0)
        if second != last_second:
            text = format_datetime(second, usegmt=True)
        self._last = (instant, second, text)
        return text
