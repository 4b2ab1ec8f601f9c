"""Rules are registered once, beside their checks: every catalogued rule has a check, and
a run against the mock gives every one of them a verdict."""

from __future__ import annotations

import pytest
import schemathesis.specs.openapi.checks  # noqa: F401 - registers the OpenAPI checks
from schemathesis.checks import CHECKS

from kontext_mock import contracts
from kontext_mock.contracts.rules import KINDS, LAYERS, Rule, add, catalog, register
from kontext_mock.contracts.schema_checks import OFF


def test_every_catalogued_rule_has_a_check() -> None:
    rules = catalog()
    assert len(rules) > 35
    known = set(CHECKS.get_all_names())
    for r in rules.values():
        assert r.layer in LAYERS and r.kind in KINDS, r
        if r.kind == "schemathesis":
            assert r.check in known, f"{r.name}: schemathesis has no check {r.check!r}"
        else:
            assert callable(r.check), f"{r.name} has no check"


def test_a_rule_name_is_registered_once() -> None:
    name = next(iter(catalog()))
    with pytest.raises(ValueError, match="registered twice"):
        add(Rule(name, "semantic", "again"))

    with pytest.raises(ValueError, match="unknown layer"):
        register("made-up", "nowhere", "a rule of no layer")


def test_the_package_s_rules_are_the_catalog() -> None:
    assert catalog() == contracts.RULES
    assert not set(OFF) & {r.check for r in catalog().values()}
