"""Staying within the target's rate limit: the HTTP clients' pacing
(:mod:`kontext_mock.clients.pacing`), shared by every layer of a run.
"""

from __future__ import annotations

from kontext_mock.clients.pacing import RateLimiter, parse_rate, retry_after_seconds

__all__ = ["RateLimiter", "parse_rate", "retry_after_seconds"]
