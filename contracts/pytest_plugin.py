"""The pytest plugin of the contract kit (entry point ``kontext-contract``): its options.

``pytest --pyargs contracts --kontext-base-url URL --kontext-token T`` runs the kit once
and reports one test per rule (``test_rule[limit-respected]``, ...), so ``--junitxml``
and the rest of pytest apply. Environment variables (``KONTEXT_BASE_URL``, ...) stand
in for the options, as for ``kontext-contract``. Importing this module costs nothing:
the kit is imported only when ``contracts/test_contract.py`` runs.
"""

from __future__ import annotations

import pytest

# option -> (environment variable, help)
OPTIONS = {
    "base-url": ("KONTEXT_BASE_URL", "the implementation to check (origin, no /api/v1)"),
    "token": ("KONTEXT_TOKEN", "a bearer token"),
    "client-id": ("KONTEXT_CLIENT_ID", "OAuth client id (instead of --kontext-token)"),
    "client-secret": ("KONTEXT_CLIENT_SECRET", "OAuth client secret"),
    "application-id": ("KONTEXT_APPLICATION_ID", "an application with sessions to read"),
    "contract-max-examples": ("KONTEXT_CONTRACT_MAX_EXAMPLES", "examples per property (25)"),
    "contract-seed": ("KONTEXT_CONTRACT_SEED", "seed of every random choice"),
    "contract-rate-limit": ("KONTEXT_CONTRACT_RATE_LIMIT", "at most N/min requests"),
    "contract-layers": ("KONTEXT_CONTRACT_LAYERS",
                        "comma-separated layers to run (default schema,semantic,stateful)"),
    "contract-destructive": ("KONTEXT_CONTRACT_DESTRUCTIVE",
                             "true: may change state (the stateful layer runs); false: "
                             "read-only (default: destructive against a kontext-mock, its "
                             "state put back afterwards; read-only against anything else)"),
    "contract-assumptions": ("KONTEXT_CONTRACT_ASSUMPTIONS",
                             "enforce or report (default: enforce against a mock, else report)"),
    "contract-budget": ("KONTEXT_CONTRACT_BUDGET",
                        "requests for the whole run (default: 240 against anything but a "
                        "mock; 0: no budget)"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kontext-contract", "kontext-contract: check an implementation")
    for name, (_env, help_text) in OPTIONS.items():
        group.addoption(f"--kontext-{name}", dest=f"kontext_{name.replace('-', '_')}",
                        default=None, metavar="VALUE", help=help_text)
