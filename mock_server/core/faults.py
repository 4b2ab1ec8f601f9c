"""Fault injection: rules that delay, fail or drop public API requests.

A rule matches requests by method and path pattern and does one or more of: wait
(a fixed latency or one drawn from a range), answer an error status with the API's
documented error body, or drop the connection without an answer. It applies to the
next N matching requests (``times``), or to a share of them (``probability``), drawn
from the rule's own seeded generator so a run can be replayed.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Any, NamedTuple

from kontext_mock.core.errors import ApiError, OAuthError, ValidationError

__all__ = [
    "ConnectionDroppedError",
    "Decision",
    "FaultRule",
    "Faults",
    "fault_error",
]

Latency = float | tuple[float, float] | None

# The error code the API uses for each status an injected fault may answer.
_CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "insufficient_scope",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class ConnectionDroppedError(ConnectionAbortedError):
    """A fault rule dropped the connection; in-process callers see this exception."""


class Decision(NamedTuple):
    """What a matching rule does to one request."""

    fault_id: str
    delay: float
    status: int | None
    drop: bool


@dataclass(slots=True)
class FaultRule:
    """One rule. ``remaining`` None means no count limit."""

    id: str
    method: str
    path: str
    latency: Latency
    status: int | None
    drop: bool
    remaining: int | None
    probability: float | None
    seed: int
    hits: int = 0
    matched: int = 0
    draws: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(translate(self.path))
        self._rng = random.Random(self.seed)
        for _ in range(self.draws):  # replay, so an imported rule continues the same sequence
            self._rng.random()

    def matches(self, method: str, path: str) -> bool:
        """True when this rule is for this request."""
        return (self.method == "*" or self.method == method) and (
            self.path == path or self._pattern.match(path) is not None
        )

    def _draw(self) -> float:
        self.draws += 1
        return self._rng.random()

    def decide(self) -> Decision | None:
        """Count a matching request; what to do to it, or None when the probability says no."""
        self.matched += 1
        if self.probability is not None and self._draw() >= self.probability:
            return None
        self.hits += 1
        if self.remaining is not None:
            self.remaining -= 1
        if isinstance(self.latency, tuple):
            low, high = self.latency
            delay = low + (high - low) * self._draw()
        else:
            delay = self.latency or 0.0
        return Decision(self.id, delay, self.status, self.drop)

    @property
    def spent(self) -> bool:
        """True once it applied ``times`` times."""
        return self.remaining is not None and self.remaining <= 0

    def to_dict(self) -> dict[str, Any]:
        """The rule as JSON-ready data (what the control plane lists and exports)."""
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "latency": list(self.latency) if isinstance(self.latency, tuple) else self.latency,
            "status": self.status,
            "drop": self.drop,
            "remaining": self.remaining,
            "probability": self.probability,
            "seed": self.seed,
            "hits": self.hits,
            "matched": self.matched,
            "draws": self.draws,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """Read back :meth:`to_dict`."""
        latency = data.get("latency")
        status, remaining = data.get("status"), data.get("remaining")
        return cls(
            id=data["id"],
            method=data["method"],
            path=data["path"],
            latency=tuple(latency) if isinstance(latency, list) else latency,
            status=None if status is None else int(status),
            drop=bool(data.get("drop", False)),
            remaining=None if remaining is None else int(remaining),
            probability=data.get("probability"),
            seed=int(data.get("seed", 0)),
            hits=int(data.get("hits", 0)),
            matched=int(data.get("matched", 0)),
            draws=int(data.get("draws", 0)),
        )


class Faults:
    """The rules in force, matched in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: the rules; empty means the request path pays one truth test
        self.rules: list[FaultRule] = []
        self._made = 0

    def add(
        self,
        method: str = "*",
        path: str = "/api/v1/*",
        *,
        latency: Latency | list[float] = None,
        status: int | None = None,
        drop: bool = False,
        times: int | None = None,
        probability: float | None = None,
        seed: int = 0,
    ) -> FaultRule:
        """Add a rule (see the module's docstring); ValueError when it does nothing or is out of range."""
        latency = _latency(latency)
        if latency is None and status is None and not drop:
            raise ValueError("a fault needs an effect: latency, status or drop")
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"status must be an error status (400-599), not {status}")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        if probability is not None and not 0 < probability <= 1:
            raise ValueError(f"probability must be in (0, 1], not {probability}")
        if not path.startswith(("/", "*")):
            raise ValueError(f"path must be a path pattern starting with / or *: {path!r}")
        with self._lock:
            self._made += 1
            rule = FaultRule(
                id=f"fault-{self._made}", method=method.upper(), path=path, latency=latency,
                status=status, drop=drop, remaining=times, probability=probability, seed=seed,
            )
            self.rules = [*self.rules, rule]
            return rule

    def decide(self, method: str, path: str) -> Decision | None:
        """What the first matching rule does to this request (None: let it through)."""
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    decision = rule.decide()
                    if rule.spent:
                        self.rules = [r for r in self.rules if r is not rule]
                    if decision is not None:
                        return decision
            return None

    def remove(self, fault_id: str) -> bool:
        """Remove one rule; False when there is none with this id."""
        with self._lock:
            kept = [r for r in self.rules if r.id != fault_id]
            found = len(kept) != len(self.rules)
            self.rules = kept
            return found

    def clear(self) -> int:
        """Remove every rule; how many there were."""
        with self._lock:
            count = len(self.rules)
            self.rules = []
            return count

    @property
    def made(self) -> int:
        """How many rules were ever added (the next id's number minus one)."""
        return self._made

    def export(self) -> list[dict[str, Any]]:
        """Every rule as data."""
        with self._lock:
            return [r.to_dict() for r in self.rules]

    def replace(self, rules: list[dict[str, Any]], made: int | None = None) -> None:
        """Replace every rule (import, restore)."""
        loaded = [FaultRule.from_dict(r) for r in rules]
        numbers = [int(r.id.rpartition("-")[2]) for r in loaded if r.id.rpartition("-")[2].isdigit()]
        with self._lock:
            self.rules = loaded
            self._made = max([made or 0, *numbers])


def _latency(value: Latency | list[float]) -> Latency:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError("a latency range is [low, high]")
        low, high = float(value[0]), float(value[1])
        if not 0 <= low <= high <= 60:
            raise ValueError(f"a latency range needs 0 <= low <= high <= 60, not [{low}, {high}]")
        return (low, high)
    seconds = float(value)
    if not 0 <= seconds <= 60:
        raise ValueError(f"latency must be 0 to 60 seconds, not {seconds}")
    return seconds


def fault_error(status: int, fault_id: str, endpoint: str | None) -> ApiError:
    """The documented error answer for an injected status (RFC 6749's on the token endpoint)."""
    message = f"injected by the mock's fault rule {fault_id}"
    if endpoint == "issueToken" and status in (400, 401):
        return OAuthError(status, "invalid_request" if status == 400 else "invalid_client", message)
    if status == 400:
        return ValidationError([{"location": "body", "field": None, "message": message}])
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="kontext", error="invalid_token"'
    elif status == 403:
        extra["missingScopes"] = ["management:all"]
    elif status == 429:
        headers["Retry-After"] = "1"
    code = _CODES.get(status, f"http_{status}")
    return ApiError(status, code, message, headers=headers, **extra)
