"""The kit's MCP rule (``mcp-gateway-session``): it holds against the mock, and it catches
a gateway whose revoke-all leaves the gateway tokens working."""

from __future__ import annotations

from kontext_mock import KontextMock
from kontext_mock.contracts import Options, Report, Target, run_contract
from kontext_mock.contracts.mcp_checks import RULE
from kontext_mock.http.serve import start

from .conftest import DEV_APP


def run(mock: KontextMock) -> Report:
    server = start(mock.app, "127.0.0.1", 0)
    try:
        return run_contract(Target(server.url, token="dev-token", application_id=DEV_APP),
                            Options(seed=3, max_examples=2, destructive=True,
                                    layers=("stateful",), state_machine_steps=1))
    finally:
        server.stop()


def test_the_mcp_rule_holds_against_the_mock() -> None:
    report = run(KontextMock(seed=7))
    result = report.result(RULE)
    assert result.status == "passed", report.render()


def test_the_mcp_rule_catches_tokens_that_outlive_revoke_all() -> None:
    mock = KontextMock(seed=7)
    mock.state.gateway.grants.revoke_client = lambda client_id: 0  # type: ignore[method-assign]
    report = run(mock)
    assert RULE in report.failed_rules()
    violations = report.result(RULE).violations
    assert {v.assumption for v in violations} == {"mcp-revoke-ends-tokens"}
