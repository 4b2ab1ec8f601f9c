"""The ``kontext`` marker and the plugin's options: what they change, and clear errors."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_it=source)
    return pytester.runpytest("-p", "no:cacheprovider", *args)


# -- wrong use: a clear error naming the marker, and no traceback from the plugin --------

@pytest.mark.parametrize(
    ("marker", "complaint"),
    [
        ('scenario="no-such-scenario"', "unknown scenario 'no-such-scenario' (known: *mixed*"),
        ('scenario="../etc/passwd"', "not a scenario name or a .yaml path"),
        ('scenario=7', "expected a scenario name or a path"),
        ('sessions=10**7', "the mock holds at most"),
        ('idle_after="soon"', "idle_after='soon': not a duration"),
        ('idle_after="-2m"', "idle_after='-2m'"),
        ('colour="red"', "unknown key colour"),
        ('seed="seven"', "seed='seven': expected a whole number"),
        ('transport="carrier-pigeon"', "expected one of http, inprocess"),
        ('rate_limit=0', "rate_limit=0: expected requests per minute of 1 or more"),
        ('now="yesterday"', "now='yesterday'"),
        ('"mixed"', "takes keyword arguments only"),
    ],
)
def test_a_wrong_marker_is_a_clear_error_naming_it(pytester: pytest.Pytester, marker: str,
                                                   complaint: str) -> None:
    result = run(pytester, f"""
import pytest

@pytest.mark.kontext({marker})
def test_uses_the_mock(kontext_mock):
    pass
""")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*@pytest.mark.kontext*{complaint}*"])
    # the message alone: no frames from inside the plugin
    assert "fixtures/plugin.py" not in result.stdout.str()
    assert "fixtures/settings.py" not in result.stdout.str()


def test_a_broken_scenario_file_is_a_clear_error(pytester: pytest.Pytester) -> None:
    broken = pytester.path / "broken.yaml"
    broken.write_text("sessions: [unclosed\n")

    result = run(pytester, f"""
import pytest

@pytest.mark.kontext(scenario={str(broken)!r})
def test_uses_the_mock(kontext_mock):
    pass
""")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.kontext*scenario=*broken.yaml*:2: malformed YAML*"])


@pytest.mark.parametrize(
    ("option", "complaint"),
    [
        ("--kontext-idle-after=soon", "--kontext-idle-after: idle_after='soon': not a duration*"),
        ("--kontext-seed=x", "--kontext-seed: seed='x': expected a whole number*"),
    ],
)
def test_a_wrong_option_is_a_usage_error(pytester: pytest.Pytester, option: str,
                                         complaint: str) -> None:
    result = run(pytester, "def test_nothing():\n    pass\n", option)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{complaint}"])


def test_an_unknown_default_scenario_fails_the_tests_naming_the_option(
        pytester: pytest.Pytester) -> None:
    result = run(pytester, "def test_a(kontext_mock):\n    pass\n\n"
                           "def test_b(kontext_mock):\n    pass\n\n"
                           "def test_without_the_mock():\n    pass\n",
                 "--kontext-scenario=nope")

    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*kontext settings (--kontext-scenario): scenario='nope':"
                                 " unknown scenario 'nope' (known: *mixed*"])
    assert "fixtures/server.py" not in result.stdout.str()


def test_a_wrong_ini_value_is_a_usage_error_naming_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkontext_transport = smoke-signals\n")

    result = run(pytester, "def test_nothing():\n    pass\n")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini kontext_transport: transport='smoke-signals'*"])


# -- what the marker and the options change --------------------------------------------

def test_the_marker_sets_seed_clock_and_idle_threshold(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
import datetime as dt
import pytest
from kontext_mock import KontextMock


@pytest.mark.kontext(seed=7, now="2030-01-01T00:00:00Z", idle_after="2m")
def test_marked(kontext_mock, kontext_clock):
    assert kontext_clock.now() == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert kontext_mock.config.seed == 7
    assert kontext_mock.idle_after == dt.timedelta(minutes=2)
    same = KontextMock(seed=7, now="2030-01-01T00:00:00Z", idle_after="2m", frozen=True)
    assert kontext_mock.list_sessions(status="all") == same.list_sessions(
        kontext_mock.application_id, status="all")


def test_unmarked(kontext_mock):
    assert kontext_mock.config.seed == 1
    assert kontext_mock.clock.frozen
""")

    result.assert_outcomes(passed=2)


def test_the_closest_marker_wins_and_the_others_still_apply(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
import datetime as dt
import pytest

pytestmark = pytest.mark.kontext(seed=5, idle_after="1m")


class TestGroup:
    pytestmark = pytest.mark.kontext(seed=6)

    @pytest.mark.kontext(seed=7)
    def test_own_marker(self, kontext_mock):
        assert kontext_mock.config.seed == 7
        assert kontext_mock.idle_after == dt.timedelta(minutes=1)

    def test_class_marker(self, kontext_mock):
        assert kontext_mock.config.seed == 6


def test_module_marker(kontext_mock):
    assert kontext_mock.config.seed == 5
""")

    result.assert_outcomes(passed=3)


def test_options_and_ini_set_the_defaults_and_the_option_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkontext_seed = 3\nkontext_idle_after = 90\n")

    result = run(pytester, """
import datetime as dt


def test_defaults(kontext_mock, kontext_clock):
    assert kontext_mock.config.seed == 4
    assert kontext_mock.idle_after == dt.timedelta(seconds=90)
    started = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
    assert started <= kontext_clock.now() < started + dt.timedelta(seconds=5)
    assert not kontext_clock.frozen
    assert kontext_mock.transport == "inprocess"
""", "--kontext-seed=4", "--kontext-now=2026-05-01T08:00:00Z", "--kontext-frozen=false",
        "--kontext-transport=inprocess")

    result.assert_outcomes(passed=1)


def test_a_running_clock_starts_each_test_at_the_same_instant(pytester: pytest.Pytester) -> None:
    # Each test moves its running clock an hour on; the next one must start back at the
    # chosen instant, not an hour later (no time margin: an hour is no set-up's length).
    result = run(pytester, """
import datetime as dt
import time
import pytest

CHOSEN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("n", range(3))
def test_start(kontext_clock, n):
    start = kontext_clock.now()
    assert CHOSEN <= start < CHOSEN + dt.timedelta(hours=1)
    kontext_clock.advance("1h")
    deadline = time.monotonic() + 30
    while kontext_clock.now() <= start + dt.timedelta(hours=1):  # and it runs on
        assert time.monotonic() < deadline
        time.sleep(0.001)
""", "--kontext-frozen=false", "--kontext-now=2026-01-01T00:00:00Z")

    result.assert_outcomes(passed=3)
