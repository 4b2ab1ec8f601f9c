"""The mock's control plane (``/_mock``, see ``mock_server/control.yaml``), where the target has one.

A real implementation has none: the kit detects it (``GET /_mock/clock`` answers 200
with a clock) and uses it only to set up data, move the clock and put the state back.
The client is the mock's own (:class:`kontext_mock.clients.control.ControlClient`); only its errors
are the kit's. Its requests are not the target's API: they spend neither the request
budget nor the rate limit (``ApiClient`` counts those).
"""

from __future__ import annotations

from kontext_mock.clients.control import ControlClient, ControlError
from kontext_mock.contracts.errors import ContractError, TargetUnavailableError

__all__ = ["ControlPlane"]


class ControlPlane(ControlClient):
    """A client of the mock's control plane whose failures are the kit's errors: a refusal
    is a :class:`ContractError`, an unreachable plane a :class:`TargetUnavailableError`."""

    def refusal(self, error: ControlError, method: str, path: str) -> Exception:
        """The kit's error for a control request that failed."""
        if error.status is None:
            return TargetUnavailableError(f"{error} (the control plane, {method} /_mock{path})")
        return ContractError(f"the control plane refused {method} /_mock{path}:"
                             f" {error.status} {error}")
