"""``SessionsClient``: the sessions API over ``requests``.

It authenticates with a bearer token or with OAuth client credentials (fetching a new
token when the old one is refused), and retries a 429 after the time its
``Retry-After`` header asks for. The HTTP session and the sleep function are
parameters, so tests can give it an in-process transport and a virtual clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import requests

__all__ = ["ApiError", "NotFoundError", "SessionsClient"]


class ApiError(Exception):
    """An error answer of the API: HTTP status, error code and message."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message


class NotFoundError(ApiError):
    """The application or session does not exist (or is not the caller's)."""


class SessionsClient:
    """The sessions of Kontext applications: list, get, revoke all."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        http: requests.Session | None = None,
        sleep: Callable[[float], object] = time.sleep,
        max_retries: int = 3,
        timeout: float = 10.0,
    ) -> None:
        if token is None and client_id is None:
            raise ValueError("give a token, or a client_id and client_secret")
        self.base_url = base_url.rstrip("/")
        self.http = http or requests.Session()
        self.sleep = sleep
        self.max_retries = max_retries
        self.timeout = timeout
        self._token = token
        self._credentials = (client_id, client_secret) if client_id else None

    # -- the API -------------------------------------------------------------------------

    def list_sessions(self, application_id: str, status: str = "active",
                      limit: int | None = None) -> list[dict[str, Any]]:
        """The application's sessions (``active``, ``inactive`` or ``all``), newest first."""
        params: dict[str, Any] = {"status": status}
        if limit is not None:
            params["limit"] = limit
        body = self._call("GET", f"/api/v1/applications/{application_id}/sessions", params=params)
        return list(body["items"])

    def get_session(self, application_id: str, session_id: str) -> dict[str, Any]:
        """One session; :class:`NotFoundError` if it is not the application's."""
        path = f"/api/v1/applications/{application_id}/sessions/{session_id}"
        return dict(self._call("GET", path)["session"])

    def revoke_all(self, application_id: str) -> int:
        """Disconnect every connected session of the application; how many were."""
        body = self._call("DELETE", f"/api/v1/applications/{application_id}/sessions")
        return int(body["disconnectedCount"])

    def fetch_token(self) -> str:
        """A new access token by OAuth client credentials."""
        if self._credentials is None:
            raise ValueError("no client credentials to fetch a token with")
        response = self._send("POST", "/oauth2/token", auth=self._credentials,
                              data={"grant_type": "client_credentials"})
        if response.status_code != 200:
            raise _error(response)
        self._token = str(response.json()["access_token"])
        return self._token

    # -- plumbing ------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._token is None:
            self.fetch_token()
        response = self._send(method, path, headers=self._auth(), **kwargs)
        if response.status_code == 401 and self._credentials is not None:
            # The token may have expired: fetch a new one, once.
            self.fetch_token()
            response = self._send(method, path, headers=self._auth(), **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response.json()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request, retried on 429 after the wait the server asks for."""
        for _attempt in range(self.max_retries):
            response = self.http.request(method, self.base_url + path, timeout=self.timeout,
                                         **kwargs)
            if response.status_code != 429:
                return response
            self.sleep(retry_after(response))
        return self.http.request(method, self.base_url + path, timeout=self.timeout, **kwargs)


def retry_after(response: requests.Response, default: float = 1.0) -> float:
    """Seconds to wait before retrying: ``Retry-After`` as seconds or as an HTTP date
    (read against the response's own ``Date``, so the server's clock decides)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return default
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        sent = parsedate_to_datetime(response.headers["Date"])
    except (KeyError, TypeError, ValueError):
        return default
    return max(0.0, (when - sent).total_seconds())


def _error(response: requests.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = str(body.get("error", "http_error"))
    message = str(body.get("message") or body.get("error_description") or response.reason)
    kind = NotFoundError if response.status_code == 404 else ApiError
    return kind(response.status_code, error, message)
