"""Assumptions are data: every inferred rule of openapi.yaml has a stable id, each id is
checked by something (or says why nothing can see it), and the kit cites each once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kontext_mock.contracts.assumptions import (
    KIT_ASSUMPTIONS,
    documented_view,
    marked_nodes,
    read_assumptions,
    view_with,
)
from kontext_mock.contracts.cli import main
from kontext_mock.contracts.drift import checked_by
from kontext_mock.contracts.rules import catalog, rule
from kontext_mock.contracts.schema_views import reached, response_schemas

SPEC = yaml.safe_load((Path(__file__).resolve().parent.parent / "openapi.yaml").read_text())
LIST = "/api/v1/applications/{applicationId}/sessions"


def unmarked_assumptions(document: dict[str, Any]) -> list[str]:
    """Where a description says **Assumption** but no x-assumption on the same node gives
    the rule an id. The document's own introduction, which explains the convention, is
    not a rule."""
    found = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            text = node.get("description")
            marked = "x-assumption" in node
            if isinstance(text, str) and "**Assumption**" in text and not marked:
                found.append(where)
            for key, value in node.items():
                if where or key != "info":
                    walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(document, "")
    return found


def test_a_description_that_says_assumption_without_an_id_is_found() -> None:
    broken = {"paths": {"/x": {"get": {"description": "Lists. (**Assumption**: newest first.)"}}}}
    assert unmarked_assumptions(broken) == ["/paths//x/get"]
    broken["paths"]["/x"]["get"]["x-assumption"] = {"id": "x-order", "assumes": "newest first"}
    assert unmarked_assumptions(broken) == []


def test_every_description_that_says_assumption_carries_an_id() -> None:
    assert unmarked_assumptions(SPEC) == []


def test_every_assumption_entry_has_an_id_and_each_id_says_what_it_assumes() -> None:
    for where, entry in marked_nodes(SPEC):
        assert entry.get("id"), where
    for assumption in read_assumptions(SPEC).values():
        assert len(assumption.assumes) > 20, assumption.id


def test_every_assumption_is_checked_by_something_or_says_why_nothing_can() -> None:
    assumptions = read_assumptions(SPEC)
    checkers = checked_by(assumptions.values(), catalog().values())
    unchecked = [aid for aid, a in assumptions.items()
                 if not checkers[aid] and not a.unobservable]
    assert unchecked == []
    # and what cannot be observed is not claimed to be checked
    assert [aid for aid, a in assumptions.items() if a.unobservable and checkers[aid]] == []


def test_the_kit_cites_exactly_the_observable_ids_of_the_spec_each_once() -> None:
    assumptions = read_assumptions(SPEC)
    observable = {aid for aid, a in assumptions.items() if not a.unobservable}
    assert len(KIT_ASSUMPTIONS) == len(set(KIT_ASSUMPTIONS))
    assert set(KIT_ASSUMPTIONS) == observable
    cited = {aid for r in catalog().values() for aid in r.assumes}
    assert cited <= set(assumptions)


def test_every_assumed_schema_part_of_an_answer_is_held_by_schema_assumptions() -> None:
    answers = [a.pointer for a in response_schemas(SPEC).values() if a.pointer]
    reachable = {p for pointer in answers for p in reached(SPEC, pointer)}
    in_answers = {a.id for a in read_assumptions(SPEC).values()
                  if any(p.pointer in reachable for p in a.constrained)}
    assert in_answers == {"error-body-shape", "agent-session-state-shape",
                          "heartbeat-signals-ended"}
    assert in_answers == set(rule("schema-assumptions").assumes)


def test_the_documented_view_drops_the_assumed_keywords_and_nothing_else() -> None:
    documented = documented_view(SPEC)
    error = documented["components"]["schemas"]["Error"]
    assert "required" not in error and "properties" not in error and error["type"] == "object"
    # the limit's range is an assumption: its parameter is left to limit-respected
    names = [p.get("name") for p in documented["paths"][LIST]["get"]["parameters"]]
    assert names == ["status", "includeInactive"]
    assert documented["components"]["schemas"]["Session"] == SPEC["components"]["schemas"]["Session"]
    with_errors = view_with(SPEC, "error-body-shape")
    assert with_errors["components"]["schemas"]["Error"]["required"] == ["error", "message"]
    assert "required" not in with_errors["components"]["schemas"]["AgentSessionState"]
    assert SPEC["components"]["schemas"]["Error"]["required"] == ["error", "message"]  # untouched


def test_list_assumptions_prints_each_id_what_it_assumes_and_what_checks_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--list-assumptions"]) == 0
    blocks: dict[str, str] = {}
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith(" "):
            current = line
            blocks[current] = ""
        else:
            blocks[current] += line + "\n"
    assumptions = read_assumptions(SPEC)
    assert list(blocks) == list(assumptions)
    for aid, assumption in assumptions.items():
        assert f"assumes:    {assumption.assumes}" in blocks[aid]
        said = "unobservable:" if assumption.unobservable else "checked by:"
        assert said in blocks[aid], blocks[aid]
    assert "checked by: list-order (semantic)" in blocks["list-order-newest-first"]
    assert "schema-assumptions (schema)" in blocks["error-body-shape"]


def test_no_request_schema_carries_an_assumption_mark() -> None:
    """The mock checks request parameters and bodies with fast checks of plain JSON Schema;
    a keyword it does not know (x-assumption) would send them the slow way."""
    def schemas(op: dict[str, Any]) -> list[Any]:
        found = [p.get("schema") for p in op.get("parameters", [])]
        for media in (op.get("requestBody") or {}).get("content", {}).values():
            found.append(media.get("schema"))
        return found

    marked = []
    for item in SPEC["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "operationId" in op:
                for schema in schemas(op):
                    ref = (schema or {}).get("$ref", "")
                    if ref:
                        schema = SPEC["components"]["schemas"][ref.split("/")[-1]]
                    if "x-assumption" in yaml.safe_dump(schema):
                        marked.append(op["operationId"])
    assert marked == []
