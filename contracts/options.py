"""What to check (``Target``) and how (``Options``): the library's inputs, which the CLI fills."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from kontext_mock.clients.api import API_PREFIX, api_origin
from kontext_mock.contracts.rules import LAYERS

__all__ = ["API_PREFIX", "MODE", "Options", "Target", "api_origin"]

#: how a run decides whether it may change state: said once, the same way, in the help,
#: the READMEs (tests/test_contract_mode.py holds them to it) and each run's header
MODE = ("Against a kontext-mock (the kit detects its control plane) a run is destructive "
        "and puts the mock's state back afterwards; against anything else it is read-only "
        "unless --destructive.")


@dataclass(frozen=True, slots=True)
class Target:
    """An implementation of the sessions API, and how to authenticate to it.

    ``base_url`` is the origin without ``/api/v1`` (as the official client takes it).
    Give ``token``, or ``client_id`` and ``client_secret`` (the kit then fetches a token
    from ``{base_url}/oauth2/token`` and fetches a new one after a 401).
    ``application_id`` names an application with sessions to read; against a mock with a
    control plane the kit can create its own. ``mock_admin_token`` opens a mock's control
    plane when the mock has one (a mock bound off loopback, e.g. a CI service container).
    """

    base_url: str
    token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    application_id: str | None = None
    mock_admin_token: str | None = None
    #: a gateway token for ``--mcp`` (against a mock the kit gets its own)
    mcp_token: str | None = None


@dataclass(frozen=True, slots=True)
class Options:
    """How to run the kit. The defaults are what ``kontext-contract`` uses."""

    #: the contract; None is the packaged openapi.yaml
    spec: str | Path | None = None
    #: examples per property (semantic layer) and per operation (schema layer)
    max_examples: int = 25
    #: seed of every random choice; None picks one (printed, so a run can be repeated)
    seed: int | None = None
    #: True: may change state (the stateful layer runs); False: read-only; None: destructive
    #: against a kontext-mock (its control plane answers), read-only against anything else
    destructive: bool | None = None
    #: e.g. "100/min": the most requests the kit sends (every layer together)
    rate_limit: str | None = None
    #: requests for the whole run, shared by a plan; None: the default (a budget against
    #: anything but a mock, and against a rate-limited mock), 0: no budget
    budget: int | None = None
    #: "enforce": a contradicted assumption fails the run; "report": it is drift, shown
    #: and written to the drift report; None: enforce against a mock, else report
    assumptions: str | None = None
    #: the idle threshold of derivedStatus (an assumption); None: a mock's own (read from
    #: its control plane), else 5 minutes
    idle_after: timedelta | None = None
    #: which layers to run
    layers: tuple[str, ...] = LAYERS
    #: rules not to check (reported as skipped)
    skip: frozenset[str] = frozenset()
    #: ids of sessions of other applications, for ``foreign-session-404``
    foreign_session_ids: tuple[str, ...] = ()
    #: seconds to wait for one answer
    timeout: float = 15.0
    #: steps per run of the lifecycle state machine (with a control plane)
    state_machine_steps: int = 30
    #: after a destructive run against a mock, put its state back (export/import)
    restore: bool = True
    #: run the ``mcp`` layer: an MCP client at the target's gateway (it opens sessions)
    mcp: bool = False
    #: called with progress lines while the run goes on
    progress: Callable[[str], None] | None = field(default=None, compare=False)
