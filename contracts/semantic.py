"""Layer 2, semantic properties (read-only): what the schema cannot say.

Every property is tried by hypothesis on explicit edge cases and drawn values; a
counterexample is one concrete request, reported with its answer. A comparison that
fails is fetched again before it counts, so a session changing state between two
requests on a live target is not taken for a bug.
"""

from __future__ import annotations

import itertools
import string
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from .context import BadAnswerError, Outcome, RunContext
from .falsify import falsify
from .http import Exchange, dumps
from .invariants import parse_time
from .report import Violation

__all__ = ["FILTERS", "SEMANTIC_RULES", "SemanticLayer", "effective_filter"]

FILTERS: dict[str, frozenset[str]] = {
    "active": frozenset({"active", "idle"}),
    "inactive": frozenset({"expired", "disconnected"}),
    "all": frozenset({"active", "idle", "expired", "disconnected"}),
}
SEMANTIC_RULES = (
    "limit-respected", "filter-active", "filter-inactive", "filter-all", "filter-default",
    "filter-include-inactive", "list-order", "get-matches-list", "unknown-session-404",
    "foreign-session-404", "invalid-id-400", "auth-required",
)
# Fields that move with time without the session changing: list and read may differ there.
MOVING_FIELDS = frozenset({"derivedStatus", "lastActiveAt"})
# One full example per failing rule (the rest are counted).
_KEEP = 1
_ID_CHARS = string.ascii_letters + string.digits + "-._~"


def effective_filter(params: dict[str, Any]) -> tuple[str, str]:
    """The filter a list query asks for, and the rule that governs it."""
    status = params.get("status")
    if status:
        return str(status), f"filter-{status}"
    if "includeInactive" in params:
        return ("all" if params["includeInactive"] else "active"), "filter-include-inactive"
    return "active", "filter-default"


def _query(params: dict[str, Any]) -> str:
    if not params:
        return "no query parameters"
    return "&".join(
        f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items()
    )


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [str(i.get("id")) for i in items]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


