"""A client of the sessions API: credentials, the shared rate limit, the request budget,
Retry-After, and a record of every exchange (for the contract kit's passive rules and
failure reports with a curl line; ``kontext-mock record`` reads an account through it).
"""

from __future__ import annotations

import base64
import shlex
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Final, Literal
from urllib.parse import quote

import orjson
import requests
from requests.structures import CaseInsensitiveDict

from kontext_mock.clients.control import connection_never_opened, connection_problem
from kontext_mock.clients.errors import (
    BudgetSpentError,
    ClientError,
    ReadOnlyError,
    TargetUnavailableError,
)
from kontext_mock.clients.pacing import RateLimiter, retry_after_seconds

__all__ = ["API_PREFIX", "DEFAULT_AUTH", "ApiClient", "Auth", "Exchange", "NotJsonError",
           "Redactor", "api_origin"]


class Auth(Enum):
    """What a request's ``auth`` may say besides a whole ``Authorization`` value (a
    string) or None (no header): a sentinel no header value can be mistaken for."""

    #: the client's bearer token, refreshed once on a 401
    DEFAULT = "default"


#: ``auth=DEFAULT_AUTH``: send the kit's bearer token
DEFAULT_AUTH: Final = Auth.DEFAULT
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: RFC 9110 9.2.2: a request of these methods sent twice has the effect of one
_IDEMPOTENT_METHODS = _SAFE_METHODS | {"PUT", "DELETE"}
_RETRIES_ON_429 = 3
_BODY_EXCERPT = 600


#: the prefix of every route of the API: the kit adds it to the base URL itself
API_PREFIX = "/api/v1"


def api_origin(base_url: str) -> tuple[str, str | None]:
    """``base_url`` without a trailing ``/api/v1``, and a note for the user when it had one.

    The vendor's SDK calls ``{base}/api/v1`` its audience, so a user may well give that;
    the kit would then ask for ``/api/v1/api/v1/...``, which no implementation serves.
    No deployment puts the API under a second ``/api/v1``, so the suffix is dropped and
    the note says so (None: the URL was an origin already)."""
    trimmed = base_url.rstrip("/")
    if not trimmed.endswith(API_PREFIX):
        return base_url, None
    origin = trimmed[: -len(API_PREFIX)]
    return origin, (f"the base URL {base_url} ends in {API_PREFIX}, which the kit adds to "
                    f"every path itself: it used {origin}")


class NotJsonError(ValueError):
    """The body is not the JSON the caller needs."""


