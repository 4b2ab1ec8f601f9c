"""The request journal: what clients sent to the public API, to assert on.

Recording is on the hot path of every public request, so it keeps the raw facts in a
tuple (a bounded deque append) and builds the JSON-ready entry, with its redactions,
only when someone reads the journal.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from kontext_mock.core.durations import format_instant
from kontext_mock.core.nesting import parse_json

__all__ = ["REDACTED", "Journal", "Recorded", "redact_body", "redact_headers"]

REDACTED = "[redacted]"
# Header names whose values are credentials.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie",
                             "x-api-key", "x-admin-token"})
# Body and query fields whose values are credentials (form or JSON, at any depth), by
# their name without case, "_" or "-": client_secret, accessToken, refresh-token, ...
_SECRET_FIELDS = ("secret", "password", "accesstoken", "refreshtoken", "idtoken", "assertion",
                  "apikey", "admintoken")
_SECRET_NAMES = frozenset({"token"})
# A secret-looking field in text that is neither a parsed form nor valid JSON (a form sent
# as text/plain, a broken JSON body): name, "=" or ":", and the value, quoted or not.
_SECRET_IN_TEXT = re.compile(
    r"""(?ix)
    (?P<key>["']?[\w.-]*(?:secret|password|access[_-]?token|refresh[_-]?token|id[_-]?token
        |assertion|api[_-]?key|admin[_-]?token|\btoken)[\w.-]*["']?\s*[=:]\s*)
    (?P<value>"(?:[^"\\]|\\.)*"?|'[^']*'?|[^&\s,;}"']+)
    """
)
_MAX_TEXT = 4096


class Recorded(NamedTuple):
    """One request as recorded; :meth:`Journal.entries` turns it into a dict."""

    method: str
    path: str
    query: bytes
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    content_type: str
    status: int | None
    duration_ms: float
    request_id: str | None
    time: datetime
    fault: str | None
    #: "answered"; "dropped" by a fault rule; "abandoned": its client left before it ran
    outcome: str = "answered"


class Journal:
    """The last ``size`` requests to the public API, oldest first.

    >>> journal.entries(method="DELETE", path="/api/v1/applications/*/sessions")
    """

    def __init__(self, size: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._items: deque[Recorded] = deque(maxlen=size)
        #: set to False to stop recording (e.g. for a benchmark)
        self.enabled = True

    def record(self, item: Recorded) -> None:
        """Keep one request (the oldest is forgotten beyond the journal's size)."""
        self._items.append(item)  # deque.append is atomic; no lock on the hot path

    def entries(
        self, method: str | None = None, path: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The recorded requests, oldest first; ``path`` may be a glob (``*`` matches any text);
        ``limit``: only the latest that many of those."""
        wanted_method = method.upper() if method else None
        matching = (
            item
            for item in reversed(self._snapshot())
            if (wanted_method is None or item.method == wanted_method)
            and (path is None or item.path == path or fnmatchcase(item.path, path))
        )
        # Newest first, so that a limit stops early: only the kept entries are built.
        latest = [_entry(item) for item in itertools.islice(matching, limit)]
        latest.reverse()
        return latest

    def clear(self) -> int:
        """Forget every entry; how many there were."""
        with self._lock:
            count = len(self._items)
            self._items.clear()
        return count

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.entries())

    def _snapshot(self) -> list[Recorded]:
        with self._lock:
            return list(self._items)


def redact_headers(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Headers by lower-case name; credentials replaced, keeping an Authorization's scheme."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in _SECRET_HEADERS:
            scheme, sep, _ = value.partition(" ")
            value = f"{scheme} {REDACTED}" if sep and key.endswith("authorization") else REDACTED
        out[key] = value
    return out


def redact_body(body: Any) -> Any:
    """A parsed body with the values of secret-looking fields replaced."""
    if isinstance(body, dict):
        return {
            k: REDACTED if _is_secret(k) else redact_body(v) for k, v in body.items()
        }
    if isinstance(body, list):
        return [redact_body(v) for v in body]
    return body


def _is_secret(field: Any) -> bool:
    name = str(field).lower().replace("_", "").replace("-", "")
    return name in _SECRET_NAMES or any(s in name for s in _SECRET_FIELDS)


def redact_text(text: str) -> str:
    """Text with the values of secret-looking ``name=value`` / ``"name": value`` pairs replaced."""
    return _SECRET_IN_TEXT.sub(lambda m: m.group("key") + REDACTED, text)


def _entry(item: Recorded) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for key, value in parse_qsl(item.query.decode("latin-1"), keep_blank_values=True):
        if _is_secret(key):  # RFC 6750 allows ?access_token=; clients put secrets there too
            value = REDACTED
        if key in query:
            previous = query[key]
            query[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            query[key] = value
    return {
        "method": item.method,
        "path": item.path,
        "query": query,
        "headers": redact_headers(item.headers),
        "body": _body(item.body, item.content_type),
        "status": item.status,
        "durationMs": round(item.duration_ms, 3),
        "requestId": item.request_id,
        "time": format_instant(item.time),
        "fault": item.fault,
        "outcome": item.outcome,
    }


def _body(raw: bytes | None, content_type: str) -> Any:
    if not raw:
        return None
    media = content_type.partition(";")[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            form = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            form = None
        if form is not None:
            return redact_body(dict(form))
    elif "json" in media:
        try:
            return redact_body(parse_json(raw))
        except ValueError:  # not JSON, or nested past the limit: shown as text
            pass
    text = raw.decode("utf-8", "replace")
    text = redact_text(text)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."
