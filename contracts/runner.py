"""``run_contract``: preflight, the three layers, the verdicts on rules and assumptions."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from kontext_mock.contracts.assumed_schema import RULE as ASSUMED_SCHEMA_RULE
from kontext_mock.contracts.assumed_schema import AssumedSchema
from kontext_mock.contracts.assumptions import IDLE_THRESHOLD, MODES, SpecAssumption, read_assumptions
from kontext_mock.contracts.bounds import ListParameters, populate
from kontext_mock.contracts.budget import DEFAULT_BUDGET, BudgetSpentError, Plan, default_budget
from kontext_mock.contracts.context import Outcome, RunContext
from kontext_mock.contracts.control import ControlPlane
from kontext_mock.contracts.drift import Ledger, verdicts
from kontext_mock.contracts.errors import ContractError
from kontext_mock.contracts.http import ApiClient
from kontext_mock.contracts.invariants import PassiveRules
from kontext_mock.contracts.mcp_layer import McpLayer, require_sdk
from kontext_mock.contracts.openapi import ApiSpec
from kontext_mock.contracts.options import Options, Target, api_origin
from kontext_mock.contracts.pacing import RateLimiter
from kontext_mock.contracts.probe import check_application, check_is_this_api, served_operations
from kontext_mock.contracts.report import Report, RuleResult
from kontext_mock.contracts.rules import LAYERS, catalog, rule
from kontext_mock.contracts.schema_layer import SchemaLayer
from kontext_mock.contracts.semantic import SemanticLayer
from kontext_mock.contracts.stateful import StatefulLayer
from kontext_mock.contracts.undocumented import Undocumented

__all__ = ["DEFAULT_IDLE_AFTER", "run_contract"]

#: the idle threshold the kit assumes when neither the options nor a mock say otherwise
DEFAULT_IDLE_AFTER = timedelta(minutes=5)

# The sessions a mock target gets for the kit's own applications: every derived status.
_SCRATCH_MIX = {"active": 6, "idle": 4, "expired": 4, "disconnected": 6}
_REVOKE_MIX = {"active": 3, "idle": 2, "expired": 2, "disconnected": 3}


def run_contract(target: Target, options: Options | None = None) -> Report:
    """Check ``target`` against the contract; a :class:`Report` with a verdict per rule and
    per assumption.

    Raises :class:`ContractError` (the CLI's exit 2) when no verdict is possible: the
    target is down or answers no route of this API, the credentials do not work, the
    options are wrong.
    """
    options = options or Options()
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    seed = options.seed if options.seed is not None else random.randrange(2**31)
    progress = options.progress or (lambda line: None)
    origin, origin_note = api_origin(target.base_url)
    target = replace(target, base_url=origin)
    _validate(target, options)
    spec = ApiSpec.load(options.spec)
    assumptions = _assumptions_of(spec)
    limiter = RateLimiter.from_text(options.rate_limit) if options.rate_limit else None
    control = ControlPlane.detect(target.base_url, target.mock_admin_token, options.timeout)
    destructive = options.destructive if options.destructive is not None else control is not None
    mode = options.assumptions or ("enforce" if control is not None else "report")
    state = control.export_state() if control is not None else None
    idle_after = options.idle_after or _mock_idle_after(state) or DEFAULT_IDLE_AFTER
    client = ApiClient(
        target.base_url, token=target.token, client_id=target.client_id,
        client_secret=target.client_secret, limiter=limiter, timeout=options.timeout,
        destructive=destructive,
    )
    client.redact.add(target.mock_admin_token)
    ledger = Ledger()
    passive = PassiveRules(spec, idle_after, ledger)
    assumed = AssumedSchema(spec, ledger)
    undocumented = Undocumented(spec)
    client.observers.extend([passive, assumed, undocumented])
    lifecycle = destructive and control is not None and "stateful" in options.layers
    client.budget = _budget(options, control, state)
    plan = (Plan.make(client.budget, options.layers, destructive, lifecycle)
            if client.budget is not None else None)
    report = Report(base_url=client.base_url, application_id=target.application_id, seed=seed,
                    destructive=destructive, control_plane=control is not None,
                    assumptions_mode=mode, budget=client.budget, started_at=started_at,
                    restore=options.restore, mode_chosen=options.destructive is not None)
    progress(report.header())
    if origin_note is not None:
        report.notes.append(origin_note)
        progress(f"note: {origin_note}")
    if plan is not None:
        progress(f"request budget {plan.total}: {plan.render()}")
    outcomes: dict[str, Outcome] = {}
    ctx: RunContext | None = None
    try:
        check_is_this_api(client, target.application_id)
        client.token()
        saved = state if destructive and options.restore else None
        saved_at = time.monotonic()
        try:
            ctx = _context(client, spec, options, seed, passive, control, state, target,
                           progress, destructive)
            ctx.ledger = ledger
            ctx.extra["idle_after"] = idle_after
            ctx.extra["mcp_token"] = target.mcp_token
            ctx.plan = plan
            report.application_id = ctx.application_id
            outcomes = _run_layers(ctx, options)
            report.notes.extend(ctx.notes)
        finally:
            if saved is not None and control is not None:
                report.notes.append(_restore(control, saved, time.monotonic() - saved_at))
    finally:
        client.close()
        if control is not None:
            control.close()
    outcomes.update(_observed(passive, assumed, options, outcomes))
    bounds = passive.idle_bounds()
    if bounds is not None:
        ledger.note(IDLE_THRESHOLD, "derived-status-idle", bounds)
    if client.token_refreshes:
        report.notes.append(f"the token expired during the run and was fetched again "
                            f"{client.token_refreshes} time(s)")
    report.results = _results(outcomes, options, destructive, mode)
    report.assumptions = verdicts(assumptions.values(), report.results, ledger,
                                  catalog().values())
    report.undocumented = undocumented.items(ctx.served if ctx is not None else None)
    plan = ctx.plan if ctx is not None else plan  # a 429 may have set one on the way
    report.plan = dict(plan.shares) if plan is not None else {}
    report.usage = dict(client.usage)
    report.budget = client.budget
    report.requests = client.count
    report.duration = time.monotonic() - started
    return report


def _validate(target: Target, options: Options) -> None:
    parts = urlsplit(target.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ContractError(f"--base-url must be an http(s) URL, not {target.base_url!r}")
    if not target.token and not (target.client_id and target.client_secret):
        raise ContractError("give --token, or --client-id and --client-secret")
    unknown_layers = set(options.layers) - set(LAYERS)
    if unknown_layers:
        raise ContractError(f"unknown layer(s): {', '.join(sorted(unknown_layers))}; "
                            f"the layers are {', '.join(LAYERS)}")
    rules = catalog()
    unknown = [s for s in options.skip if s not in rules and not s.startswith("schema-")]
    if unknown:
        raise ContractError(f"unknown rule(s) to skip: {', '.join(sorted(unknown))}")
    if options.max_examples < 1:
        raise ContractError("--max-examples must be at least 1")
    if options.assumptions is not None and options.assumptions not in MODES:
        raise ContractError(f"--assumptions must be one of {', '.join(MODES)}")
    if options.budget is not None and options.budget < 0:
        raise ContractError("--budget must be 0 (no budget) or more")
    if "mcp" in options.layers and set(options.layers) != set(LAYERS) and not options.mcp:
        raise ContractError("--layer mcp needs --mcp (it opens MCP sessions on the target)")
    if options.mcp:
        require_sdk()


def _assumptions_of(spec: ApiSpec) -> dict[str, SpecAssumption]:
    try:
        return read_assumptions(spec.raw)
    except ValueError as exc:
        raise ContractError(f"the spec {spec.path}: {exc}") from None


def _budget(options: Options, control: ControlPlane | None,
            state: dict[str, Any] | None) -> int | None:
    """The run's request budget: the one given; against a mock, one only when it is rate
    limited (by ``--rate-limit`` or its own limit); against anything else the default."""
    if options.budget is not None:
        return options.budget or None
    if control is None or options.rate_limit:
        return default_budget(options.rate_limit)
    per_minute = ((state or {}).get("rateLimit") or {}).get("perMinute")
    if isinstance(per_minute, int) and per_minute > 0:
        return default_budget(f"{per_minute}/min")
    return None


def _wanted(name: str, options: Options) -> bool:
    return name not in options.skip and rule(name).layer in options.layers


def _mock_idle_after(state: dict[str, Any] | None) -> timedelta | None:
    seconds = ((state or {}).get("settings") or {}).get("idleAfter")
    return timedelta(seconds=seconds) if isinstance(seconds, int | float) and seconds > 0 else None


def _restore(control: ControlPlane, saved: dict[str, Any], elapsed: float) -> str:
    """Put the mock back as it was (records and clock); what happened, for the notes."""
    try:
        control.import_state(saved)
        done = "the mock's state was put back as it was before the run"
    except ContractError as exc:
        done = (f"the mock's records could not be put back ({str(exc)[:200]}): the kit's "
                "applications and sessions remain; its clock was put back")
    clock = saved.get("clock") or {}
    if isinstance(clock.get("now"), str):
        # A running clock carries on from where it would be, not from the export.
        now = datetime.fromisoformat(clock["now"].replace("Z", "+00:00"))
        if clock.get("frozen") is False:
            now += timedelta(seconds=elapsed)
        try:
            control.set_time(now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                              frozen=bool(clock.get("frozen")))
        except ContractError as exc:
            done += f"; the clock could not be put back ({str(exc)[:200]})"
    return done


def _context(client: ApiClient, spec: ApiSpec, options: Options, seed: int,
             passive: PassiveRules, control: ControlPlane | None,
             state: dict[str, Any] | None, target: Target,
             progress: Callable[[str], None], destructive: bool) -> RunContext:
    """Resolve the application under test (on a mock: made, or found), foreign ids, served ops."""
    app_id = target.application_id
    notes: list[str] = []
    extra: dict[str, Any] = {}
    made_foreign: list[str] = []
    if state is not None and control is not None:
        org = _organization(state, app_id, client.token(), target.client_id)
        if app_id is None and destructive:
            app_id, _ = _scratch_application(control, org, "kontext-contract", _SCRATCH_MIX)
            notes.append(f"the kit created application {app_id} on the mock, with sessions of "
                         "every status")
        elif app_id is None:
            app_id = _busiest_application(state, org)
            if app_id is not None:
                notes.append(f"the kit read application {app_id}, the mock's application with "
                             "the most sessions this token can see")
        if destructive:
            # An application of the same organization (revoke-all runs there), and one of
            # another: their sessions are foreign to the application under test.
            extra["revoke_application"], made_foreign = _scratch_application(
                control, org, "kontext-contract revoke", _REVOKE_MIX)
            other = control.create_organization("kontext-contract other")
            _, elsewhere = _scratch_application(
                control, str(other["id"]), "kontext-contract other",
                {"active": 1})
            made_foreign = made_foreign[:2] + elsewhere
            extra["organization_id"] = org
            if "semantic" in options.layers and any(
                    _wanted(name, options) for name in ("limit-respected", "limit-default")):
                bounds = ListParameters.of(spec)
                made, count = populate(control, org, bounds)
                extra["bounds_application"], extra["bounds_sessions"] = made, count
                notes.append(f"the kit created application {made} on the mock with {count} "
                             f"connected sessions, more than limit's maximum "
                             f"({bounds.limit_max}), to tell limit's bounds and default apart")
    if app_id is None:
        raise ContractError("give --application-id: an application with sessions to read")
    check_application(client, app_id)
    foreign = list(options.foreign_session_ids) + made_foreign
    if state is not None:
        foreign += _foreign_sessions(state, app_id)
    ctx = RunContext(client=client, spec=spec, options=options, application_id=app_id,
                     seed=seed, passive=passive, control=control, foreign_session_ids=foreign,
                     notes=notes, progress=progress, extra=extra,
                     max_limit=spec.limit_range()[1])
    first = ctx.list_sessions({"status": "all", "limit": 1})[0]
    ctx.served = served_operations(client, spec, app_id, str(first[0]["id"]) if first else None)
    missing = sorted(op.operation_id for op in spec.operations.values()
                     if op.operation_id not in ctx.served and (destructive or not op.writes))
    if missing:
        ctx.notes.append(f"operations the target does not serve (not tested): {', '.join(missing)}")
    return ctx


def _organization(state: dict[str, Any], app_id: str | None, token: str,
                  client_id: str | None) -> str | None:
    """The organization the kit's applications go in: the application's, else the token's."""
    if app_id is not None:
        for app in state.get("applications", []):
            if app.get("id") == app_id:
                return str(app.get("organizationId"))
    for entry in state.get("tokens", []):
        if entry.get("token") == token:
            return str(entry.get("organizationId"))
    for entry in state.get("clients", []):
        if client_id is not None and entry.get("clientId") == client_id:
            return str(entry.get("organizationId"))
    return None


def _busiest_application(state: dict[str, Any], org: str | None) -> str | None:
    """The application of ``org`` with the most sessions (a read-only run reads it)."""
    apps = [str(a.get("id")) for a in state.get("applications", [])
            if org is None or a.get("organizationId") == org]
    counts = {a: 0 for a in apps}
    for s in state.get("sessions", []):
        if s.get("applicationId") in counts:
            counts[s["applicationId"]] += 1
    return max(apps, key=lambda a: counts[a]) if apps else None


def _scratch_application(control: ControlPlane, org: str | None, name: str,
                         mix: dict[str, int]) -> tuple[str, list[str]]:
    """A new application on the mock with sessions of the given derived statuses."""
    app = control.create_application(name, org)
    ids = [str(control.create_session(app["id"], state)["id"])
           for state, count in mix.items() for _ in range(count)]
    return str(app["id"]), ids


def _foreign_sessions(state: dict[str, Any], app_id: str, limit: int = 5) -> list[str]:
    """A few sessions of other applications: other organizations' first, then this one's."""
    own_org = next((a.get("organizationId") for a in state.get("applications", [])
                    if a.get("id") == app_id), None)
    others = [s for s in state.get("sessions", []) if s.get("applicationId") != app_id]
    others.sort(key=lambda s: (s.get("organizationId") == own_org, str(s.get("id"))))
    picked: list[str] = []
    seen_apps: set[str] = set()
    for s in others:  # one per application first, for variety
        if s.get("applicationId") not in seen_apps:
            seen_apps.add(str(s.get("applicationId")))
            picked.append(str(s["id"]))
    return picked[:limit]


def _run_layers(ctx: RunContext, options: Options) -> dict[str, Outcome]:
    """Semantic first (fresh data), then stateful, then schema (its fuzzing writes last)."""
    out: dict[str, Outcome] = {}
    client = ctx.client

    def wanted(name: str) -> bool:
        return _wanted(name, options)

    if "semantic" in options.layers:
        client.phase = "semantic"
        ctx.progress("semantic properties (hypothesis, read-only):")
        out.update(SemanticLayer(ctx).run(wanted))
    _budget_once_throttled(ctx, options)
    if "stateful" in options.layers and ctx.destructive:
        client.phase = "stateful"
        ctx.progress("stateful properties (destructive):")
        out.update(StatefulLayer(ctx).run(wanted))
    _budget_once_throttled(ctx, options)
    if options.mcp and "mcp" in options.layers:
        client.phase = "mcp"
        ctx.progress("MCP gateway (an MCP client; it opens sessions):")
        out.update(McpLayer(ctx).run(wanted))
    if "schema" in options.layers:
        client.phase = "schema"
        ctx.progress("schema conformance (schemathesis):")
        try:
            ids = [str(s["id"]) for s in
                   ctx.list_sessions({"status": "all", "limit": ctx.max_limit})[0]]
        except BudgetSpentError:
            return out
        out.update(SchemaLayer(ctx, ids).run())
    return out


def _budget_once_throttled(ctx: RunContext, options: Options) -> None:
    """A target that answers 429 is rate limited, whatever it is: from then on the run keeps
    to the default budget (on top of what it has sent), shared by a plan as usual."""
    client = ctx.client
    if client.budget is not None or not client.throttled:
        return
    client.budget = client.count + DEFAULT_BUDGET
    lifecycle = ctx.destructive and ctx.control is not None
    ctx.plan = Plan.make(client.budget, options.layers, ctx.destructive, lifecycle)
    ctx.notes.append(f"the target answered 429 ({client.throttled} times): the rest of the run "
                     f"kept to a budget of {DEFAULT_BUDGET} more requests")


def _observed(passive: PassiveRules, assumed: AssumedSchema, options: Options,
              outcomes: dict[str, Outcome]) -> dict[str, Outcome]:
    """The verdicts of the rules judged on every answer the run saw."""
    out: dict[str, Outcome] = {}
    for r in [*passive.rules, rule(ASSUMED_SCHEMA_RULE)]:
        if not _wanted(r.name, options) or r.name in outcomes:
            continue
        if r.name == ASSUMED_SCHEMA_RULE:
            n, found = assumed.checks, assumed.found()
        else:
            n, found = passive.checks[r.name], passive.found(r.name)
        if n == 0:
            out[r.name] = Outcome.skipped("nothing to check: no such answer was seen")
        else:
            out[r.name] = Outcome.judged(found, n, r.detail.format(n=n))
    return out


def _results(outcomes: dict[str, Outcome], options: Options, destructive: bool,
             mode: str) -> list[RuleResult]:
    rules = catalog()
    names = list(rules) + sorted(n for n in outcomes if n not in rules)
    results: list[RuleResult] = []
    for name in names:
        r = rule(name)
        if r.layer == "mcp" and not options.mcp:
            continue  # opt-in: without --mcp the layer is not part of the run
        outcome = outcomes.get(name)
        if name in options.skip:
            outcome = Outcome.skipped("skipped (--skip)")
        elif r.layer not in options.layers:
            outcome = Outcome.skipped(f"the {r.layer} layer was not selected")
        elif outcome is None:
            if r.layer == "stateful" and not destructive:
                outcome = Outcome.skipped("read-only run (give --destructive to check it)")
            elif r.layer == "schema":
                outcome = Outcome.skipped("not exercised by this run")
            else:
                outcome = Outcome.skipped("not checked")
        status = outcome.status
        if status == "failed" and mode == "report" and all(v.assumption for v in
                                                           outcome.violations):
            status = "drift"
        results.append(RuleResult(r, status, outcome.detail, outcome.violations,
                                  outcome.checks, outcome.duration))
    return results

