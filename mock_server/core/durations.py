"""Parsing of durations and instants given by people: ``PT10M``, ``90``, ``5m``, ``-3m``."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

__all__ = ["DurationError", "format_instant", "parse_duration", "parse_instant"]

# ISO 8601 durations as used for clocks: days and time parts (no years or months,
# whose length depends on the calendar).
_ISO = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
# Compact form: "90", "1.5", "5m", "1h30m", "2d", "250ms", optionally signed.
_COMPACT_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)", re.IGNORECASE)
_COMPACT = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|d|h|m|s))+$", re.IGNORECASE)
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_MAX_SECONDS = 100 * 365 * 86400  # beyond a century is a typo, not a test


class DurationError(ValueError):
    """A duration or instant that cannot be parsed; the message says why."""


def parse_duration(value: str | int | float, *, allow_negative: bool = False) -> timedelta:
    """Parse a duration: seconds as a number, ISO 8601 (``PT10M``) or compact (``1h30m``).

    Negative durations (a leading ``-``) are refused unless ``allow_negative`` is set,
    as for relative times in scenarios (``-3m`` means three minutes before now).
    """
    if isinstance(value, bool):
        raise DurationError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond a float's range
            raise DurationError(f"duration out of range: {value!r}") from None
    else:
        text = value.strip()
        sign = 1.0
        if text[:1] in "+-" and text[:1]:
            sign = -1.0 if text[0] == "-" else 1.0
            text = text[1:]
        if not text:
            raise DurationError(f"not a duration: {value!r}")
        if _NUMBER.match(text):
            seconds = float(text)
        elif _COMPACT.match(text):
            seconds = sum(
                float(n) * _UNIT_SECONDS[u.lower()] for n, u in _COMPACT_PART.findall(text)
            )
        else:
            match = _ISO.match(text)
            if not match or text.upper() in {"P", "PT"} or text.upper().endswith("T"):
                raise DurationError(
                    f"not a duration: {value!r} (use seconds like 90, ISO 8601 like PT10M,"
                    " or 1h30m)"
                )
            parts = {k: float(v) for k, v in match.groupdict().items() if v and k != "sign"}
            seconds = (
                parts.get("w", 0) * 604800
                + parts.get("d", 0) * 86400
                + parts.get("h", 0) * 3600
                + parts.get("m", 0) * 60
                + parts.get("s", 0)
            )
        seconds *= sign
    if seconds != seconds or abs(seconds) > _MAX_SECONDS:  # NaN or absurd
        raise DurationError(f"duration out of range: {value!r}")
    if seconds < 0 and not allow_negative:
        raise DurationError(f"duration must not be negative: {value!r}")
    return timedelta(seconds=seconds)


def parse_instant(value: str | datetime) -> datetime:
    """Parse an ISO 8601 instant; a naive one is taken as UTC. Returns an aware UTC datetime."""
    if isinstance(value, datetime):
        instant = value
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            instant = datetime.fromisoformat(text)
        except ValueError:
            raise DurationError(
                f"not an ISO 8601 instant: {value!r} (e.g. 2026-01-01T12:00:00Z)"
            ) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    try:
        return instant.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise DurationError(f"instant out of range: {value!r}") from None


def format_instant(instant: datetime) -> str:
    """Format an instant as the API does: UTC, milliseconds, ``Z`` (``2026-01-01T12:00:00.000Z``)."""
    return _format_utc(instant.astimezone(UTC))


@functools.lru_cache(maxsize=256)  # (a revoke-all formats one instant per session it ends)
def _format_utc(utc: datetime) -> str:
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
