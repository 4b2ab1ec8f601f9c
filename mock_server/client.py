"""A client of a running mock's control plane (what the ``kontext-mock`` commands use).

>>> mock = ControlClient("http://127.0.0.1:8080")
>>> mock.advance("PT10M")["now"]
>>> for event in mock.events(types=["session.disconnected"], limit=1): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import requests

__all__ = ["DEFAULT_URL", "ControlClient", "ControlError"]

DEFAULT_URL = "http://127.0.0.1:8080"


class ControlError(Exception):
    """The mock refused a control request, or could not be reached (``status`` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ControlClient:
    """The control plane of the mock at ``url`` (its admin token, if it has one)."""

    def __init__(self, url: str = DEFAULT_URL, admin_token: str | None = None,
                 timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # imported here: `kontext-mock serve` loads this module but never makes a client,
        # and requests is a tenth of its start-up
        import requests

        self._errors = requests.RequestException
        self.http = requests.Session()
        if admin_token:
            self.http.headers["Authorization"] = f"Bearer {admin_token}"

    def _call(self, method: str, path: str, body: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        try:
            response = self.http.request(
                method, f"{self.url}/_mock{path}", params=params, timeout=self.timeout,
                data=None if body is None else orjson.dumps(body),
                headers=None if body is None else {"Content-Type": "application/json"},
            )
        except self._errors as exc:
            raise ControlError(f"cannot reach the mock at {self.url}: {exc}") from None
        return _answer(response)

    # -- clock -----------------------------------------------------------------------------

    def clock(self) -> dict[str, Any]:
        """``{"now", "frozen"}``."""
        return self._call("GET", "/clock")  # type: ignore[no-any-return]

    def advance(self, by: str | float) -> dict[str, Any]:
        """Move the clock forward (``PT10M``, ``90``, ``1h30m``)."""
        return self._call("POST", "/clock/advance", {"by": by})  # type: ignore[no-any-return]

    def set_time(self, to: str, frozen: bool | None = None) -> dict[str, Any]:
        """Set the clock to an ISO 8601 instant."""
        body: dict[str, Any] = {"to": to}
        if frozen is not None:
            body["frozen"] = frozen
        return self._call("POST", "/clock/set", body)  # type: ignore[no-any-return]

    def freeze(self) -> dict[str, Any]:
        """Stop the clock."""
        return self._call("POST", "/clock/freeze")  # type: ignore[no-any-return]

    def unfreeze(self) -> dict[str, Any]:
        """Let the clock run."""
        return self._call("POST", "/clock/unfreeze")  # type: ignore[no-any-return]

    # -- state -----------------------------------------------------------------------------

    def reset(self, **fields: Any) -> dict[str, Any]:
        """Reset or seed (``seed``, ``empty``, ``organizations``, ``applications``,
        ``sessions``, ``statusMix``); returns the summary."""
        body = {k: v for k, v in fields.items() if v is not None}
        return self._call("POST", "/reset", body)  # type: ignore[no-any-return]

    def scenarios(self) -> list[dict[str, str]]:
        """The scenarios the mock can load by name."""
        return self._call("GET", "/scenarios")["items"]  # type: ignore[no-any-return]

    def load_scenario(self, name: str) -> dict[str, Any]:
        """Load a scenario by name."""
        return self._call("POST", "/scenarios/load", {"name": name})  # type: ignore[no-any-return]

    def revoke(self, application_id: str) -> int:
        """Revoke all sessions of an application; how many were disconnected."""
        answer = self._call("POST", f"/applications/{application_id}/revoke")
        return int(answer["disconnectedCount"])

    def export_state(self) -> dict[str, Any]:
        """The whole state."""
        return self._call("GET", "/state")  # type: ignore[no-any-return]

    def import_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """Replace the whole state."""
        return self._call("PUT", "/state", state)  # type: ignore[no-any-return]

    # -- events ----------------------------------------------------------------------------

    def events(self, types: list[str] | None = None, since: int | None = None,
               limit: int | None = None, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Events from the server-sent stream, as they come (ends after ``limit`` or
        ``timeout`` when given, else when the connection ends)."""
        params: dict[str, Any] = {}
        if types:
            params["types"] = ",".join(types)
        for key, value in (("since", since), ("limit", limit), ("timeout", timeout)):
            if value is not None:
                params[key] = value
        try:
            response = self.http.get(f"{self.url}/_mock/events", params=params, stream=True,
                                     timeout=(self.timeout, None))
        except self._errors as exc:
            raise ControlError(f"cannot reach the mock at {self.url}: {exc}") from None
        with response:
            if response.status_code != 200:
                _answer(response)
            data: list[str] = []
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield orjson.loads("\n".join(data))
                    data = []


def _answer(response: requests.Response) -> Any:
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.status_code >= 400:
        message = body.get("message") if isinstance(body, dict) else None
        raise ControlError(message or f"HTTP {response.status_code}", response.status_code)
    return body
