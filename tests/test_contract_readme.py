"""The contract kit's README section runs: its Python example, its CI workflow's command
line, and every rule name it mentions."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from kontext_mock import KontextMock
from kontext_mock.contracts import RULES
from kontext_mock.contracts.assumptions import read_assumptions
from kontext_mock.contracts.cli import build_parser
from kontext_mock.http.serve import start

ROOT = Path(__file__).resolve().parent.parent
HEADING = "### Contract-testing your implementation in CI"


def section() -> str:
    """The kit's README section, wherever it lives (contracts/README.md, or merged)."""
    for path in (ROOT / "contracts" / "README.md", ROOT / "README.md"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if HEADING in text:
                start_at = text.rfind("## The contract kit", 0, text.index(HEADING))
                return text[max(0, start_at):]
    raise AssertionError(f"no README has the section {HEADING!r}")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), flags=re.DOTALL)


def test_the_ci_workflow_is_valid_and_its_command_line_parses() -> None:
    [workflow_text] = blocks("yaml")
    workflow: dict[str, Any] = yaml.safe_load(workflow_text)
    steps = workflow["jobs"]["contract"]["steps"]
    [check] = [s for s in steps if "kontext-contract" in str(s.get("run", ""))]
    command = re.sub(r"\$\{\{[^}]*\}\}", "7", check["run"])
    argv = shlex.split(command)
    assert argv[0] == "kontext-contract"
    args = build_parser().parse_args(argv[1:])
    assert args.junit == "reports/kontext-contract.xml" and args.destructive
    assert set(check["env"]) >= {"KONTEXT_BASE_URL", "KONTEXT_CLIENT_ID", "KONTEXT_CLIENT_SECRET"}
    kept = [s for s in steps if "upload-artifact" in str(s.get("uses", ""))]
    assert kept and kept[0]["with"]["path"] == args.junit
    assert kept[0]["if"] == "${{ !cancelled() }}"  # the report is kept when the check fails


def test_the_python_example_runs_against_a_mock() -> None:
    [example] = blocks("python")
    server = start(KontextMock(seed=7).app, "127.0.0.1", 0)
    try:
        code = example.replace("http://127.0.0.1:8080", server.url)
        code = code.replace("max_examples=10", "max_examples=3, layers=('semantic',)")
        exec(compile(code, "README example", "exec"), {})  # noqa: S102 - our own docs
    finally:
        server.stop()


def test_every_rule_and_assumption_the_section_names_exists() -> None:
    named = set(re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+)`", section()))
    rule_like = {n for n in named if n.split("-")[0] in {
        "schema", "limit", "filter", "list", "get", "derived", "disconnected", "timestamps",
        "agent", "unknown", "foreign", "invalid", "auth", "x", "revoke", "lifecycle", "idle",
        "error", "include", "heartbeat", "malformed", "session", "openapi", "mcp"}}
    assert len(rule_like) > 15
    assumptions = read_assumptions(yaml.safe_load((ROOT / "openapi.yaml").read_text()))
    known = set(RULES) | set(assumptions) | {"x-assumption"}
    assert rule_like <= known, sorted(rule_like - known)
