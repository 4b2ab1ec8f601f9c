"""Running one property with hypothesis and keeping the first counterexample as a violation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, example, given, settings
from hypothesis import strategies as st

from kontext_mock.contracts.errors import ContractError
from kontext_mock.contracts.report import Violation

__all__ = ["falsify"]

T = TypeVar("T")


class _FalsifiedError(Exception):
    """Stops hypothesis at the first counterexample (requests cost the target's rate limit)."""


def falsify(
    strategy: st.SearchStrategy[T],
    check: Callable[[T], Violation | None],
    *,
    max_examples: int,
    seed: int,
    examples: Sequence[T] = (),
) -> tuple[Violation | None, int]:
    """Try ``check`` on the explicit ``examples`` and then on up to ``max_examples`` values
    drawn from ``strategy``; the first violation (or None) and how many values were tried.

    No shrinking: each try is a request to the target, and the first counterexample is
    already a concrete request a person can repeat.
    """
    found: list[Violation] = []
    tried = 0

    def prop(value: Any) -> None:
        nonlocal tried
        tried += 1
        violation = check(value)
        if violation is not None:
            found.append(violation)
            raise _FalsifiedError

    test: Any = given(strategy)(prop)
    for value in reversed(examples):
        test = example(value)(test)
    test = settings(
        max_examples=max(1, max_examples),
        database=None,
        deadline=None,
        derandomize=False,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        print_blob=False,
    )(test)
    test = hypothesis.seed(seed)(test)
    try:
        test()
    except _FalsifiedError:
        pass
    except ContractError:
        raise
    except Exception as exc:  # hypothesis wraps a counterexample that did not repeat
        inner = _contract_error_in(exc)
        if inner is not None:
            raise inner from None
        if not found:
            raise
    return (found[0] if found else None), tried


def _contract_error_in(exc: BaseException, depth: int = 0) -> ContractError | None:
    if isinstance(exc, ContractError):
        return exc
    if depth > 8:
        return None
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _contract_error_in(inner, depth + 1)
            if found is not None:
                return found
    cause = exc.__cause__ or exc.__context__
    return _contract_error_in(cause, depth + 1) if cause is not None else None
