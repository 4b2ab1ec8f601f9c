"""A client of a running mock's control plane (``/_mock``, see ``control.yaml``).

The one client of it: the ``kontext-mock`` commands use it as it is, and the contract
kit through :class:`kontext_mock.contracts.control.ControlPlane`, which turns its errors
into the kit's. It speaks HTTP through the standard library (``urllib``), so that a
command that moves the clock loads nothing more than it needs.

>>> mock = ControlClient("http://127.0.0.1:8080")
>>> mock.advance("PT10M")["now"]
>>> for event in mock.events(types=["session.disconnected"], limit=1): ...
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlencode

import orjson

if TYPE_CHECKING:
    import urllib.request

__all__ = ["DEFAULT_URL", "ControlClient", "ControlError", "connection_never_opened",
           "connection_problem"]

DEFAULT_URL = "http://127.0.0.1:8080"
#: the longest an event stream may be quiet before the client gives up on the mock: the
#: mock sends a keep-alive comment every 15 s
_STREAM_QUIET = 60.0


class ControlError(Exception):
    """The mock refused a control request (``status``, the mock's message, its whole error
    ``body``), or could not be reached (``status`` None)."""

    def __init__(self, message: str, status: int | None = None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ControlClient:
    """The control plane of the mock at ``url`` (its admin token, if it has one)."""

    def __init__(self, url: str = DEFAULT_URL, admin_token: str | None = None,
                 timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers: dict[str, str] = {"Accept": "application/json"}
        if admin_token:
            self.headers["Authorization"] = f"Bearer {admin_token}"

    @classmethod
    def detect(cls, url: str, admin_token: str | None = None,
               timeout: float = 30.0) -> Self | None:
        """A client, when ``url`` has a control plane (``GET /_mock/clock`` answers with a
        clock); else None (a real implementation of the API has none)."""
        plane = cls(url, admin_token, timeout)
        try:
            clock = plane._send("GET", "/clock")
        except ControlError:
            clock = None
        if isinstance(clock, dict) and "now" in clock:
            return plane
        plane.close()
        return None

    def call(self, method: str, path: str, body: Any = None,
             params: dict[str, Any] | None = None) -> Any:
        """One request to ``/_mock{path}``: its JSON answer (None when empty); when the
        mock refuses it or cannot be reached, what :meth:`refusal` makes of the
        :class:`ControlError`."""
        try:
            return self._send(method, path, body, params)
        except ControlError as exc:
            raise self.refusal(exc, method, path) from None

    def refusal(self, error: ControlError, method: str, path: str) -> Exception:
        """The exception :meth:`call` raises for ``error``: the error itself here; a
        caller with errors of its own (the contract kit) overrides it."""
        return error

    def _send(self, method: str, path: str, body: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        # imported here: `kontext-mock serve` loads this module but never makes a request
        import http.client
        import urllib.error
        import urllib.request

        request = self._request(method, path, body, params)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return _answer(response.status, response.read(), request.full_url)
        except urllib.error.HTTPError as refused:
            with refused:
                return _answer(refused.code, refused.read(), request.full_url)
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            raise self._unreachable(exc) from None

    def _request(self, method: str, path: str, body: Any = None,
                 params: dict[str, Any] | None = None) -> urllib.request.Request:
        import urllib.request

        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        if not self.url.startswith(("http://", "https://")):
            raise ControlError(f"cannot reach the mock at {self.url}: not an http:// URL")
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        # the scheme is checked above: never file: or another urllib opens
        return urllib.request.Request(  # noqa: S310
            f"{self.url}/_mock{path}{'?' + query if query else ''}", method=method,
            data=None if body is None else orjson.dumps(body), headers=headers)

    def _unreachable(self, exc: Exception) -> ControlError:
        return ControlError(f"cannot reach the mock at {self.url}: {connection_problem(exc)}")

    def close(self) -> None:
        """Nothing to release (a connection per request); kept for callers that close."""

    # -- clock -----------------------------------------------------------------------------

    def clock(self) -> dict[str, Any]:
        """``{"now", "frozen"}``."""
        return dict(self.call("GET", "/clock"))

    def advance(self, by: str | float) -> dict[str, Any]:
        """Move the clock forward (``PT10M``, ``90``, ``1h30m``)."""
        return dict(self.call("POST", "/clock/advance", {"by": by}))

    def set_time(self, to: str, frozen: bool | None = None) -> dict[str, Any]:
        """Set the clock to an instant (ISO 8601, ``now``, or relative: ``+1h30m``),
        optionally freezing or unfreezing it."""
        body: dict[str, Any] = {"to": to}
        if frozen is not None:
            body["frozen"] = frozen
        return dict(self.call("POST", "/clock/set", body))

    def freeze(self) -> dict[str, Any]:
        """Stop the clock."""
        return dict(self.call("POST", "/clock/freeze"))

    def unfreeze(self) -> dict[str, Any]:
        """Let the clock run."""
        return dict(self.call("POST", "/clock/unfreeze"))

    # -- state -----------------------------------------------------------------------------

    def reset(self, **fields: Any) -> dict[str, Any]:
        """Reset or seed (``seed``, ``empty``, ``organizations``, ``applications``,
        ``sessions``, ``statusMix``); returns the summary."""
        body = {k: v for k, v in fields.items() if v is not None}
        return dict(self.call("POST", "/reset", body))

    def scenarios(self) -> list[dict[str, str]]:
        """The scenarios the mock can load by name."""
        return list(self.call("GET", "/scenarios")["items"])

    def load_scenario(self, name: str) -> dict[str, Any]:
        """Load a scenario by name."""
        return dict(self.call("POST", "/scenarios/load", {"name": name}))

    def load_scenario_text(self, text: str) -> dict[str, Any]:
        """Load a scenario from its YAML text (the control plane never reads a path)."""
        return dict(self.call("POST", "/scenarios/load", {"yaml": text}))

    def export_state(self) -> dict[str, Any]:
        """The whole state (records, clock, settings)."""
        return dict(self.call("GET", "/state"))

    def import_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """Replace the whole state with an exported one; returns the summary."""
        return dict(self.call("PUT", "/state", state))

    # -- data ------------------------------------------------------------------------------

    def revoke(self, application_id: str) -> int:
        """Revoke all sessions of an application; how many were disconnected."""
        answer = self.call("POST", f"/applications/{application_id}/revoke")
        return int(answer["disconnectedCount"])

    def create_organization(self, name: str) -> dict[str, Any]:
        """A new organization."""
        return dict(self.call("POST", "/organizations", {"name": name})["organization"])

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
        for key, value in (("applicationId", application_id), ("organizationId", organization_id),
                           ("token", token)):
            if value:
                body[key] = value
        return dict(self.call("POST", "/clients", body)["client"])

    def journal(self, method: str | None = None, path: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
        """What clients sent to the public API (only ``method``, paths matching the glob
        ``path``, the latest ``limit``), oldest first."""
        params = {"method": method, "path": path, "limit": limit}
        return list(self.call("GET", "/journal", params=params)["items"])

    def clear_journal(self) -> int:
        """Forget the journal; how many entries it held."""
        return int(self.call("DELETE", "/journal")["removed"])

    # -- faults and the rate limit ---------------------------------------------------------

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules in force, in the order they are matched."""
        return list(self.call("GET", "/faults")["items"])

    def add_fault(self, **fields: Any) -> dict[str, Any]:
        """A fault rule (``method``, ``path``, ``latency``, ``status``, ``drop``, ``times``,
        ``probability``, ``seed``: see ``control.yaml``); fields given None are left out."""
        body = {k: v for k, v in fields.items() if v is not None}
        return dict(self.call("POST", "/faults", body)["fault"])

    def clear_faults(self, fault_id: str | None = None) -> int:
        """Remove one fault rule, or all of them; how many were removed."""
        path = f"/faults/{fault_id}" if fault_id else "/faults"
        return int(self.call("DELETE", path)["removed"])

    def rate_limit(self) -> int | None:
        """Requests a minute per credential, or None when there is no limit."""
        value = self.call("GET", "/rate-limit")["perMinute"]
        return None if value is None else int(value)

    def set_rate_limit(self, per_minute: int | None) -> int | None:
        """Limit the public API to ``per_minute`` requests a minute per credential (None:
        no limit); the limit now in force."""
        value = self.call("PUT", "/rate-limit", {"perMinute": per_minute})["perMinute"]
        return None if value is None else int(value)

    # -- events ----------------------------------------------------------------------------

    def events(self, types: list[str] | None = None, since: int | None = None,
               limit: int | None = None, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Events from the server-sent stream, as they come (ends after ``limit`` or
        ``timeout`` when given, else when the connection ends)."""
        params: dict[str, Any] = {"types": ",".join(types) if types else None, "since": since,
                                  "limit": limit, "timeout": timeout}
        import http.client
        import urllib.error
        import urllib.request

        request = self._request("GET", "/events", params=params)
        request.add_header("Accept", "text/event-stream")
        try:
            response = urllib.request.urlopen(  # noqa: S310
                request, timeout=max(self.timeout, _STREAM_QUIET))
        except urllib.error.HTTPError as refused:
            with refused:
                _answer(refused.code, refused.read(), request.full_url)
            return
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from None
        with response:
            data: list[str] = []
            try:
                for raw in response:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif not line and data:
                        yield orjson.loads("\n".join(data))
                        data = []
            except (OSError, http.client.HTTPException) as exc:
                raise self._unreachable(exc) from None


def connection_problem(exc: BaseException) -> str:
    """What went wrong with a connection, in a few words ("connection refused"), read from
    the exceptions' types and errno along the chain (never from their messages), not the
    chain of exceptions a ``requests`` or ``urllib`` error prints."""
    import http.client  # (imported where used: the CLI's start stays light)

    for cause in _chain(exc):
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "name or service not known"
        if isinstance(cause, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, http.client.RemoteDisconnected):
            return "remote end closed connection"
        if getattr(cause, "errno", None) in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "no route to host"
    return "connection failed"


def connection_never_opened(exc: BaseException) -> bool:
    """True when the connection a request needed was never opened (refused, unreachable,
    the connect timed out): nothing of the request was sent, so sending it again cannot
    apply it twice. Read from urllib3's exception types along the chain."""
    from urllib3.exceptions import ConnectTimeoutError  # (NewConnectionError is one too)

    return any(isinstance(cause, ConnectTimeoutError) for cause in _chain(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it: ``__cause__``, ``__context__``, a ``URLError``'s
    ``reason``, a ``requests``/urllib3 error's first argument or ``reason`` (bounded)."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(seen) < 32:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None),
                     *item.args[:1]])
    return seen


def _answer(status: int, content: bytes, url: str) -> Any:
    try:
        body = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        body = None
    if status >= 400:
        message = body.get("message") if isinstance(body, dict) else None
        if not message:
            text = " ".join(content.decode("utf-8", "replace").split())[:300]
            message = f"HTTP {status}{f': {text}' if text else ''}"
        raise ControlError(message, status, body if isinstance(body, dict) else None)
    if body is None and content:
        raise ControlError(f"not the mock's control plane: {url} answered no JSON", status)
    return body
