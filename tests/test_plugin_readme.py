"""Every example in ``fixtures/README.md`` runs, as the reader would run it, over both
transports; so does the first plugin test of the top-level ``README.md``.

Python blocks are test modules (a block starting ``# conftest.py`` is the conftest of
the next one); the ini block, the command line and the error text are checked against a
real run.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "fixtures" / "README.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
TRANSPORTS = ["--kontext-transport=http", "--kontext-transport=inprocess"]


def blocks(language: str, text: str | None = None) -> list[str]:
    """The README's fenced blocks in one language, in order."""
    text = README.read_text() if text is None else text
    return [body for lang, body in _BLOCK.findall(text) if lang == language]


def examples() -> list[pytest.param]:
    """Each python test block, with the conftest block just before it (if any)."""
    found, conftest = [], None
    for n, body in enumerate(blocks("python")):
        if body.startswith("# conftest.py"):
            conftest = body
            continue
        name = re.search(r"def (test_\w+)", body)
        found.append(pytest.param(body, conftest, id=name.group(1) if name else f"block{n}"))
        conftest = None
    return found


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("source", "conftest"), examples())
def test_the_example_passes(pytester: pytest.Pytester, source: str,
                            conftest: str | None, transport: str) -> None:
    if conftest:
        pytester.makeconftest(conftest)
    pytester.makepyfile(test_example=source)

    result = pytester.runpytest("-p", "no:cacheprovider", transport)

    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1, result.stdout.str()
    assert set(outcomes) == {"passed"}, result.stdout.str()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_top_readmes_first_plugin_test_passes(pytester: pytest.Pytester,
                                                  transport: str) -> None:
    text = (ROOT / "README.md").read_text()
    first = blocks("python", text[text.index("## The pytest plugin"):])[0]
    assert "def test_lists_the_connected_sessions(kontext_mock)" in first
    pytester.makepyfile(test_example=first)

    pytester.runpytest("-p", "no:cacheprovider", transport).assert_outcomes(passed=1)


CHECK_DEFAULTS = """
import datetime as dt

def test_defaults(kontext_mock):
    assert kontext_mock.config.seed == 7
    assert kontext_mock.transport == "inprocess"
"""


def test_the_ini_example_sets_the_defaults(pytester: pytest.Pytester) -> None:
    (ini,) = blocks("ini")
    pytester.makeini(ini)
    pytester.makepyfile(test_it=CHECK_DEFAULTS + (
        "    assert kontext_mock.idle_after == dt.timedelta(minutes=2)\n"))

    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_command_line_example_sets_the_defaults(pytester: pytest.Pytester) -> None:
    command = next(line for block in blocks("sh") for line in block.splitlines()
                   if line.startswith("pytest "))
    pytester.makepyfile(test_it=CHECK_DEFAULTS + (
        "    assert kontext_mock.now() == dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)\n"))

    result = pytester.runpytest("-p", "no:cacheprovider", *shlex.split(command)[1:])

    result.assert_outcomes(passed=1)


def test_the_error_shown_is_the_error_a_wrong_marker_gives(pytester: pytest.Pytester) -> None:
    (text,) = blocks("text")
    shown = text.splitlines()[-1]
    pytester.makepyfile(test_it="""
import pytest

pytestmark = pytest.mark.slow  # every guide example run as a pytest session of its own, both transports

@pytest.mark.kontext(idle_after="soon")
def test_x(kontext_mock):
    pass
""")

    result = pytester.runpytest("-p", "no:cacheprovider")

    assert shown in result.stdout.lines
