"""The contract kit as a pytest suite: one test per rule.

Its command-line options (``--kontext-base-url`` and the rest) are added by the kit's
pytest plugin, ``contracts/pytest_plugin.py`` (entry point ``kontext-contract``). A rule
whose documented part holds but which contradicts an assumption (``drift``, in report
mode) passes; the drift is in the kit's own output and drift report.
"""

from __future__ import annotations

import os

import pytest

from kontext_mock.contracts import LAYERS, Options, Report, Target, run_contract
from kontext_mock.contracts.errors import ContractError
from kontext_mock.contracts.pytest_plugin import OPTIONS
from kontext_mock.contracts.rules import catalog


def _option(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"kontext_{name.replace('-', '_')}", default=None)
    return value if value is not None else os.environ.get(OPTIONS[name][0])


@pytest.fixture(scope="session")
def contract_report(pytestconfig: pytest.Config) -> Report:
    """One run of the kit for the whole session."""
    base_url = _option(pytestconfig, "base-url")
    if not base_url:
        pytest.skip("give --kontext-base-url (or KONTEXT_BASE_URL) to check an implementation")
    destructive = _option(pytestconfig, "contract-destructive")
    seed = _option(pytestconfig, "contract-seed")
    layers = _option(pytestconfig, "contract-layers")
    budget = _option(pytestconfig, "contract-budget")
    target = Target(base_url=base_url, token=_option(pytestconfig, "token"),
                    client_id=_option(pytestconfig, "client-id"),
                    client_secret=_option(pytestconfig, "client-secret"),
                    application_id=_option(pytestconfig, "application-id"))
    options = Options(
        max_examples=int(_option(pytestconfig, "contract-max-examples") or 25),
        seed=int(seed) if seed else None,
        rate_limit=_option(pytestconfig, "contract-rate-limit"),
        destructive=None if destructive is None else destructive.lower() in ("1", "true", "yes"),
        layers=tuple(x.strip() for x in layers.split(",")) if layers else LAYERS,
        budget=int(budget) if budget else None,
        assumptions=_option(pytestconfig, "contract-assumptions"),
    )
    try:
        return run_contract(target, options)
    except ContractError as exc:
        pytest.fail(f"kontext-contract: {exc}", pytrace=False)


# (the mcp layer is opt-in: kontext-contract --mcp)
@pytest.mark.parametrize("rule", [n for n, r in catalog().items() if r.layer != "mcp"])
def test_rule(contract_report: Report, rule: str) -> None:
    result = contract_report.result(rule)
    if result.status == "skipped":
        pytest.skip(result.detail)
    if result.status == "failed":
        text = "\n\n".join(v.render("") for v in result.violations)
        pytest.fail(f"{rule}: {result.rule.summary}\n\n{text}", pytrace=False)
