"""``run_contract``: preflight, the three layers, and the report."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from .context import Outcome, RunContext
from .control import ControlPlane
from .errors import ContractError
from .http import ApiClient
from .invariants import PASSIVE_RULES, PassiveRules
from .options import Options, Target
from .probe import check_application, check_is_this_api, served_operations
from .ratelimit import RateLimiter
from .report import Report, RuleResult
from .rules import LAYERS, RULES, rule
from .schema_layer import SchemaLayer
from .semantic import SemanticLayer
from .spec import ApiSpec
from .stateful import StatefulLayer

__all__ = ["DEFAULT_IDLE_AFTER", "run_contract"]

#: the idle threshold the kit assumes when neither the options nor a mock say otherwise
DEFAULT_IDLE_AFTER = timedelta(minutes=5)

# The sessions a mock target gets for the kit's own applications: every derived status.
_SCRATCH_MIX = {"active": 6, "idle": 4, "expired": 4, "disconnected": 6}
_REVOKE_MIX = {"active": 3, "idle": 2, "expired": 2, "disconnected": 3}
_PASSIVE_DETAIL = {
    "envelope": "{n} list, read and revoke answers",
    "x-request-id": "{n} responses",
    "derived-status-disconnected": "{n} session objects",
    "derived-status-expired": "{n} connected sessions judged against the server's Date",
    "derived-status-idle": "{n} connected, unexpired sessions judged against the server's Date",
    "disconnected-at": "{n} session objects",
    "timestamps-ordered": "{n} session objects",
    "agent-id": "{n} session objects",
}


def run_contract(target: Target, options: Options | None = None) -> Report:
    """Check ``target`` against the contract; a :class:`Report` with a verdict per rule.

    Raises :class:`ContractError` (the CLI's exit 2) when no verdict is possible: the
    target is down or is not this API, the credentials do not work, the options are wrong.
    """
    options = options or Options()
    started = time.monotonic()
    seed = options.seed if options.seed is not None else random.randrange(2**31)
    progress = options.progress or (lambda line: None)
    _validate(target, options)
    spec = ApiSpec.load(options.spec)
    limiter = RateLimiter.from_text(options.rate_limit) if options.rate_limit else None
    control = ControlPlane.detect(target.base_url, target.mock_admin_token, options.timeout)
    destructive = options.destructive if options.destructive is not None else control is not None
    state = control.export_state() if control is not None else None
    idle_after = options.idle_after or _mock_idle_after(state) or DEFAULT_IDLE_AFTER
    client = ApiClient(
        target.base_url, token=target.token, client_id=target.client_id,
        client_secret=target.client_secret, limiter=limiter, timeout=options.timeout,
        destructive=destructive,
    )
    client.redact.add(target.mock_admin_token)
    passive = PassiveRules(spec, idle_after)
    client.observers.append(passive)
    report = Report(base_url=client.base_url, application_id=target.application_id, seed=seed,
                    destructive=destructive, control_plane=control is not None)
    mode = "destructive" if destructive else "read-only"
    progress(f"kontext-contract: {client.base_url} ({mode}, seed {seed}"
             f"{', control plane found' if control else ''})")
    outcomes: dict[str, Outcome] = {}
    try:
        check_is_this_api(client, target.application_id)
        client.token()
        saved = state if destructive and options.restore else None
        saved_at = time.monotonic()
        try:
            ctx = _context(client, spec, options, seed, passive, control, state, target,
                           progress, destructive)
            ctx.extra["idle_after"] = idle_after
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
    for name in PASSIVE_RULES:
        if _wanted(name, options) and name not in outcomes:
            n = passive.checks[name]
            if n == 0:
                outcomes[name] = Outcome.skipped("nothing to check: no such answer was seen")
            else:
                outcomes[name] = Outcome.judged(passive.found(name), n,
                                                _PASSIVE_DETAIL[name].format(n=n))
    if client.token_refreshes:
        report.notes.append(f"the token expired during the run and was fetched again "
                            f"{client.token_refreshes} time(s)")
    report.results = _results(outcomes, options, destructive, control is not None)
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
    unknown = [s for s in options.skip if s not in RULES and not s.startswith("schema-")]
    if unknown:
        raise ContractError(f"unknown rule(s) to skip: {', '.join(sorted(unknown))}")
    if options.max_examples < 1:
        raise ContractError("--max-examples must be at least 1")


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
            control.set_clock(now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                              frozen=bool(clock.get("frozen")))
        except ContractError as exc:
            done += f"; the clock could not be put back ({str(exc)[:200]})"
    return done


def _context(client: ApiClient, spec: ApiSpec, options: Options, seed: int,
             passive: PassiveRules, control: ControlPlane | None,
             state: dict[str, Any] | None, target: Target,
             progress: Callable[[str], None], destructive: bool) -> RunContext:
    """Resolve the application under test (creating one on a mock), foreign ids, served ops."""
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
        if destructive:
            # An application of the same organization (revoke-all runs there), and one of
            # another: their sessions are foreign to the application under test.
            extra["revoke_application"], made_foreign = _scratch_application(
                control, org, "kontext-contract revoke", _REVOKE_MIX)
            other = control.call("POST", "/organizations", {"name": "kontext-contract other"})
            _, elsewhere = _scratch_application(
                control, str(other["organization"]["id"]), "kontext-contract other",
                {"active": 1})
            made_foreign = made_foreign[:2] + elsewhere
            extra["organization_id"] = org
    if app_id is None:
        raise ContractError(
            "give --application-id: an application with sessions to read"
            + ("" if control is None else " (a read-only run creates no data on the mock)"))
    check_application(client, app_id)
    foreign = list(options.foreign_session_ids) + made_foreign
    if state is not None:
        foreign += _foreign_sessions(state, app_id)
    ctx = RunContext(client=client, spec=spec, options=options, application_id=app_id,
                     seed=seed, passive=passive, control=control, foreign_session_ids=foreign,
                     notes=notes, progress=progress, extra=extra)
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

    def wanted(name: str) -> bool:
        return _wanted(name, options)

    if "semantic" in options.layers:
        ctx.progress("semantic properties (hypothesis, read-only):")
        out.update(SemanticLayer(ctx).run(wanted))
    if "stateful" in options.layers and ctx.destructive:
        ctx.progress("stateful properties (destructive):")
        out.update(StatefulLayer(ctx).run(wanted))
    if "schema" in options.layers:
        ctx.progress("schema conformance (schemathesis):")
        ids = [str(s["id"]) for s in ctx.list_sessions({"status": "all", "limit": 200})[0]]
        out.update(SchemaLayer(ctx, ids).run())
    return out


def _results(outcomes: dict[str, Outcome], options: Options, destructive: bool,
             control: bool) -> list[RuleResult]:
    names = list(RULES) + sorted(n for n in outcomes if n not in RULES)
    results: list[RuleResult] = []
    for name in names:
        r = rule(name)
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
        results.append(RuleResult(r, outcome.status, outcome.detail, outcome.violations,
                                  outcome.checks, outcome.duration))
    return results
