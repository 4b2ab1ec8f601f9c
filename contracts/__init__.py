"""kontext-contract: check any implementation of the Kontext sessions API against its contract.

>>> from kontext_mock.contracts import Options, Target, run_contract
>>> report = run_contract(Target("http://127.0.0.1:8080", token="dev-token"))  # doctest: +SKIP
>>> report.ok, report.failed_rules()  # doctest: +SKIP

Three layers: schema conformance (schemathesis), semantic properties (hypothesis,
read-only) and stateful properties (``destructive``: revoke-all, and with a mock's
control plane a model-based state machine), and opt-in (``Options(mcp=True)``) a fourth,
``mcp``: an MCP client at the target's gateway. Every rule has a stable name (see
:data:`RULES`) used in the output and in JUnit. Rules the vendor does not document are
assumptions with stable ids (``openapi.yaml``'s ``x-assumption``): enforced against a
mock, reported as drift against anything else.
"""

from kontext_mock.contracts.errors import ContractError, TargetUnavailableError
from kontext_mock.contracts.junit import to_junit, write_junit
from kontext_mock.contracts.options import Options, Target
from kontext_mock.contracts.report import AssumptionVerdict, Report, RuleResult, Violation
from kontext_mock.contracts.rules import LAYERS, Rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kontext_mock.contracts.rules import RULES
    from kontext_mock.contracts.runner import run_contract

__all__ = [
    "LAYERS",
    "RULES",
    "AssumptionVerdict",
    "ContractError",
    "Options",
    "Report",
    "Rule",
    "RuleResult",
    "Target",
    "TargetUnavailableError",
    "Violation",
    "run_contract",
    "to_junit",
    "write_junit",
]


def __getattr__(name: str) -> object:
    # The runner pulls in schemathesis and hypothesis, and the catalog of rules the check
    # modules; importing the package (as the pytest plugin does in every pytest run) must
    # not pay for them.
    if name == "run_contract":
        from kontext_mock.contracts.runner import run_contract

        return run_contract
    if name == "RULES":
        from kontext_mock.contracts.rules import catalog

        return catalog()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