class Redactor:
    """Replaces known secrets (tokens, client secrets) in text shown to people."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *secrets: str | None) -> None:
        """Remember secrets to hide (empty and very short values are ignored)."""
        self._secrets.update(s for s in secrets if s and len(s) >= 4)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "[REDACTED]")
        return text


@dataclass(slots=True)
class Exchange:
    """One request and its answer, as the kit saw it."""

    method: str
    url: str
    request_headers: Mapping[str, str]
    request_body: bytes | None
    status: int
    reason: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    #: the spec's operationId, when the request was for one
    operation: str | None = None
    elapsed: float = 0.0
    redact: Callable[[str], str] = field(default=lambda s: s, repr=False)
    _json: Any = field(default=None, repr=False)

    @property
    def content_type(self) -> str:
        """The media type of the answer, without parameters."""
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON; :class:`NotJsonError` when it is not."""
        if self._json is None:
            try:
                self._json = orjson.loads(self.body) if self.body else None
            except orjson.JSONDecodeError as exc:
                raise NotJsonError(f"the body is not JSON ({self.content_type or 'no content type'})"
                              ) from exc
            if self._json is None:
                raise NotJsonError("the body is empty")
        return self._json

    def json_or_none(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return self.json()
        except NotJsonError:
            return None

    @property
    def server_time(self) -> datetime | None:
        """The server's ``Date`` header (its clock, to the second), or None."""
        raw = self.headers.get("Date")
        if not raw:
            return None
        try:
            value = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def curl(self) -> str:
        """A curl command that repeats the request, secrets redacted."""
        parts = ["curl", "-sS"]
        if self.method != "GET" or self.request_body:
            parts += ["-X", self.method]
        parts.append(self.url)
        for name, value in self.request_headers.items():
            if name.lower() in {"user-agent", "accept-encoding", "connection", "content-length",
                                "accept"}:
                continue
            parts += ["-H", f"{name}: {value}"]
        if self.request_body:
            parts += ["--data", self.request_body.decode("utf-8", "replace")]
        return self.redact(" ".join(shlex.quote(p) for p in parts))

    def describe(self, limit: int = _BODY_EXCERPT) -> str:
        """The answer in a few lines: status, the headers that matter, a body excerpt."""
        head = [f"{self.status} {self.reason}".strip()]
        for name in ("Content-Type", "x-request-id", "Date", "Retry-After", "WWW-Authenticate"):
            if name in self.headers:
                head.append(f"{name}: {self.headers[name]}")
        if "x-request-id" not in self.headers:
            head.append("(no x-request-id)")
        text = self.body.decode("utf-8", "replace")
        if len(text) > limit:
            text = text[:limit] + f"... ({len(self.body)} bytes)"
        lines = ["; ".join(head)]
        if text:
            lines.append(text)
        return self.redact("\n".join(lines))


class ApiClient:
    """Talks to the target: bearer token (static, or client credentials refreshed on 401),
    the shared rate limit, the request budget, ``Retry-After`` on 429, and the read-only
    guard."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        limiter: RateLimiter | None = None,
        timeout: float = 15.0,
        destructive: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._static_token = token
        self._client_id = client_id
        self._client_secret = client_secret
        self._token: str | None = token
        self.limiter = limiter
        self.timeout = timeout
        self.destructive = destructive
        self.redact = Redactor()
        self.redact.add(token, client_secret)
        self.session = requests.Session()
        self._refresh_lock = threading.RLock()
        #: called with every exchange, including the schema layer's
        self.observers: list[Callable[[Exchange], None]] = []
        self.count = 0
        #: requests sent by each part of the run (``phase`` names the current one)
        self.usage: Counter[str] = Counter()
        self.phase = "preflight"
        #: the most requests the whole run may send (None: no budget)
        self.budget: int | None = None
        #: answers 429 seen (the target enforces a rate limit)
        self.throttled = 0
        self.token_refreshes = 0
        #: every token the client has sent (a 401 on an old one only needs the current one)
        self.issued: set[str] = {token} if token else set()

    # -- credentials ------------------------------------------------------------------

    @property
    def refreshable(self) -> bool:
        """True when the client can fetch a new token (client credentials)."""
        return self._client_id is not None and self._client_secret is not None

    def token(self) -> str:
        """The bearer token to send, fetched first if the client has none yet."""
        if self._token is None:
            self._token = self.fetch_token()
        return self._token

    def refresh_token(self, rejected: str | None = None) -> str | None:
        """The token to use after ``rejected`` got a 401: the current one if ``rejected``
        is older, else a new one; None when the token is static."""
        if not self.refreshable:
            return None
        with self._refresh_lock:
            if rejected is not None and rejected != self._token and rejected in self.issued:
                return self._token
            self._token = self.fetch_token()
            self.token_refreshes += 1
            return self._token

    def fetch_token(self) -> str:
        """``POST /oauth2/token`` with client credentials (HTTP Basic)."""
        if not self.refreshable:
            raise ClientError("no credentials: give --token, or --client-id and --client-secret")
        assert self._client_id is not None and self._client_secret is not None
        basic = base64.b64encode(
            f"{quote(self._client_id, safe='')}:{quote(self._client_secret, safe='')}".encode()
        ).decode()
        self.redact.add(basic)
        ex = self.request(
            "POST", "/oauth2/token", form={"grant_type": "client_credentials"},
            auth=f"Basic {basic}", operation="issueToken",
        )
        body = ex.json_or_none()
        if ex.status != 200 or not isinstance(body, dict) or not body.get("access_token"):
            error = body.get("error") if isinstance(body, dict) else None
            raise ClientError(
                f"could not get a token from {self.base_url}/oauth2/token with client id "
                f"{self._client_id!r}: {ex.status} {error or ex.reason}"
            )
        token = str(body["access_token"])
        self.redact.add(token)
        self.issued.add(token)
        return token

    # -- requests ---------------------------------------------------------------------

    def get(self, path: str, **kwargs: Any) -> Exchange:
        """A GET request (see :meth:`request`)."""
        return self.request("GET", path, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        auth: str | Literal[Auth.DEFAULT] | None = DEFAULT_AUTH,
        headers: Mapping[str, str] | None = None,
        operation: str | None = None,
    ) -> Exchange:
        """Send one request; ``auth`` is the default token, None (no Authorization header) or
        a whole ``Authorization`` value. A 401 with the default token refreshes it once."""
        method = method.upper()
        if (method not in _SAFE_METHODS and path != "/oauth2/token"
                and not self.destructive):
            raise ReadOnlyError(f"{method} {path} in a read-only run")
        ex = self._send(method, path, params, json, form, auth, headers, operation)
        if ex.status == 401 and auth is DEFAULT_AUTH:
            sent = ex.request_headers.get("Authorization", "").removeprefix("Bearer ")
            if self.refresh_token(sent) is not None:
                ex = self._send(method, path, params, json, form, auth, headers, operation)
        return ex

    def _send(self, method: str, path: str, params: Mapping[str, Any] | None, json: Any,
              form: Mapping[str, str] | None, auth: str | Literal[Auth.DEFAULT] | None,
              headers: Mapping[str, str] | None, operation: str | None) -> Exchange:
        sent_headers: dict[str, str] = dict(headers or {})
        if auth is DEFAULT_AUTH:
            sent_headers["Authorization"] = f"Bearer {self.token()}"
        elif auth is not None:
            sent_headers["Authorization"] = auth
        url = self.base_url + path
        dropped = 0
        attempt = 0
        while True:
            self.spend()
            started = time.monotonic()
            try:
                response = self.session.request(
                    method, url, params=_query(params), json=json, data=form,
                    headers=sent_headers, timeout=self.timeout, allow_redirects=False,
                )
            except requests.ConnectionError as exc:
                # One dropped connection may be the network; two in a row, the target. A
                # write goes again only if it provably never left (no connection opened):
                # a POST the target received may not be applied twice. Asking for a
                # client-credentials token is no such write: a second ask only issues
                # another token (the first, if issued, is never seen and just expires);
                # the other grants spend what they send (a code, a rotating refresh token).
                dropped += 1
                again = (method in _IDEMPOTENT_METHODS or connection_never_opened(exc)
                         or _asks_client_credentials(path, form))
                if dropped < 2 and again and not _refused(exc):
                    time.sleep(0.5)
                    continue
                raise TargetUnavailableError(
                    f"cannot reach {self.base_url}: {connection_problem(exc)}") from None
            except requests.Timeout:
                raise TargetUnavailableError(
                    f"{method} {url} got no answer within {self.timeout:.0f} s"
                ) from None
            except requests.RequestException as exc:
                raise TargetUnavailableError(f"{method} {url} failed: {exc}") from None
            ex = self.record(response, operation, time.monotonic() - started)
            if ex.status == 429:
                self.throttled += 1
            if ex.status == 429 and attempt < _RETRIES_ON_429:
                wait = retry_after_seconds(ex.headers.get("Retry-After"))
                if wait is not None:
                    attempt += 1
                    time.sleep(wait)
                    continue
            return ex

    def spend(self) -> None:
        """Count one request against the budget and wait for the rate limit;
        :class:`BudgetSpentError` (nothing is sent) once the budget is spent."""
        if self.budget is not None and self.count >= self.budget:
            raise BudgetSpentError(f"the budget of {self.budget} requests is spent")
        if self.limiter is not None:
            self.limiter.acquire()
        self.count += 1
        self.usage[self.phase] += 1

    def record(self, response: requests.Response, operation: str | None,
               elapsed: float) -> Exchange:
        """Turn a ``requests`` response into an :class:`Exchange` and show it to the observers."""
        prepared = response.request
        body = prepared.body
        ex = Exchange(
            method=(prepared.method or "GET").upper(),
            url=prepared.url or "",
            request_headers=dict(prepared.headers),
            request_body=body.encode() if isinstance(body, str) else body,
            status=response.status_code,
            reason=response.reason or "",
            headers=CaseInsensitiveDict(response.headers),
            body=response.content,
            operation=operation,
            elapsed=elapsed,
            redact=self.redact,
        )
        for observe in self.observers:
            observe(ex)
        return ex

    def close(self) -> None:
        """Release the connection pool."""
        self.session.close()


def _query(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    if params is None:
        return None
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _asks_client_credentials(path: str, form: Mapping[str, str] | None) -> bool:
    """True for a token request of the client-credentials grant, which changes nothing
    a retry could double."""
    return path == "/oauth2/token" and form is not None \
        and form.get("grant_type") == "client_credentials"


def _refused(exc: requests.ConnectionError) -> bool:
    # (read from the exceptions' types and errno along the chain, never their messages)
    return connection_problem(exc) in ("connection refused", "name or service not known")


def dumps(value: Any) -> str:
    """Compact JSON for messages."""
    return orjson.dumps(value).decode()
