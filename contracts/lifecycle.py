"""Placeholder: the lifecycle state machine (needs the mock's control plane)."""

from __future__ import annotations

from .context import Outcome, RunContext


def run_lifecycle_model(ctx: RunContext) -> Outcome:
    return Outcome.skipped("not implemented yet")
