"""Errors that stop a run before a verdict: the CLI turns them into a message and exit 2."""

from __future__ import annotations

__all__ = ["ContractError", "ReadOnlyError", "TargetUnavailableError"]


class ContractError(Exception):
    """A usage, credential or connection problem: no verdict on the contract is possible."""


class TargetUnavailableError(ContractError):
    """The target cannot be reached, or stopped answering."""


class ReadOnlyError(RuntimeError):
    """The kit was about to send a request that changes state in a read-only run (a kit bug)."""
