"""Durations, instants and the virtual clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kontext_mock import ClockError, DurationError, VirtualClock, parse_duration, parse_instant
from kontext_mock.core.durations import format_instant

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("1.5", 1.5), ("PT10M", 600), ("pt10m", 600), ("PT1H30M", 5400), ("P1D", 86400),
     ("P1DT1S", 86401), ("P2W", 1209600), ("PT0.5S", 0.5), ("5m", 300), ("1h30m", 5400),
     ("250ms", 0.25), ("2d", 172800), (45, 45), (2.5, 2.5), (" 10s ", 10)],
)
def test_durations_parse(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "abc", "10x", "1h 30m", "--5", "PT-5M",
                                  "1e3", "nan", "P1Y", True, "9" * 30])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_negative_durations_only_when_allowed() -> None:
    with pytest.raises(DurationError, match="negative"):
        parse_duration("-3m")
    assert parse_duration("-3m", allow_negative=True) == timedelta(minutes=-3)


@given(st.text(max_size=30))
def test_the_duration_parser_never_crashes(text: str) -> None:
    try:
        result = parse_duration(text, allow_negative=True)
    except DurationError:
        return
    assert isinstance(result, timedelta)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-01-01T12:00:00Z", T0), ("2026-01-01T13:00:00+01:00", T0), ("2026-01-01T12:00:00", T0)],
)
def test_instants_parse_to_utc(text: str, expected: datetime) -> None:
    assert parse_instant(text) == expected


def test_instants_format_like_the_api() -> None:
    assert format_instant(T0 + timedelta(microseconds=123456)) == "2026-01-01T12:00:00.123Z"


def test_bad_instants_are_refused() -> None:
    with pytest.raises(DurationError):
        parse_instant("yesterday")


def test_a_frozen_clock_moves_only_when_told() -> None:
    clock = VirtualClock(T0, frozen=True)
    time.sleep(0.01)
    assert clock.now() == T0
    assert clock.advance(timedelta(minutes=10)) == T0 + timedelta(minutes=10)
    assert clock.set(T0) == T0
    with pytest.raises(ClockError):
        clock.advance(timedelta(seconds=-1))


def test_a_running_clock_moves_with_real_time_from_where_it_was_set() -> None:
    started = time.monotonic()
    clock = VirtualClock(T0, frozen=False)
    time.sleep(0.02)
    now = clock.now()
    elapsed = timedelta(seconds=time.monotonic() - started)
    # at least the sleep, at most the time that passed (the clock keeps milliseconds)
    assert T0 + timedelta(milliseconds=20) <= now <= T0 + elapsed
    stopped = clock.freeze()
    time.sleep(0.01)
    assert clock.now() == stopped and clock.frozen
    clock.unfreeze()
    time.sleep(0.02)
    assert clock.now() > stopped


def test_the_system_clock_is_a_running_clock_at_system_time() -> None:
    before = datetime.now(UTC)
    clock = VirtualClock.system()
    now = clock.now()
    after = datetime.now(UTC)
    assert not clock.frozen
    assert before - timedelta(milliseconds=1) <= now <= after  # (kept to the millisecond)


def test_format_instant_formats_a_repeated_wall_clock_time_by_its_instant() -> None:
    from zoneinfo import ZoneInfo

    new_york = ZoneInfo("America/New_York")  # 01:30 happens twice on 2026-11-01
    first = datetime(2026, 11, 1, 1, 30, tzinfo=new_york)
    second = first.replace(fold=1)
    assert first == second  # (equal, and hash alike: a cache keyed on them would mix them up)
    assert format_instant(first) == "2026-11-01T05:30:00.000Z"
    assert format_instant(second) == "2026-11-01T06:30:00.000Z"
