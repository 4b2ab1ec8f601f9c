"""The ``Date`` header: the mock's clock, as RFC 9110 writes an instant."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime

__all__ = ["HttpDate"]


class HttpDate:
    """The ``Date`` header for an instant, formatted once per second of the mock's clock."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second: datetime | None = None
        self._text = ""

    def __call__(self, instant: datetime) -> str:
        second = instant.replace(microsecond=0)
        if second != self._second:
            # (a racing thread may format the same second twice; both results are equal)
            self._text, self._second = format_datetime(second, usegmt=True), second
        return self._text
