"""Layer 2, semantic properties (read-only): what the schema cannot say.

Every property is tried by hypothesis on explicit edge cases and drawn values; a
counterexample is one concrete request, reported with its answer. A comparison that
fails is fetched again before it counts, so a session changing state between two
requests on a live target is not taken for a bug.

Each rule is a method registered under its name: ``step`` rules run in the order they
are written, then the ``along`` rules give their verdict on every list the others
fetched (filter membership and order are checked on each one). A violation of an
assumption carries its id; what the vendor documents fails whatever the mode.
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

from kontext_mock.contracts.assumptions import (
    ERROR_SHAPE,
    FILTER_ACTIVE,
    FILTER_INACTIVE,
    FOREIGN_404,
    INCLUDE_INACTIVE,
    LIMIT_RANGE,
    LIST_ORDER,
    MALFORMED_ID_400,
    OPENAPI_PUBLIC,
)
from kontext_mock.contracts.bounds import ListParameters, unexercised
from kontext_mock.contracts.budget import BudgetSpentError
from kontext_mock.contracts.context import BadAnswerError, Outcome, RunContext
from kontext_mock.contracts.falsify import falsify
from kontext_mock.contracts.http import Exchange, dumps
from kontext_mock.contracts.invariants import parse_time
from kontext_mock.contracts.report import Violation, keep_first
from kontext_mock.contracts.rules import register, registered

__all__ = ["FILTERS", "SemanticLayer", "effective_filter"]

FILTERS: dict[str, frozenset[str]] = {
    "active": frozenset({"active", "idle"}),
    "inactive": frozenset({"expired", "disconnected"}),
    "all": frozenset({"active", "idle", "expired", "disconnected"}),
}
# What each filter may never list, whatever the reading of the undocumented filters:
# the default excludes what includeInactive adds (disconnected and expired sessions), and
# "inactive" never lists a session that is active right now.
_NEVER = {"active": frozenset({"expired", "disconnected"}), "inactive": frozenset({"active"}),
          "all": frozenset()}
# Fields that move with time without the session changing: list and read may differ there.
MOVING_FIELDS = frozenset({"derivedStatus", "lastActiveAt"})
# What the layer sends with one drawn example per rule and its first explicit cases: the
# budget plan's least for it (budget.py) leaves room for a few more.
_FRUGAL_COST = 39
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


def _json_error(ex: Exchange) -> bool:
    body = ex.json_or_none()
    return isinstance(body, dict) and isinstance(body.get("error"), str)


class SemanticLayer:
    """Runs the semantic rules against one application."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.lo, self.hi = ctx.spec.limit_range()
        #: under a request budget each rule takes its first explicit cases and few drawn ones
        self.frugal = ctx.frugal
        self.examples = ctx.options.max_examples
        if ctx.plan is not None:
            self.examples = max(1, (ctx.plan.shares["semantic"] - _FRUGAL_COST) // 6)
        # rules checked on every list the layer fetches (filter membership, order)
        self.along: dict[str, list[Violation]] = defaultdict(list)
        self.along_checks: Counter[str] = Counter()
        self.along_more: Counter[str] = Counter()
        self.counts: dict[str | None, int] = {}
        self.everything: list[dict[str, Any]] = []
        #: what listing with the largest limit showed, when the target refused it
        self.refused_limit: Violation | None = None
        self.params = ListParameters.of(ctx.spec)
        #: an application the kit filled past limit's bounds (on a mock), and how many
        #: sessions its default list holds; what listing it at the largest limit showed
        self.bounds_app: str | None = ctx.extra.get("bounds_application")
        self.bounds_known = int(ctx.extra.get("bounds_sessions", 0))
        self.bounds_list: tuple[int, Exchange] | None = None
        #: the bounds the application's lists cannot tell apart: (rules, why)
        self.unexercised: list[tuple[str, str]] = []

    # -- fetching, with the ride-along rules ----------------------------------------------

    def fetch(self, params: dict[str, Any],
              application_id: str | None = None) -> tuple[list[dict[str, Any]], Exchange]:
        """List with ``params`` (the application under test's sessions, unless
        ``application_id`` says otherwise); filter membership and order are checked on
        the way."""
        items, ex = self.ctx.list_sessions(params, application_id)
        wanted, rule = effective_filter(params)
        self.along_checks[rule] += 1
        for item in items:
            derived = item.get("derivedStatus")
            if derived in FILTERS[wanted]:
                continue
            message = (f"{_query(params)} listed session {item.get('id')} whose derivedStatus "
                       f"is {derived}; the {wanted!r} filter admits only "
                       f"{', '.join(sorted(FILTERS[wanted]))}")
            documented = derived in _NEVER[wanted] or derived not in FILTERS["all"]
            self._along(rule, message, ex, None if documented else FILTER_INACTIVE)
            break
        else:
            if wanted == "active" and any(i.get("derivedStatus") == "idle" for i in items):
                self.ctx.ledger.confirm(FILTER_ACTIVE, rule)
            if wanted == "inactive" and items:
                self.ctx.ledger.confirm(FILTER_INACTIVE, rule)
        self.along_checks["list-order"] += 1
        for a, b in itertools.pairwise(items):
            ta, tb = parse_time(a.get("createdAt")), parse_time(b.get("createdAt"))
            if ta is None or tb is None:
                continue
            if tb > ta or (tb == ta and str(b.get("id")) < str(a.get("id"))):
                self._along("list-order", f"{_query(params)}: session {b.get('id')} "
                            f"(createdAt {b.get('createdAt')}) is listed after {a.get('id')} "
                            f"(createdAt {a.get('createdAt')}); expected newest first, ties "
                            "by id ascending", ex, LIST_ORDER)
                break
        else:
            if len(items) > 1:
                self.ctx.ledger.confirm(LIST_ORDER, "list-order")
        return items, ex

    def _along(self, rule: str, message: str, ex: Exchange, assumption: str | None) -> None:
        if any(v.assumption == assumption for v in self.along[rule]):
            self.along_more[rule] += 1
        else:
            self.along[rule].append(self.ctx.violation(rule, message, ex, assumption))

    def merged(self, name: str, base: Outcome | None = None) -> Outcome:
        """``base`` (a step's outcome) with what the lists fetched on the way showed."""
        base = base or Outcome("passed")
        violations = self.along[name] + base.violations
        if self.along_more[name] and violations:
            first = violations[0]
            violations[0] = Violation(first.rule, f"{first.message}\n(and "
                                      f"{self.along_more[name]} more lists like it)",
                                      first.request, first.response, first.assumption)
        checks = self.along_checks[name] + base.checks
        merged = Outcome.judged(keep_first(violations), checks,
                                base.detail or f"{checks} lists checked")
        merged.duration = base.duration
        return merged

    # -- the layer -------------------------------------------------------------------------

    def run(self, wanted: Callable[[str], bool]) -> dict[str, Outcome]:
        """Every semantic rule ``wanted`` admits, by name."""
        out: dict[str, Outcome] = {}
        rules = [r for r in registered("semantic", "step", "along") if wanted(r.name)]
        try:
            self._population()
        except BadAnswerError as exc:
            # Without a list there is nothing to judge: every rule fails on that answer.
            return {r.name: Outcome.judged([exc.violation(r.name)], 1, "") for r in rules}
        self._say_unexercised(wanted)
        for r in rules:
            if r.kind != "step":
                continue
            started = time.monotonic()
            try:
                out[r.name] = r.check(self)
            except BadAnswerError as exc:
                out[r.name] = Outcome.judged([exc.violation(r.name)], 1, "")
            except BudgetSpentError:
                out[r.name] = Outcome.skipped("not checked: the request budget was spent")
            out[r.name].duration = time.monotonic() - started
            self.ctx.progress(f"  {r.name}: {out[r.name].status} ({out[r.name].duration:.1f} s)")
        for r in rules:
            if r.kind == "along":
                out[r.name] = r.check(self)
            elif self.along_checks[r.name] or self.along[r.name]:
                out[r.name] = self.merged(r.name, out[r.name])
        return out

    def _population(self) -> None:
        """The reference lists (largest limit) every rule compares with."""
        for status in (None, "all", "active", "inactive"):
            params: dict[str, Any] = {"limit": self.hi}
            if status:
                params["status"] = status
            try:
                items, _ = self.fetch(params)
            except BadAnswerError as exc:
                if self.refused_limit is not None or exc.exchange is None \
                        or exc.exchange.status != 400:
                    raise
                # The largest limit is an assumption: fall back to the documented default.
                self.refused_limit = self.ctx.violation(
                    "limit-respected", f"limit={self.hi} answered 400: the target does not "
                    f"accept the range {self.lo}..{self.hi}", exc.exchange, LIMIT_RANGE)
                self.hi = self.ctx.max_limit = self.ctx.spec.default_limit()
                params["limit"] = self.hi
                items, _ = self.fetch(params)
            self.counts[status] = len(items)
            if status == "all":
                self.everything = items
        if self.bounds_app is not None:
            items, ex = self.fetch({"limit": self.hi}, self.bounds_app)
            self.bounds_list = (len(items), ex)

    def _say_unexercised(self, wanted: Callable[[str], bool]) -> None:
        """Note the bounds this application's sessions cannot tell apart, and why."""
        ctx = self.ctx
        why = ("the kit creates sessions only on a kontext-mock" if ctx.control is None
               else "a read-only run creates none")
        found = unexercised(self.params, self.counts, self.hi, self.bounds_list is not None,
                            why)
        self.unexercised = [(rules, text) for rules, text in found
                            if any(wanted(r) for r in rules.split(", "))]
        ctx.notes.extend(f"not exercised ({rules}): {text}" for rules, text in self.unexercised)

    def _unexercised_by(self, rule: str) -> str:
        """What this rule could not tell apart, for its detail ("" when it told all)."""
        said = [text.split(":")[0] for rules, text in self.unexercised
                if rule in rules.split(", ")]
        return f"; not exercised: {', '.join(said)} (see the notes)" if said else ""

    def _saturated(self, status: str | None) -> bool:
        return self.counts.get(status, 0) >= self.hi

    def _cases(self, cases: list[Any], frugal: int) -> list[Any]:
        """The explicit cases of a rule: all of them, or the first ``frugal`` under a budget."""
        return cases[:frugal] if self.frugal else cases

    def _draws(self, usual: int) -> int:
        """How many drawn examples a rule takes: ``usual``, or under a budget no more than
        the plan's share allows (at least one)."""
        return min(usual, self.examples) if self.frugal else usual

    # -- limit -----------------------------------------------------------------------------

    @register("limit-respected", "semantic",
              "a list with limit=N returns min(N, available) sessions, for every N in 1..200; "
              "outside that range 400", assumes=(LIMIT_RANGE,))
    def limit_respected(self) -> Outcome:
        lo, hi = self.lo, self.hi
        documented_hi = self.ctx.spec.default_limit()
        examples: list[tuple[str | None, int]] = []
        for status in (None, "all"):
            n = self.counts[status]
            for k in (lo, n + 1, n - 1, n, lo + 1, hi, documented_hi):
                if lo <= k <= hi and (status, k) not in examples:
                    examples.append((status, k))
        examples = self._cases(examples, 2)

        def check(case: tuple[str | None, int]) -> Violation | None:
            status, k = case
            params: dict[str, Any] = {"limit": k}
            if status:
                params["status"] = status
            for attempt in range(2):
                try:
                    items, ex = self.fetch(params)
                except BadAnswerError as exc:
                    if exc.exchange is None or exc.exchange.status != 400 or k <= documented_hi:
                        raise
                    return self.ctx.violation(
                        "limit-respected", f"{_query(params)} answered 400; the assumption is "
                        f"that every limit in {lo}..{hi} is accepted", exc.exchange, LIMIT_RANGE)
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
        violation, tried = falsify(strategy, check, max_examples=self._draws(self.examples),
                                   seed=self.ctx.seed, examples=examples)
        found = [v for v in (self.refused_limit, self._past_the_bounds(), violation)
                 if v is not None]
        if self.refused_limit is None:
            found += self._outside_the_range()
        if not found or all(v.assumption is None for v in found):
            self.ctx.ledger.confirm(LIMIT_RANGE, "limit-respected", tried)
        told = ""
        if self.bounds_list is not None:
            told = (f"; limit={hi} listed {self.bounds_list[0]} of the {self.bounds_known} "
                    f"sessions of application {self.bounds_app}")
        return Outcome.judged(keep_first(found), tried + 2, f"{tried} limits in {lo}..{hi}, "
                              f"and {lo - 1} and {hi + 1} refused{told}"
                              f"{self._unexercised_by('limit-respected')}")

    def _past_the_bounds(self) -> Violation | None:
        """The largest limit against more sessions than it: exactly that many come back. A
        target capping limit lower answers fewer (a limit above the documented default is
        the assumed range's); one ignoring it, more."""
        if self.bounds_list is None:
            return None
        listed, ex = self.bounds_list
        expected = min(self.hi, self.bounds_known)
        if listed == expected:
            return None
        capped = listed < expected and self.hi > self.ctx.spec.default_limit()
        return self.ctx.violation(
            "limit-respected", f"limit={self.hi} returned {listed} sessions; application "
            f"{self.bounds_app} holds {self.bounds_known} connected sessions (the kit created "
            f"them), so expected {expected}", ex, LIMIT_RANGE if capped else None)

    @register("limit-default", "semantic",
              "a list without limit returns min(100, available) sessions: the documented "
              "default")
    def limit_default(self) -> Outcome:
        default = self.params.limit_default
        # (application, query, sessions it matches: a lower bound when the list at the
        # largest limit was full)
        cases: list[tuple[str | None, dict[str, Any], int]] = []
        if self.bounds_list is not None:
            cases.append((self.bounds_app, {}, self.bounds_known))
        for status in (None, "all"):
            if status is None or self.counts["all"] != self.counts[None]:
                cases.append((None, {"status": status} if status else {}, self.counts[status]))
        cases = self._cases(cases, 2)
        found: list[Violation] = []
        shown: list[str] = []
        for app, params, available in cases:
            more = "at least " if app is None and available >= self.hi else ""
            for attempt in range(2):
                items, ex = self.fetch(params, app)
                expected = min(default, available)
                if len(items) == expected:
                    break
                if attempt == 0 and app is None:  # the population may have moved: count again
                    status = params.get("status")
                    ref = {"limit": self.hi} | ({"status": status} if status else {})
                    available = self.counts[status] = len(self.fetch(ref)[0])
            else:
                matching = (f"{more}{available} match (limit={self.hi})" if app is None else
                            f"application {app} holds {available} connected sessions (the kit "
                            "created them)")
                found.append(self.ctx.violation(
                    "limit-default", f"{_query(params)} returned {len(items)} sessions; "
                    f"{matching}, so the default limit of "
                    f"{default} gives {expected}", ex))
                continue
            shown.append(f"{len(items)} of {more}{available}")
        detail = (f"without limit: {', '.join(shown)} sessions (default {default})"
                  f"{self._unexercised_by('limit-default')}")
        return Outcome.judged(keep_first(found), len(cases), detail)

    def _outside_the_range(self) -> list[Violation]:
        """Just outside the assumed range: 400 validation_error, never a list or a 5xx."""
        found = []
        for k in (self.lo - 1, self.hi + 1):
            ex = self.ctx.client.get(self.ctx.sessions_path, params={"limit": k},
                                     operation="listSessions")
            if ex.status >= 500:
                found.append(self.ctx.violation(
                    "limit-respected", f"limit={k} answered {ex.status}, a server error", ex))
            elif ex.status != 400:
                found.append(self.ctx.violation(
                    "limit-respected", f"limit={k} answered {ex.status}; the assumption is 400 "
                    f"outside {self.lo}..{self.hi}", ex, LIMIT_RANGE))
        return found

    # -- filters ---------------------------------------------------------------------------

    def _same_sets(self, rule: str, a: dict[str, Any], b: dict[str, Any],
                   assumption: str | None = None) -> Violation | None:
        """The two queries list the same sessions (fetched twice before it counts)."""
        for _attempt in range(2):
            items_a, ex_a = self.fetch(a)
            items_b, _ = self.fetch(b)
            ids_a, ids_b = _ids(items_a), _ids(items_b)
            if sorted(ids_a) == sorted(ids_b):
                if assumption is not None:
                    self.ctx.ledger.confirm(assumption, rule)
                return None
        only_a = sorted(set(ids_a) - set(ids_b))
        only_b = sorted(set(ids_b) - set(ids_a))
        return self.ctx.violation(
            rule, f"{_query(a)} listed {len(ids_a)} sessions, {_query(b)} listed {len(ids_b)}"
            f"; only in the first: {only_a[:3] or 'none'}, only in the second: "
            f"{only_b[:3] or 'none'}", ex_a, assumption)

    @register("filter-all", "semantic",
              "status=all is the union of active and inactive (disjoint) and nothing else",
              assumes=(FILTER_ACTIVE, FILTER_INACTIVE))
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
                if all_ids:
                    self.ctx.ledger.confirm(FILTER_ACTIVE, "filter-all")
                    self.ctx.ledger.confirm(FILTER_INACTIVE, "filter-all")
                return Outcome("passed", f"all = active + inactive ({len(all_ids)} sessions)",
                               checks=1)
        found = []
        if extra:  # "all" lists every session: documented
            found.append(self.ctx.violation(
                "filter-all", f"status=all does not list sessions that active or inactive list: "
                f"{sorted(extra)[:3]}", ex))
        if both:
            found.append(self.ctx.violation(
                "filter-all", f"sessions listed by both active and inactive: {sorted(both)[:3]}",
                ex, FILTER_INACTIVE))
        if missing:
            derived = {str(i.get("id")): i.get("derivedStatus") for i in everything}
            first = sorted(missing)[0]
            which = FILTER_ACTIVE if derived.get(first) in FILTERS["active"] else FILTER_INACTIVE
            found.append(self.ctx.violation(
                "filter-all", f"sessions listed by status=all but neither by active nor by "
                f"inactive: {sorted(missing)[:3]} (derivedStatus {derived.get(first)})",
                ex, which))
        return Outcome.judged(found, 1, "")

    @register("filter-default", "semantic", "no status parameter lists the same as status=active")
    def filter_default(self) -> Outcome:
        n = self._draws(max(2, self.examples // 5))

        default = self.params.status_default

        def check(limit: int | None) -> Violation | None:
            extra = {} if limit is None else {"limit": limit}
            return self._same_sets("filter-default", dict(extra), {"status": default, **extra})

        examples: list[int | None] = self._cases([None, self.hi], 1)
        violation, tried = falsify(st.one_of(st.none(), st.integers(self.lo, self.hi)), check,
                                   max_examples=n, seed=self.ctx.seed, examples=examples)
        return Outcome.judged([violation] if violation else [], tried,
                              f"default equals status={default} ({tried} limits)"
                              f"{self._unexercised_by('filter-default')}")

    @register("filter-include-inactive", "semantic",
              "includeInactive=true lists the same as status=all; an explicit status wins",
              assumes=(INCLUDE_INACTIVE,))
    def filter_include_inactive(self) -> Outcome:
        hi: dict[str, Any] = {"limit": self.hi}
        pairs: list[tuple[dict[str, Any], dict[str, Any], str | None]] = self._cases([
            ({"includeInactive": True, **hi}, {"status": "all", **hi}, INCLUDE_INACTIVE),
            ({"includeInactive": False, **hi}, {"status": "active", **hi}, None),
            ({"status": "inactive", "includeInactive": True, **hi}, {"status": "inactive", **hi},
             INCLUDE_INACTIVE),
            ({"status": "active", "includeInactive": True, **hi}, {"status": "active", **hi},
             INCLUDE_INACTIVE),
            ({"status": "all", "includeInactive": False, **hi}, {"status": "all", **hi},
             INCLUDE_INACTIVE),
            # its documented default: leaving it out is giving it
            (hi, {"includeInactive": self.params.include_inactive_default, **hi}, None),
        ], 3)
        violations = [v for a, b, assumption in pairs
                      if (v := self._same_sets("filter-include-inactive", a, b, assumption))
                      is not None]
        return Outcome.judged(keep_first(violations), len(pairs),
                              "includeInactive=true equals status=all; explicit status wins"
                              f"{self._unexercised_by('filter-include-inactive')}")

    # -- reads -----------------------------------------------------------------------------

    @register("get-matches-list", "semantic",
              "every listed session reads back identically by id "
              "(derivedStatus and lastActiveAt excepted: they move with time)")
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
                                   max_examples=self._draws(self.examples), seed=self.ctx.seed,
                                   examples=self.everything[:1])
        return Outcome.judged([violation] if violation else [], tried,
                              f"{tried} sessions read back by id")

    def _expect_404(self, rule: str, path: str, what: str,
                    instead: str | None = None) -> Violation | None:
        """404 with a JSON error; another 4xx contradicts ``instead`` (when given), a 2xx or
        5xx breaks the rule; a 404 that is not a JSON error contradicts the error shape."""
        ex = self.ctx.client.get(path, operation="getSession")
        if ex.status == 404:
            if _json_error(ex):
                self.ctx.ledger.confirm(ERROR_SHAPE, rule)
                if instead is not None:
                    self.ctx.ledger.confirm(instead, rule)
                return None
            return self.ctx.violation(rule, f"{what} answered 404 without a JSON error body",
                                      ex, ERROR_SHAPE)
        assumption = instead if instead is not None and 400 <= ex.status < 500 else None
        return self.ctx.violation(rule, f"{what} answered {ex.status}, not 404", ex, assumption)

    @register("unknown-session-404", "semantic",
              "an unknown session id answers 404 with a JSON error", assumes=(ERROR_SHAPE,))
    def unknown_session(self) -> Outcome:
        known = set(_ids(self.everything))

        def check(value: uuid.UUID) -> Violation | None:
            sid = str(value)
            if sid in known:
                return None
            return self._expect_404("unknown-session-404", f"{self.ctx.sessions_path}/{sid}",
                                    f"unknown session {sid}")

        n = self._draws(max(3, self.examples // 5))
        violation, tried = falsify(st.uuids(version=4), check, max_examples=n,
                                   seed=self.ctx.seed)
        return Outcome.judged([violation] if violation else [], tried,
                              f"{tried} unknown ids answered 404")

    @register("foreign-session-404", "semantic",
              "a session of another application is 404 under this one (never readable)",
              assumes=(FOREIGN_404,))
    def foreign_session(self) -> Outcome:
        own = set(_ids(self.everything))
        foreign = [s for s in self.ctx.foreign_session_ids if s not in own]
        if not foreign:
            return Outcome.skipped(
                "not available: no session of another application is known (give "
                "--foreign-session-id, or use a target with a control plane)")
        foreign = foreign[: self._draws(max(1, self.examples))]

        def check(sid: str) -> Violation | None:
            return self._expect_404(
                "foreign-session-404", f"{self.ctx.sessions_path}/{sid}",
                f"session {sid}, of another application, read under {self.ctx.application_id}",
                instead=FOREIGN_404)

        violation, tried = falsify(st.sampled_from(foreign), check,
                                   max_examples=len(foreign), seed=self.ctx.seed,
                                   examples=foreign[:1])
        return Outcome.judged([violation] if violation else [], tried,
                              f"{tried} sessions of other applications answered 404")

    @register("invalid-id-400", "semantic",
              "a non-UUID application or session id answers 400 validation_error, never 5xx",
              assumes=(MALFORMED_ID_400, ERROR_SHAPE))
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
            what = f"a non-UUID {'session' if where == 'session' else 'application'} id {bad!r}"
            if ex.status == 400 and _json_error(ex):
                self.ctx.ledger.confirm(MALFORMED_ID_400, "invalid-id-400")
                self.ctx.ledger.confirm(ERROR_SHAPE, "invalid-id-400")
                return None
            if ex.status >= 500:
                problem, assumption = f"{what} answered {ex.status}, a server error", None
            elif ex.status < 400:
                problem, assumption = f"{what} answered {ex.status}: it was accepted", None
            elif ex.status != 400:
                problem = f"{what} answered {ex.status}; the assumption is 400 validation_error"
                assumption = MALFORMED_ID_400
            else:
                problem, assumption = f"{what} answered 400 without a JSON error body", ERROR_SHAPE
            return self.ctx.violation("invalid-id-400", problem, ex, assumption)

        text = st.text(alphabet=_ID_CHARS, min_size=1, max_size=40).filter(
            lambda t: not _is_uuid(t) and set(t) != {"."})
        strategy = st.tuples(st.sampled_from(["session", "application", "list"]), text)
        examples = self._cases([("session", "not-a-uuid"), ("list", "not-a-uuid"),
                                ("application", "not-a-uuid"), ("session", "12345"),
                                ("session", str(real)[:-1] + "g")], 2)
        n = self._draws(max(3, self.examples // 3))
        violation, tried = falsify(strategy, check, max_examples=n, seed=self.ctx.seed,
                                   examples=examples)
        return Outcome.judged([violation] if violation else [], tried,
                              f"{tried} malformed ids answered 400")

    # -- authentication --------------------------------------------------------------------

    @register("auth-required", "semantic",
              "no token, a malformed token and a wrong token answer 401 with a JSON body",
              assumes=(ERROR_SHAPE,))
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
            if ex.status == 401 and _json_error(ex):
                self.ctx.ledger.confirm(ERROR_SHAPE, "auth-required")
                return None
            if ex.status == 401:
                return self.ctx.violation("auth-required", f"{method} {op} with {kind} answered "
                                          "401 without a JSON error body", ex, ERROR_SHAPE)
            return self.ctx.violation("auth-required", f"{method} {op} with {kind} answered "
                                      f"{ex.status}, not 401", ex)

        wrong = st.text(alphabet=string.ascii_letters + string.digits + "-._~+/",
                        min_size=8, max_size=64).map(lambda t: ("a wrong token", f"Bearer kc{t}"))
        strategy = st.tuples(st.integers(0, len(targets) - 1), st.one_of(st.sampled_from(fixed),
                                                                          wrong))
        examples = [(i, cred) for i in range(len(targets)) for cred in fixed]
        if self.frugal:  # each kind of credential once, each operation once
            examples = [(0, fixed[0]), (1, fixed[1]), (0, fixed[4]), (len(targets) - 1, fixed[2])]
        n = self._draws(max(3, self.examples // 5))
        violation, tried = falsify(strategy, check, max_examples=n, seed=self.ctx.seed,
                                   examples=examples)
        ops = ", ".join(op for _, _, op in targets)
        return Outcome.judged([violation] if violation else [], tried,
                              f"{tried} requests without valid credentials to {ops}")

    # -- discovery -------------------------------------------------------------------------

    @register("openapi-document", "semantic",
              "GET /api/openapi.json answers an OpenAPI document, without a token",
              assumes=(OPENAPI_PUBLIC,))
    def openapi_document(self) -> Outcome:
        if "getOpenApiDocument" not in self.ctx.served:
            return Outcome.skipped("the target does not serve /api/openapi.json")
        ex = self.ctx.client.request("GET", "/api/openapi.json", auth=None,
                                     operation="getOpenApiDocument")
        found: list[Violation] = []
        if ex.status in (401, 403):
            found.append(self.ctx.violation(
                "openapi-document", f"without a token the contract answered {ex.status}",
                ex, OPENAPI_PUBLIC))
            ex = self.ctx.client.get("/api/openapi.json", operation="getOpenApiDocument")
        else:
            self.ctx.ledger.confirm(OPENAPI_PUBLIC, "openapi-document")
        body = ex.json_or_none()
        if ex.status != 200 or not isinstance(body, dict) or not isinstance(
                body.get("paths"), dict) or "openapi" not in body:
            found.append(self.ctx.violation(
                "openapi-document", f"/api/openapi.json answered {ex.status} without an OpenAPI "
                "document ('openapi' and 'paths')", ex))
        return Outcome.judged(found, 1, "the contract is published at /api/openapi.json")

    # -- the verdicts of what every list showed --------------------------------------------

    @register("filter-active", "semantic", "status=active lists only active and idle sessions",
              assumes=(FILTER_ACTIVE,), kind="along")
    def filter_active(self) -> Outcome:
        return self.merged("filter-active")

    @register("filter-inactive", "semantic",
              "status=inactive lists only expired and disconnected sessions",
              assumes=(FILTER_INACTIVE,), kind="along")
    def filter_inactive(self) -> Outcome:
        return self.merged("filter-inactive")

    @register("list-order", "semantic", "lists are newest createdAt first, ties by id ascending",
              assumes=(LIST_ORDER,), kind="along")
    def list_order(self) -> Outcome:
        return self.merged("list-order")
