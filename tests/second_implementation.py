"""A second implementation of the sessions API, to prove the kit on something not the mock.

It keeps every rule the vendor documents and reads three of our assumptions otherwise,
as an independent implementation (or the real API) may:

- lists are oldest ``createdAt`` first (``list-order-newest-first`` says newest first);
- a connected session goes idle after 2 minutes without activity (``idle-threshold``
  says 5);
- revoke-all terminates the active and idle sessions only: a connected session whose
  token expired stays connected (``revoke-all-disconnects-connected`` says it goes too);

and every session object carries a field the spec does not know, ``region``.

It is built on the mock's behaviour model (as a second vendor might build on a
library) but served without the mock's control plane, and nothing it sends names it:
the kit can tell it apart only by how it answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from kontext_mock import KontextMock, MockConfig
from kontext_mock.core.records import CONNECTED

from .broken_variants import WsgiApp, rewrite

__all__ = ["DIFFERENCES", "IDLE_AFTER", "REGION", "OtherSessionsApi", "build"]

IDLE_AFTER = "2m"
REGION = "eu-west-1"
#: the assumptions it reads otherwise, and the rule of the kit that sees each
DIFFERENCES = {
    "list-order-newest-first": "list-order",
    "idle-threshold": "derived-status-idle",
    "revoke-all-disconnects-connected": "revoke-persists",
}
_EVERYTHING = 10**9


class OtherSessionsApi(KontextMock):
    """The behaviour: oldest first, and revoke-all leaves expired-token sessions connected."""

    def select_sessions(self, application_id: str, status: str = "active", limit: int = 100,
                        organization_id: str | None = None) -> Any:
        rows = super().select_sessions(application_id, status, _EVERYTHING, organization_id)
        rows.sort(key=lambda row: (row[0].created_at, row[0].id))
        return rows[:limit]

    def revoke_all(self, application_id: str, organization_id: str | None = None) -> int:
        with self.store.lock:
            self.visible_application(application_id, organization_id)
            now = self.now()
            live = [s.id for s in self.store.application_sessions(application_id)
                    if s.status == CONNECTED and s.derived_status(now, self.idle_after) != "expired"]
            for session_id in live:
                self.disconnect(application_id, session_id, "revoked")
        return len(live)


def _with_region(environ: dict[str, Any], status: str, headers: list[tuple[str, str]],
                 body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """Every session object of a list or read answer gains ``region``."""
    json = any(k.lower() == "content-type" and v.startswith("application/json")
               for k, v in headers)
    if "/sessions" not in environ["PATH_INFO"] or not status.startswith("200") or not json:
        return status, headers, body
    data = orjson.loads(body)
    if isinstance(data, dict):
        for session in data.get("items") or ([data["session"]] if "session" in data else []):
            session["region"] = REGION
    return status, headers, orjson.dumps(data)


def _no_control_plane(app: WsgiApp) -> WsgiApp:
    """An implementation of the public API only: ``/_mock`` is an unknown route."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"].startswith("/_mock"):
            start_response("404 Not Found", [("Content-Type", "application/json"),
                                             ("x-request-id", "no-control-plane")])
            return [b'{"error":"not_found","message":"no such route"}']
        return app(environ, start_response)

    return wrapped


def build(seed: int = 7) -> tuple[OtherSessionsApi, WsgiApp]:
    """The implementation with data that shows each difference, and the WSGI app to serve.

    Besides its seeded sessions, the dev application has one idle for 3 minutes (idle
    here, active by the assumption) and two whose token expired while connected (left
    connected by its revoke-all).
    """
    api = OtherSessionsApi(seed=seed, idle_after=IDLE_AFTER)
    app_id = MockConfig().dev_application_id
    api.add_session(app_id, "idle", lastActiveAt="-3m", hostname="quiet-laptop.local")
    for _ in range(2):
        api.add_session(app_id, "expired")
    return api, _no_control_plane(rewrite(api.app, _with_region))
