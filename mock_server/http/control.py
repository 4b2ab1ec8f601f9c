"""Handlers of the control plane's operations (``control.yaml``, under ``/_mock``).

Like the public API's handlers, each gets a validated :class:`~kontext_mock.http.routing.Call`
and asks the :class:`~kontext_mock.core.engine.MockEngine`; the Python methods are the
operations, these only translate. Values the schema cannot judge (a duration that does
not parse, an instant out of range) come back from the mock as ``ValueError`` and are
answered 422 here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Response

from kontext_mock.core.clock import ClockError
from kontext_mock.core.credentials import ALL_SCOPE
from kontext_mock.core.durations import DurationError
from kontext_mock.core.errors import UnprocessableError
from kontext_mock.core.fields import RecordError, application_record
from kontext_mock.http.routing import Call, Handler
from kontext_mock.http.serving.exchange import Answer, StreamAnswer, json_answer
from kontext_mock.http.streams import (
    STOPPING_EVENT,
    StreamPlan,
    async_event_stream,
    event_stream,
    open_stream,
)
from kontext_mock.http.ui import file_response, redirect_response

if TYPE_CHECKING:
    from kontext_mock.core.engine import MockEngine
    from kontext_mock.http.spec import Spec

__all__ = ["handlers"]


def _unprocessable(field: str | None, handler: Callable[[], Any]) -> Any:
    try:
        return handler()
    except (DurationError, ClockError, RecordError) as exc:
        raise UnprocessableError([{"field": field, "message": str(exc)}]) from None


def _int(value: Any) -> int | None:
    """JSON Schema's integers include 1.0; the mock counts with ints."""
    return None if value is None else int(value)


def _types(call: Call) -> frozenset[str] | None:
    raw = call.params.get("types")
    return frozenset(raw.split(",")) if raw else None


