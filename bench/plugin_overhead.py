"""What the pytest plugin costs a test suite (a benchmark to run by hand, not a test).

    .venv/bin/python bench/plugin_overhead.py [--tests 500]

Prints:
- the library's reset (``KontextServer.checkout``), median over many calls;
- the ``kontext_mock`` fixture's added time per test: the median setup+teardown time of
  a test using it, less that of a test using no fixture, measured inside pytest;
- the wall time of a pytest run of N tests that each use ``kontext_mock`` and make one
  request, over HTTP and in-process (targets: overhead < 2 ms, 500 tests < 5 s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CONFTEST = '''
import json, os
import pytest

phases = {}


def pytest_runtest_logreport(report):
    if report.when in ("setup", "teardown"):
        phases.setdefault(report.nodeid, 0.0)
        phases[report.nodeid] += report.duration


def pytest_sessionfinish(session):
    with open(os.environ["PHASES_OUT"], "w") as out:
        json.dump(phases, out)
'''

TESTS = '''
import pytest
import requests


@pytest.mark.parametrize("n", range({count}))
def test_uses_the_mock(kontext_mock, n):
    session = kontext_mock.requests_session()
    answer = session.get(kontext_mock.sessions_url(), headers=kontext_mock.headers)
    assert answer.status_code == 200


@pytest.mark.parametrize("n", range({count}))
def test_plain(n):
    assert n >= 0
'''

ONLY_MOCK = '''
import pytest


@pytest.mark.parametrize("n", range({count}))
def test_uses_the_mock(kontext_mock, n):
    session = kontext_mock.requests_session()
    answer = session.get(kontext_mock.sessions_url(), headers=kontext_mock.headers)
    assert answer.status_code == 200
'''


def library_reset(repeat: int = 2000) -> float:
    """Median milliseconds of one ``checkout`` (restore + runtime reset + handle)."""
    from kontext_mock import MockConfig
    from kontext_mock.fixtures import KontextServer

    server = KontextServer(MockConfig(frozen=True))
    server.checkout()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        server.checkout().close()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def run_pytest(directory: Path, *args: str, phases: Path | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of a pytest run in ``directory`` (it must pass). CPU time
    (user + system) hardly moves with other load on the machine; wall time does."""
    env = {"PHASES_OUT": str(phases or directory / "phases.json")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=directory, capture_output=True, text=True,
        env={**os.environ, **env}, check=False,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"pytest failed in {directory}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def fixture_overhead(count: int, transport: str) -> float:
    """Median ms added by ``kontext_mock`` to a test's setup and teardown."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "conftest.py").write_text(CONFTEST)
        (root / "test_overhead.py").write_text(TESTS.format(count=count))
        run_pytest(root, f"--kontext-transport={transport}")
        phases = json.loads((root / "phases.json").read_text())
    with_mock = [v for k, v in phases.items() if "test_uses_the_mock" in k]
    plain = [v for k, v in phases.items() if "test_plain" in k]
    return (statistics.median(with_mock) - statistics.median(plain)) * 1000


def suite_time(count: int, transport: str) -> tuple[float, float]:
    """Wall and CPU seconds of ``pytest`` running ``count`` tests that each use the mock once."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "test_suite.py").write_text(ONLY_MOCK.format(count=count))
        return run_pytest(root, f"--kontext-transport={transport}")


def empty_suite_time(count: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``pytest`` running ``count`` trivial tests (the floor)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "test_empty.py").write_text(textwrap.dedent(f"""
            import pytest

            @pytest.mark.parametrize("n", range({count}))
            def test_plain(n):
                assert n >= 0
        """))
        return run_pytest(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=500, help="tests per suite (default 500)")
    args = parser.parse_args()
    n = args.tests

    print(f"library reset (KontextServer.checkout), median: {library_reset():.3f} ms")
    for transport in ("http", "inprocess"):
        overhead = fixture_overhead(n, transport)
        verdict = "ok" if overhead < 2 else "OVER the 2 ms target"
        print(f"kontext_mock fixture overhead per test ({transport}), median: "
              f"{overhead:.3f} ms  [{verdict}]")
    wall, cpu = empty_suite_time(n)
    print(f"pytest, {n} trivial tests: wall {wall:.2f} s, cpu {cpu:.2f} s (the floor)")
    for transport in ("http", "inprocess"):
        wall, cpu = suite_time(n, transport)
        verdict = "ok" if wall < 5 else "OVER the 5 s target (is the machine busy? see cpu)"
        print(f"pytest, {n} tests using kontext_mock with one request ({transport}): "
              f"wall {wall:.2f} s, cpu {cpu:.2f} s  [{verdict}]")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
