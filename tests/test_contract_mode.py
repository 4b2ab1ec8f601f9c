"""The kit's mode is said one way everywhere: destructive against a kontext-mock (its state
put back afterwards), read-only against anything else unless ``--destructive``; the help,
both READMEs and every run's first line say so."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from kontext_mock import KontextMock, MockConfig
from kontext_mock.contracts import Options, Target, run_contract
from kontext_mock.contracts.cli import build_parser
from kontext_mock.contracts.options import MODE
from kontext_mock.http.serve import start

from .serving import without_control_plane

pytestmark = pytest.mark.slow  # whole kit runs

ROOT = Path(__file__).resolve().parent.parent
DEV_APP = MockConfig().dev_application_id


def prose(text: str) -> str:
    """Text as read: one space between words, no Markdown code marks."""
    return re.sub(r"\s+", " ", text.replace("`", ""))




@pytest.mark.parametrize("readme", ["README.md", "contracts/README.md"])
def test_each_readme_says_the_mode_once_the_one_way(readme: str) -> None:
    text = prose((ROOT / readme).read_text(encoding="utf-8"))
    if readme == "README.md":
        text = text[text.index("## Contract-testing an implementation"):]
        text = text[:text.index("## ", 3)]
    assert text.count(MODE) == 1, readme
    assert "read-only by default" not in text.lower()
    # said first: no sentence of the kit's README speaks of the mode before it (its bold
    # lead-in aside)
    before = re.sub(r"\*\*[^*]*\*\*", "", text[:text.index(MODE)]).lower()
    assert "destructive" not in before and "read-only" not in before, before


def test_the_help_says_the_mode_first() -> None:
    text = prose(build_parser().format_help())
    description = text[text.index("] ", text.rindex("[--list-assumptions]")) + 2:]
    assert description.startswith(MODE), description[:200]
    assert "read-only by default" not in text.lower()


def test_every_run_says_its_mode_on_its_first_line() -> None:
    mock = KontextMock(seed=7)
    servers = {"mock": start(mock.app, "127.0.0.1", 0),
               "other": start(without_control_plane(mock.app), "127.0.0.1", 0)}
    quick = {"layers": ("semantic",), "max_examples": 1, "seed": 1}
    lines: dict[str, list[str]] = {}

    def run(name: str, **options: Any) -> str:
        said = lines.setdefault(name, [])
        report = run_contract(Target(servers[name.split("-")[0]].url, token="dev-token",
                                     application_id=DEV_APP),
                              Options(progress=said.append, **quick, **options))
        assert report.ok, report.render()
        first = report.render().splitlines()[0]
        assert said[0] == first  # the progress starts with the same line
        return first

    try:
        mock_default = run("mock")
        mock_read_only = run("mock-ro", destructive=False)
        other_default = run("other")
        other_destructive = run("other-d", destructive=True)
    finally:
        for server in servers.values():
            server.stop()
    assert mock_default.startswith(f"kontext-contract {servers['mock'].url}: destructive: a "
                                   "kontext-mock (its control plane answered)")
    assert "puts its state back afterwards" in mock_default
    assert "read-only (--read-only)" in mock_read_only
    assert "read-only: not a kontext-mock (no control plane)" in other_default
    assert "destructive (--destructive)" in other_destructive
    assert "nothing is put back" in other_destructive