class SemanticLayer:
    """Runs the semantic rules against one application."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.lo, self.hi = ctx.spec.limit_range()
        self.examples = ctx.options.max_examples
        # rules checked on every list the layer fetches (filter membership, order)
        self.along: dict[str, list[Violation]] = defaultdict(list)
        self.along_checks: Counter[str] = Counter()
        self.along_more: Counter[str] = Counter()
        self.counts: dict[str | None, int] = {}
        self.everything: list[dict[str, Any]] = []

    # -- fetching, with the ride-along rules ----------------------------------------------

    def fetch(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], Exchange]:
        """List with ``params``; filter membership and order are checked on the way."""
        items, ex = self.ctx.list_sessions(params)
        wanted, rule = effective_filter(params)
        self.along_checks[rule] += 1
        for item in items:
            derived = item.get("derivedStatus")
            if derived not in FILTERS[wanted]:
                self._along(rule, f"{_query(params)} listed session {item.get('id')} whose "
                            f"derivedStatus is {derived}; the {wanted!r} filter admits only "
                            f"{', '.join(sorted(FILTERS[wanted]))}", ex)
                break
        self.along_checks["list-order"] += 1
        for a, b in itertools.pairwise(items):
            ta, tb = parse_time(a.get("createdAt")), parse_time(b.get("createdAt"))
            if ta is None or tb is None:
                continue
            if tb > ta or (tb == ta and str(b.get("id")) < str(a.get("id"))):
                self._along("list-order", f"{_query(params)}: session {b.get('id')} "
                            f"(createdAt {b.get('createdAt')}) is listed after {a.get('id')} "
                            f"(createdAt {a.get('createdAt')}); expected newest first, ties "
                            "by id ascending", ex)
                break
        return items, ex

    def _along(self, rule: str, message: str, ex: Exchange) -> None:
        if len(self.along[rule]) < _KEEP:
            self.along[rule].append(self.ctx.violation(rule, message, ex))
        else:
            self.along_more[rule] += 1

    # -- the layer -------------------------------------------------------------------------

    def run(self, wanted: Callable[[str], bool]) -> dict[str, Outcome]:
        """Every semantic rule ``wanted`` admits, by name."""
        out: dict[str, Outcome] = {}
        try:
            self._population()
        except BadAnswerError as exc:
            # Without a list there is nothing to judge: every rule fails on that answer.
            for name in SEMANTIC_RULES:
                if wanted(name):
                    out[name] = Outcome.judged([exc.violation(name)], 1, "")
            return out
        steps: list[tuple[str, Callable[[], Outcome]]] = [
            ("limit-respected", self.limit_respected),
            ("filter-all", self.filter_all),
            ("filter-default", self.filter_default),
            ("filter-include-inactive", self.filter_include_inactive),
            ("get-matches-list", self.get_matches_list),
            ("unknown-session-404", self.unknown_session),
            ("foreign-session-404", self.foreign_session),
            ("invalid-id-400", self.invalid_id),
            ("auth-required", self.auth_required),
        ]
        for name, step in steps:
            if not wanted(name):
                continue
            started = time.monotonic()
            try:
                out[name] = step()
            except BadAnswerError as exc:
                out[name] = Outcome.judged([exc.violation(name)], 1, "")
            out[name].duration = time.monotonic() - started
            self.ctx.progress(f"  {name}: {out[name].status} ({out[name].duration:.1f} s)")
        for name in ("filter-active", "filter-inactive", "filter-all", "filter-default",
                     "filter-include-inactive", "list-order"):
            if not wanted(name):
                continue
            base = out.get(name) or Outcome("passed")
            violations = self.along[name] + base.violations
            if self.along_more[name] and violations:
                first = violations[0]
                violations[0] = Violation(first.rule, f"{first.message}\n(and "
                                          f"{self.along_more[name]} more lists like it)",
                                          first.request, first.response)
            checks = self.along_checks[name] + base.checks
            detail = base.detail or f"{checks} lists checked"
            out[name] = Outcome.judged(violations[:_KEEP], checks, detail)
            out[name].duration = base.duration
        return out

    def _population(self) -> None:
        """The reference lists (largest limit) every rule compares with."""
        for status in (None, "all", "active", "inactive"):
            params: dict[str, Any] = {"limit": self.hi}
            if status:
                params["status"] = status
            items, _ = self.fetch(params)
            self.counts[status] = len(items)
            if status == "all":
                self.everything = items

    def _saturated(self, status: str | None) -> bool:
        return self.counts.get(status, 0) >= self.hi

    # -- limit -----------------------------------------------------------------------------

    def limit_respected(self) -> Outcome:
        lo, hi = self.lo, self.hi
        examples: list[tuple[str | None, int]] = []
        for status in (None, "all"):
            n = self.counts[status]
            for k in (lo, lo + 1, n - 1, n, n + 1, hi):
                if lo <= k <= hi and (status, k) not in examples:
                    examples.append((status, k))

        def check(case: tuple[str | None, int]) -> Violation | None:
            status, k = case
            params: dict[str, Any] = {"limit": k}
            if status:
                params["status"] = status
            for attempt in range(2):
                items, ex = self.fetch(params)
                expected = min(k, self.counts[status])
                if len(items) == expected:
                    return None
                if attempt == 0:  # the population may have moved: count again
                    ref: dict[str, Any] = {"limit": hi} | ({"status": status} if status else {})
                    self.counts[status] = len(self.fetch(ref)[0])
            available = self.counts[status]
            more = "at least " if available >= hi else ""
            return self.ctx.violation(
                "limit-respected",
                f"{_query(params)} returned {len(items)} sessions; {more}{available} match "
                f"(limit={hi}), so expected {min(k, available)}", ex)

        strategy = st.tuples(st.sampled_from([None, "all", "active", "inactive"]),
                             st.integers(lo, hi))
        violation, tried = falsify(strategy, check, max_examples=self.examples,
                                   seed=self.ctx.seed, examples=examples)
        return Outcome.judged([violation] if violation else [], tried,
                              f"{tried} limits in {lo}..{hi}")

    # -- filters ---------------------------------------------------------------------------

    def _same_sets(self, rule: str, a: dict[str, Any], b: dict[str, Any]) -> Violation | None:
        """The two queries list the same sessions (fetched twice before it counts)."""
        for _attempt in range(2):
            items_a, ex_a = self.fetch(a)
            items_b, _ = self.fetch(b)
            ids_a, ids_b = _ids(items_a), _ids(items_b)
            if sorted(ids_a) == sorted(ids_b):
                return None
        only_a = sorted(set(ids_a) - set(ids_b))
        only_b = sorted(set(ids_b) - set(ids_a))
        return self.ctx.violation(
            rule, f"{_query(a)} listed {len(ids_a)} sessions, {_query(b)} listed {len(ids_b)}"
            f"; only in the first: {only_a[:3] or 'none'}, only in the second: "
            f"{only_b[:3] or 'none'}", ex_a)

    def filter_default(self) -> Outcome:
        n = max(2, self.examples // 5)

        def check(limit: int | None) -> Violation | None:
            extra = {} if limit is None else {"limit": limit}
            return self._same_sets("filter-default", dict(extra), {"status": "active", **extra})

        examples: list[int | None] = [None, self.hi]
        violation, tried = falsify(st.one_of(st.none(), st.integers(self.lo, self.hi)), check,
                                   max_examples=n, seed=self.ctx.seed, examples=examples)
        return Outcome.judged([violation] if violation else [], tried,
                              f"default equals status=active ({tried} limits)")

    def filter_include_inactive(self) -> Outcome:
        hi: dict[str, Any] = {"limit": self.hi}
        pairs: list[tuple[dict[str, Any], dict[str, Any]]] = [
            ({"includeInactive": True, **hi}, {"status": "all", **hi}),
            ({"includeInactive": False, **hi}, {"status": "active", **hi}),
            ({"status": "active", "includeInactive": True, **hi}, {"status": "active", **hi}),
            ({"status": "inactive", "includeInactive": True, **hi}, {"status": "inactive", **hi}),
            ({"status": "all", "includeInactive": False, **hi}, {"status": "all", **hi}),
        ]
        violations = [v for a, b in pairs
                      if (v := self._same_sets("filter-include-inactive", a, b)) is not None]
        return Outcome.judged(violations[:1], len(pairs),
                              "includeInactive=true equals status=all; explicit status wins")

    def filter_all(self) -> Outcome:
        if any(self._saturated(s) for s in ("all", "active", "inactive")):
            return Outcome("passed", f"membership only: the application has {self.hi} or more "
                           "sessions, more than one list shows")
        for _attempt in range(2):
            everything, ex = self.fetch({"status": "all", "limit": self.hi})
            active = set(_ids(self.fetch({"status": "active", "limit": self.hi})[0]))
            inactive = set(_ids(self.fetch({"status": "inactive", "limit": self.hi})[0]))
            all_ids = set(_ids(everything))
            both = active & inactive
            missing = all_ids - active - inactive
            extra = (active | inactive) - all_ids
            if not (both or missing or extra):
                return Outcome("passed", f"all = active + inactive ({len(all_ids)} sessions)",
                               checks=1)
        parts = []
        if both:
            parts.append(f"in both active and inactive: {sorted(both)[:3]}")
        if missing:
            parts.append(f"in all but neither active nor inactive: {sorted(missing)[:3]}")
        if extra:
            parts.append(f"in active or inactive but not in all: {sorted(extra)[:3]}")
        return Outcome.judged([self.ctx.violation(
            "filter-all", "status=all is not the disjoint union of active and inactive: "
            + "; ".join(parts), ex)], 1, "")

    # -- reads -----------------------------------------------------------------------------

    def get_matches_list(self) -> Outcome:
        if not self.everything:
            return Outcome.skipped("the application has no sessions to read")

        def differences(listed: dict[str, Any], read: dict[str, Any]) -> list[str]:
            keys = (set(listed) | set(read)) - MOVING_FIELDS
            return [f"{k}: list {dumps(listed.get(k))}, read {dumps(read.get(k))}"
                    for k in sorted(keys) if listed.get(k) != read.get(k)]

        def check(listed: dict[str, Any]) -> Violation | None:
            sid = str(listed.get("id"))
            for attempt in range(2):
                read, ex = self.ctx.get_session(sid)
                diff = differences(listed, read)
                if not diff:
                    return None
                if attempt == 0:  # it may have changed since it was listed: list again
                    fresh = {str(i.get("id")): i for i in
                             self.fetch({"status": "all", "limit": self.hi})[0]}
                    listed = fresh.get(sid, listed)
            return self.ctx.violation(
                "get-matches-list", f"session {sid} reads back differently than it is listed: "
                + "; ".join(diff[:4]), ex)

        violation, tried = falsify(st.sampled_from(self.everything), check,
                                   max_examples=self.examples, seed=self.ctx.seed,
                                   examples=self.everything[:1])
        return Outcome.judged([violation] if violation else [], tried,
                              f"{tried} sessions read back by id")

    def _expect_404(self, rule: str, path: str, what: str) -> Violation | None:
        ex = self.ctx.client.get(path, operation="getSession")
        body = ex.json_or_none()
        if ex.status != 404:
            return self.ctx.violation(rule, f"{what} answered {ex.status}, not 404", ex)
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            return self.ctx.violation(rule, f"{what} answered 404 without a JSON error body", ex)
        return None

    def unknown_session(self) -> Outcome:
        known = set(_ids(self.everything))

        def check(value: uuid.UUID) -> Violation | None:
            sid = str(value)
            if sid in known:
                return None
            return self._expect_404("unknown-session-404", f"{self.ctx.sessions_path}/{sid}",
                                    f"unknown session {sid}")

        n = max(3, self.examples // 5)
        violation, tried = falsify(st.uuids(version=4), check, max_examples=n,
                                   seed=self.ctx.seed)
        return Outcome.judged([violation] if violation else [], tried,
                              f"{tried} unknown ids answered 404")

    def foreign_session(self) -> Outcome:
        own = set(_ids(self.everything))
        foreign = [s for s in self.ctx.foreign_session_ids if s not in own]
        if not foreign:
            return Outcome.skipped(
                "not available: no session of another application is known (give "
                "--foreign-session-id, or use a target with a control plane)")
        foreign = foreign[: max(1, self.examples)]

        def check(sid: str) -> Violation | None:
            return self._expect_404(
                "foreign-session-404", f"{self.ctx.sessions_path}/{sid}",
                f"session {sid}, of another application, read under {self.ctx.application_id}")

        violation, tried = falsify(st.sampled_from(foreign), check,
                                   max_examples=len(foreign), seed=self.ctx.seed,
                                   examples=foreign[:1])
        return Outcome.judged([violation] if violation else [], tried,
                              f"{tried} sessions of other applications answered 404")

    def invalid_id(self) -> Outcome:
        real = self.everything[0]["id"] if self.everything else str(uuid.uuid4())

        def check(case: tuple[str, str]) -> Violation | None:
            where, bad = case
            if where == "session":
                path = f"{self.ctx.sessions_path}/{bad}"
                op = "getSession"
            elif where == "application":
                path = f"/api/v1/applications/{bad}/sessions/{real}"
                op = "getSession"
            else:
                path = f"/api/v1/applications/{bad}/sessions"
                op = "listSessions"
            ex = self.ctx.client.get(path, operation=op)
            body = ex.json_or_none()
            what = f"a non-UUID {'session' if where == 'session' else 'application'} id {bad!r}"
            if ex.status == 400 and isinstance(body, dict) and isinstance(body.get("error"), str):
                return None
            if ex.status >= 500:
                problem = f"{what} answered {ex.status}, a server error"
            elif ex.status != 400:
                problem = f"{what} answered {ex.status}; the contract documents 400 validation_error"
            else:
                problem = f"{what} answered 400 without a JSON error body"
            return self.ctx.violation("invalid-id-400", problem, ex)

        text = st.text(alphabet=_ID_CHARS, min_size=1, max_size=40).filter(
            lambda t: not _is_uuid(t) and set(t) != {"."})
        strategy = st.tuples(st.sampled_from(["session", "application", "list"]), text)
        examples = [("session", "not-a-uuid"), ("session", "12345"),
                    ("application", "not-a-uuid"), ("list", "not-a-uuid"),
                    ("session", str(real)[:-1] + "g")]
        n = max(3, self.examples // 3)
        violation, tried = falsify(strategy, check, max_examples=n, seed=self.ctx.seed,
                                   examples=examples)
        return Outcome.judged([violation] if violation else [], tried,
                              f"{tried} malformed ids answered 400")

    # -- authentication --------------------------------------------------------------------

    def auth_required(self) -> Outcome:
        sid = self.everything[0]["id"] if self.everything else str(uuid.uuid4())
        targets = [("GET", self.ctx.sessions_path, "listSessions"),
                   ("GET", f"{self.ctx.sessions_path}/{sid}", "getSession")]
        if self.ctx.destructive:
            targets.append(("DELETE", self.ctx.sessions_path, "revokeAllSessions"))
        fixed: list[tuple[str, str | None]] = [
            ("no token", None),
            ("a malformed token", "Bearer"),
            ("a malformed token", "Basic a29udGV4dDpjb250cmFjdA=="),
            ("a malformed token", "Bearer two tokens"),
            ("a wrong token", "Bearer kontext-contract-not-a-real-token"),
        ]

        def check(case: tuple[int, tuple[str, str | None]]) -> Violation | None:
            index, (kind, header) = case
            method, path, op = targets[index]
            ex = self.ctx.client.request(method, path, auth=header, operation=op)
            body = ex.json_or_none()
            if ex.status == 401 and isinstance(body, dict) and isinstance(body.get("error"), str):
                return None
            if ex.status == 401:
                problem = "answered 401 without a JSON error body"
            else:
                problem = f"answered {ex.status}, not 401"
            return self.ctx.violation("auth-required", f"{method} {op} with {kind} {problem}", ex)

        wrong = st.text(alphabet=string.ascii_letters + string.digits + "-._~+/",
                        min_size=8, max_size=64).map(lambda t: ("a wrong token", f"Bearer kc{t}"))
        strategy = st.tuples(st.integers(0, len(targets) - 1), st.one_of(st.sampled_from(fixed),
                                                                          wrong))
        examples = [(i, cred) for i in range(len(targets)) for cred in fixed]
        n = max(3, self.examples // 5)
        violation, tried = falsify(strategy, check, max_examples=n, seed=self.ctx.seed,
                                   examples=examples)
        ops = ", ".join(op for _, _, op in targets)
        return Outcome.judged([violation] if violation else [], tried,
                              f"{tried} requests without valid credentials to {ops}")

