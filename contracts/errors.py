"""Errors that stop a run before a verdict: the CLI turns them into a message and exit 2.

They are the HTTP clients' (:mod:`kontext_mock.clients.errors`), under the kit's names:
``ContractError`` is a usage, credential or connection problem, so no verdict on the
contract is possible.
"""

from __future__ import annotations

from kontext_mock.clients.errors import ClientError as ContractError
from kontext_mock.clients.errors import ReadOnlyError, TargetUnavailableError

__all__ = ["ContractError", "ReadOnlyError", "TargetUnavailableError"]
