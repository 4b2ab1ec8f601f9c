"""The mock's control plane (``/_mock``, see ``mock_server/control.yaml``), where the target has one.

A real implementation has none: the kit detects it (``GET /_mock/clock`` answers 200
with a clock) and uses it only to set up data, move the clock and put the state back.
"""

from __future__ import annotations

from typing import Any

import orjson
import requests

from kontext_mock.contracts.errors import ContractError, TargetUnavailableError

__all__ = ["ControlPlane"]


class ControlPlane:
    """A client of the mock's control plane."""

    def __init__(self, base_url: str, admin_token: str | None = None,
                 timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if admin_token:
            self.session.headers["Authorization"] = f"Bearer {admin_token}"
        self.timeout = timeout
        self.requests = 0

    @classmethod
    def detect(cls, base_url: str, admin_token: str | None = None,
               timeout: float = 15.0) -> ControlPlane | None:
        """The control plane, when ``GET /_mock/clock`` answers with a clock; else None."""
        plane = cls(base_url, admin_token, timeout)
        try:
            response = plane.session.get(f"{plane.base_url}/_mock/clock", timeout=timeout)
        except requests.RequestException:
            plane.close()
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict) and "now" in body:
            return plane
        plane.close()
        return None

    def call(self, method: str, path: str, body: Any = None,
             params: dict[str, Any] | None = None) -> Any:
        """One control-plane request; the JSON answer, or :class:`ContractError`."""
        url = f"{self.base_url}/_mock{path}"
        try:
            response = self.session.request(
                method, url, timeout=self.timeout,
                params={k: v for k, v in (params or {}).items() if v is not None} or None,
                data=None if body is None else orjson.dumps(body),
                headers={"Content-Type": "application/json"} if body is not None else None,
            )
        except requests.RequestException as exc:
            raise TargetUnavailableError(f"cannot reach the control plane at {url}: {exc}") from None
        self.requests += 1
        if response.status_code >= 400:
            text = " ".join(response.text.split())[:300]
            raise ContractError(f"the control plane refused {method} /_mock{path}: "
                                f"{response.status_code} {text}")
        return response.json() if response.content else None

    # -- clock -----------------------------------------------------------------------------

    def clock(self) -> dict[str, Any]:
        """``{"now", "frozen"}``."""
        return dict(self.call("GET", "/clock"))

    def advance(self, by: float | str) -> dict[str, Any]:
        """Move the clock forward (seconds or a duration text)."""
        return dict(self.call("POST", "/clock/advance", {"by": by}))

    def set_clock(self, to: str, frozen: bool | None = None) -> dict[str, Any]:
        """Move the clock to an instant, optionally freezing or unfreezing it."""
        body: dict[str, Any] = {"to": to}
        if frozen is not None:
            body["frozen"] = frozen
        return dict(self.call("POST", "/clock/set", body))

    def freeze(self) -> dict[str, Any]:
        """Stop the clock."""
        return dict(self.call("POST", "/clock/freeze"))

    # -- state and data --------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """The whole state (records, clock, settings)."""
        return dict(self.call("GET", "/state"))

    def import_state(self, state: dict[str, Any]) -> None:
        """Replace the whole state with an exported one."""
        self.call("PUT", "/state", state)

    def create_application(self, name: str, organization_id: str | None = None) -> dict[str, Any]:
        """A new application (in the dev organization unless given)."""
        body: dict[str, Any] = {"name": name}
        if organization_id:
            body["organizationId"] = organization_id
        return dict(self.call("POST", "/applications", body)["application"])

    def create_session(self, application_id: str, state: str = "active",
                       **fields: Any) -> dict[str, Any]:
        """A session of the application whose derived status is ``state`` now."""
        body = {"applicationId": application_id, "state": state, **fields}
        return dict(self.call("POST", "/sessions", body)["session"])

    def update_session(self, session_id: str, **fields: Any) -> dict[str, Any]:
        """Change a session's stored facts."""
        return dict(self.call("PATCH", f"/sessions/{session_id}", fields)["session"])

    def create_client(self, client_id: str, secret: str, scopes: list[str],
                      application_id: str | None = None, organization_id: str | None = None,
                      token: str | None = None) -> dict[str, Any]:
        """An OAuth client (with a static token when ``token`` is given)."""
        body: dict[str, Any] = {"clientId": client_id, "clientSecret": secret, "scopes": scopes}
        if application_id:
            body["applicationId"] = application_id
        if organization_id:
            body["organizationId"] = organization_id
        if token:
            body["token"] = token
        return dict(self.call("POST", "/clients", body)["client"])

    def journal(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """What clients sent to the public API."""
        return list(self.call("GET", "/journal", params={"method": method, "path": path})["items"])

    def close(self) -> None:
        """Release the connection pool."""
        self.session.close()
