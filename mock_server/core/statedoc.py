"""The whole state as one JSON document: export, and the checked reading of an import.

The document holds every record, the clock, the seeding settings, lifecycles, fault
rules and the rate limit; importing it gives an identical mock, and exporting that
mock gives the same document. Lists come out in a fixed order (records in the store's
order, sessions in list order per application), so equal states export equal bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kontext_mock.core.durations import DurationError, format_instant, parse_instant
from kontext_mock.core.errors import UnprocessableError
from kontext_mock.core.faults import FaultRule
from kontext_mock.core.fields import (
    RecordError,
    application_record,
    check_instant,
    client_from_record,
    client_record,
    organization_record,
    session_from_record,
    token_from_record,
    token_record,
)
from kontext_mock.core.lifecycles import Script
from kontext_mock.core.records import Application, Organization
from kontext_mock.core.store import Store, StoreError

if TYPE_CHECKING:
    from kontext_mock.core.state import MockState

__all__ = ["FORMAT", "Imported", "export_state", "read_state"]

FORMAT = "kontext-mock-state/1"


@dataclass
class Imported:
    """A checked state document, ready to install."""

    store: Store
    now: datetime
    frozen: bool
    settings: dict[str, Any]
    scripts: list[Script]
    faults: list[dict[str, Any]]
    faults_made: int
    rate_limit: int | None
    sessions_made: int


def export_state(mock: MockState, *, records: bool = True) -> dict[str, Any]:
    """The mock's whole state as JSON-ready data (call with the store's lock held);
    ``records=False`` leaves out the records and lifecycles (what a state file's log
    writes whole with every change)."""
    store, config = mock.store, mock.config
    document: dict[str, Any] = {
        "format": FORMAT,
        "clock": {"now": format_instant(mock.clock.now()), "frozen": mock.clock.frozen},
        "settings": {
            "seed": config.seed,
            "organizations": config.organizations,
            "applications": config.applications,
            "sessions": config.sessions,
            "statusMix": dict(config.status_mix),
            "idleAfter": config.idle_after.total_seconds(),
            "tokenTtl": config.token_ttl.total_seconds(),
            "sessionTokenTtl": config.session_token_ttl.total_seconds(),
            "sessionsMade": mock.sessions_made,
            "faultsMade": mock.faults.made,
        },
        "faults": mock.faults.export(),
        "rateLimit": {"perMinute": mock.limiter.per_minute},
    }
    if records:
        document.update(
            organizations=[organization_record(o) for o in store.organizations.values()],
            applications=[application_record(a) for a in store.applications.values()],
            clients=[client_record(c) for c in store.clients.values()],
            tokens=[token_record(t) for t in store.tokens.values()],
            sessions=[
                s.to_record()
                for app_id in store.applications
                for s in store.application_sessions(app_id)
            ],
            lifecycles=mock.lifecycles.export(),
        )
    return document


def read_state(data: Mapping[str, Any], max_sessions: int) -> Imported:
    """Check a state document whole; UnprocessableError naming the first bad field."""
    try:
        return _read(data, max_sessions)
    except _FieldError as exc:
        raise UnprocessableError([{"field": exc.field, "message": exc.message}]) from None


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _read(data: Mapping[str, Any], max_sessions: int) -> Imported:
    if data.get("format") != FORMAT:
        raise _FieldError("format", f"must be {FORMAT!r}")
    clock = data.get("clock") or {}
    try:
        now = check_instant(parse_instant(clock["now"]), "clock.now")
    except (KeyError, TypeError, DurationError, RecordError) as exc:
        raise _FieldError("clock.now", f"not a usable instant: {exc}") from None
    settings = dict(data.get("settings") or {})
    for key in ("idleAfter", "tokenTtl", "sessionTokenTtl"):
        if not isinstance(settings.get(key), int | float) or settings[key] < 0:
            raise _FieldError(f"settings.{key}", "must be a number of seconds")
    sessions = data.get("sessions") or []
    if len(sessions) > max_sessions:
        raise _FieldError("sessions", f"{len(sessions)} sessions; the mock holds at most {max_sessions}")
    store = Store()
    for kind, items in (("organizations", data.get("organizations") or []),
                        ("applications", data.get("applications") or [])):
        for i, item in enumerate(items):
            try:
                if kind == "organizations":
                    store.add_organization(Organization(str(item["id"]), str(item["name"])))
                else:
                    store.add_application(Application(
                        str(item["id"]), str(item["organizationId"]), str(item["name"])))
            except (KeyError, StoreError) as exc:
                raise _FieldError(f"{kind}[{i}]", str(exc)) from None
    for i, item in enumerate(data.get("clients") or []):
        try:
            store.add_client(client_from_record(item))
        except RecordError as exc:
            raise _FieldError(f"clients[{i}].{exc.field}", exc.message) from None
        except StoreError as exc:
            raise _FieldError(f"clients[{i}]", str(exc)) from None
    for i, item in enumerate(data.get("tokens") or []):
        try:
            token = token_from_record(item)
        except RecordError as exc:
            raise _FieldError(f"tokens[{i}].{exc.field}", exc.message) from None
        if token.client_id not in store.clients:
            raise _FieldError(f"tokens[{i}].clientId", f"unknown client {token.client_id!r}")
        store.add_token(token)
    parsed = []
    for i, item in enumerate(sessions):
        try:
            parsed.append(session_from_record(item))
        except RecordError as exc:
            raise _FieldError(f"sessions[{i}].{exc.field}", exc.message) from None
    try:
        store.add_sessions(parsed)
    except StoreError as exc:
        raise _FieldError("sessions", str(exc)) from None
    scripts = []
    for i, item in enumerate(data.get("lifecycles") or []):
        try:
            script = Script.from_dict(item)
        except RecordError as exc:
            raise _FieldError(f"lifecycles[{i}].{exc.field}", exc.message) from None
        if script.session_id not in store.sessions:
            raise _FieldError(f"lifecycles[{i}].sessionId", f"unknown session {script.session_id!r}")
        scripts.append(script)
    faults = list(data.get("faults") or [])
    for i, item in enumerate(faults):
        try:
            FaultRule.from_dict(item)
        except (KeyError, TypeError, ValueError) as exc:
            raise _FieldError(f"faults[{i}]", f"unreadable fault rule: {exc}") from None
    rate = (data.get("rateLimit") or {}).get("perMinute")
    return Imported(
        store=store,
        now=now,
        frozen=bool(clock.get("frozen", True)),
        settings={
            "seed": int(settings.get("seed", 1)),
            "organizations": int(settings.get("organizations", 1)),
            "applications": int(settings.get("applications", 2)),
            "sessions": int(settings.get("sessions", 20)),
            "status_mix": dict(settings.get("statusMix") or {}),
            "idle_after": timedelta(seconds=settings["idleAfter"]),
            "token_ttl": timedelta(seconds=settings["tokenTtl"]),
            "session_token_ttl": timedelta(seconds=settings["sessionTokenTtl"]),
        },
        scripts=scripts,
        faults=faults,
        faults_made=int(settings.get("faultsMade", 0)),
        rate_limit=None if rate is None else int(rate),
        sessions_made=int(settings.get("sessionsMade", 0)),
    )
