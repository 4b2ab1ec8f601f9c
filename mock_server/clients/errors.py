"""What the API client raises when a request cannot be sent or answered as asked.

The contract kit knows the first two by its own names (``ContractError`` for
:class:`ClientError`), ``kontext-mock record`` turns them into its own.
"""

from __future__ import annotations

__all__ = ["BudgetSpentError", "ClientError", "ReadOnlyError", "TargetUnavailableError"]


class ClientError(Exception):
    """A usage, credential or connection problem: no answer to judge."""


class TargetUnavailableError(ClientError):
    """The target cannot be reached, or stopped answering."""


class ReadOnlyError(RuntimeError):
    """The client was about to send a request that changes state in a read-only run (a bug
    of its caller)."""


class BudgetSpentError(Exception):
    """The run's request budget is spent: the request was not sent."""