def handlers(mock: MockEngine, spec: Spec) -> dict[str, Handler]:
    """The handler of every control-plane operation, by operationId."""

    def clock_state() -> Answer:
        return json_answer(mock.clock_state())

    def get_control_spec(call: Call) -> Answer:
        return json_answer(spec.document)

    def get_clock(call: Call) -> Answer:
        mock.tick()
        return clock_state()

    def advance_clock(call: Call) -> Answer:
        _unprocessable("by", lambda: mock.advance(call.body["by"]))
        return clock_state()

    def set_clock(call: Call) -> Answer:
        body = call.body
        _unprocessable("to", lambda: mock.set_time(body["to"]))
        if body.get("frozen") is True:
            mock.freeze()
        elif body.get("frozen") is False:
            mock.unfreeze()
        return clock_state()

    def freeze_clock(call: Call) -> Answer:
        mock.freeze()
        return clock_state()

    def unfreeze_clock(call: Call) -> Answer:
        mock.unfreeze()
        return clock_state()

    def reset(call: Call) -> Answer:
        body = call.body or {}
        mock.reset(
            seed=_int(body.get("seed")),
            empty=bool(body.get("empty", False)),
            organizations=_int(body.get("organizations")),
            applications=_int(body.get("applications")),
            sessions=_int(body.get("sessions")),
            status_mix=body.get("statusMix"),
        )
        return json_answer(mock.summary())

    def export_state(call: Call) -> Answer:
        return json_answer(mock.export_state())

    def import_state(call: Call) -> Answer:
        mock.import_state(call.body)
        return json_answer(mock.summary())

    def list_scenarios(call: Call) -> Answer:
        return json_answer({"items": [
            {"name": name, "description": description}
            for name, description in mock.scenarios()
        ]})

    def load_scenario(call: Call) -> Answer:
        body = call.body
        if "yaml" in body:
            name = mock.load_scenario_text(body["yaml"])
        else:
            name = body["name"]
            mock.load_scenario(name)
        return json_answer({**mock.summary(), "scenario": name})

    def create_organization(call: Call) -> Answer:
        body = call.body or {}
        org = mock.add_organization(id=body.get("id"), name=body.get("name"))
        return json_answer({"organization": {"id": org.id, "name": org.name}}, 201)

    def create_application(call: Call) -> Answer:
        body = call.body or {}
        app = mock.add_application(
            organization_id=body.get("organizationId"), id=body.get("id"), name=body.get("name"),
        )
        return json_answer({"application": application_record(app)}, 201)

    def create_client(call: Call) -> Answer:
        b = call.body
        client = mock.add_client(
            client_id=b["clientId"], client_secret=b["clientSecret"],
            scopes=b.get("scopes", [ALL_SCOPE]),
            organization_id=b.get("organizationId"), application_id=b.get("applicationId"),
            name=b.get("name"), token=b.get("token"),
        )
        return json_answer({"client": mock.client_info(client.client_id)}, 201)

    def create_session(call: Call) -> Answer:
        fields = dict(call.body or {})
        app_id = fields.pop("applicationId", None)
        state = fields.pop("state", "active")
        session = mock.add_session(app_id, state, **fields)
        return json_answer(mock.session_detail(session["id"]), 201)

    def get_mock_session(call: Call) -> Answer:
        return json_answer(mock.session_detail(call.params["sessionId"]))

    def update_session(call: Call) -> Answer:
        session_id = call.params["sessionId"]
        mock.update_session(session_id, **call.body)
        return json_answer(mock.session_detail(session_id))

    def list_applications(call: Call) -> Answer:
        return json_answer({"items": mock.applications()})

    def page_sessions(call: Call) -> Answer:
        p = call.params
        return json_answer(mock.session_page(
            p["applicationId"], status=p["status"], offset=p["offset"], limit=p["limit"]))

    def revoke_application(call: Call) -> Answer:
        count = mock.revoke_all(call.params["applicationId"])
        return json_answer({"success": True, "disconnectedCount": count})

    def list_faults(call: Call) -> Answer:
        return json_answer({"items": mock.faults.export()})

    def add_fault(call: Call) -> Answer:
        b = call.body
        fault_id = mock.add_fault(
            b.get("method", "*"), b.get("path", "/api/v1/*"),
            latency=b.get("latency"), status=_int(b.get("status")),
            drop=bool(b.get("drop", False)), times=_int(b.get("times")),
            probability=b.get("probability"), seed=_int(b.get("seed")),
        )
        rule = next(r for r in mock.faults.export() if r["id"] == fault_id)
        return json_answer({"fault": rule}, 201)

    def clear_faults(call: Call) -> Answer:
        return json_answer({"removed": mock.clear_faults()})

    def delete_fault(call: Call) -> Answer:
        mock.remove_fault(call.params["faultId"])
        return json_answer({"removed": 1})

    def rate_limit_state() -> Answer:
        return json_answer({"perMinute": mock.limiter.per_minute})

    def get_rate_limit(call: Call) -> Answer:
        return rate_limit_state()

    def set_rate_limit(call: Call) -> Answer:
        mock.rate_limit(_int(call.body["perMinute"]))
        return rate_limit_state()

    def read_journal(call: Call) -> Answer:
        items = mock.journal.entries(call.params.get("method"), call.params.get("path"),
                                     _int(call.params.get("limit")))
        return json_answer({"items": items})

    def clear_journal(call: Call) -> Answer:
        return json_answer({"removed": mock.journal.clear()})

    def stream_events(call: Call) -> Answer:
        since = call.params.get("since")
        if since is None and call.params.get("Last-Event-ID") is not None:
            since = int(call.params["Last-Event-ID"])
        plan = StreamPlan(types=_types(call), since=since, limit=_int(call.params.get("limit")),
                          timeout=call.params.get("timeout"))
        subscription = open_stream(mock, plan)  # 503 when every place is taken
        return StreamAnswer(
            200, [("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no"),
                  ("Content-Type", "text/event-stream; charset=utf-8")],
            # on the server's loop, holding no thread; or in an in-process client's thread
            stream=functools.partial(async_event_stream, mock, plan, subscription),
            chunks=lambda gone: event_stream(mock, plan, subscription, gone=gone),
            release=subscription.close,
            last=STOPPING_EVENT,
        )

    def event_history(call: Call) -> Answer:
        mock.tick()
        events = mock.events.since(call.params.get("since") or 0, _types(call))
        return json_answer({"items": [e.to_dict() for e in events]})

    def redirect_dashboard(call: Call) -> Response:
        return redirect_response()

    def get_dashboard(call: Call) -> Response:
        return file_response("index.html")

    def get_dashboard_file(call: Call) -> Response:
        return file_response(call.params["file"])

    return {
        "getControlSpec": get_control_spec,
        "getClock": get_clock,
        "advanceClock": advance_clock,
        "setClock": set_clock,
        "freezeClock": freeze_clock,
        "unfreezeClock": unfreeze_clock,
        "resetMock": reset,
        "exportState": export_state,
        "importState": import_state,
        "listScenarios": list_scenarios,
        "loadScenario": load_scenario,
        "createOrganization": create_organization,
        "createApplication": create_application,
        "createClient": create_client,
        "createSession": create_session,
        "getMockSession": get_mock_session,
        "updateSession": update_session,
        "listMockApplications": list_applications,
        "pageSessions": page_sessions,
        "revokeApplication": revoke_application,
        "listFaults": list_faults,
        "addFault": add_fault,
        "clearFaults": clear_faults,
        "deleteFault": delete_fault,
        "getRateLimit": get_rate_limit,
        "setRateLimit": set_rate_limit,
        "readJournal": read_journal,
        "clearJournal": clear_journal,
        "streamEvents": stream_events,
        "eventHistory": event_history,
        "redirectDashboard": redirect_dashboard,
        "getDashboard": get_dashboard,
        "getDashboardFile": get_dashboard_file,
    }
