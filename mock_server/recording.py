"""Recording: a read-only snapshot of what a credential can read, as a scenario file.

``record`` lists the applications the credential sees (or takes the ones named), reads
each one's sessions (``status=all``) from any implementation of the sessions API, and
builds a scenario that ``kontext-mock serve --scenario FILE`` and
``@pytest.mark.kontext(scenario=FILE)`` load:

- the applications keep their ids and go into the dev organization, so configuration
  written for the real application works unchanged and the dev credentials read them;
- times are written relative to the moment each list was read (the server's clock, from
  its ``Date`` header, narrowed by what the statuses imply), so the derived statuses
  come out the same when the file loads; when they need another idle threshold than the
  mock's, the file says so (``settings.idleAfter``);
- hostnames, user agents, session names and session ids are anonymized, consistently
  (``anonymize.py``); ``clientInfo`` is kept;
- nothing is sent but reads (and the token request), 429s are waited out
  (``Retry-After``), and no token or secret is ever written;
- fields the scenario format does not hold are reported, not fatal.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from kontext_mock.anonymize import Anonymizer
from kontext_mock.config import MockConfig
from kontext_mock.core.durations import format_instant, parse_duration, parse_instant
from kontext_mock.core.records import derived_status

__all__ = ["Recording", "RecordingError", "record"]

# What a recorded session keeps (the scenario's words); the API's other known fields are
# implied by where it goes (agentId, organizationId) or computed again (derivedStatus).
_TIMES = ("createdAt", "connectedAt", "lastActiveAt", "tokenExpiresAt", "disconnectedAt")
_ORDERED = ("createdAt", "connectedAt", "lastActiveAt", "disconnectedAt")
_IMPLIED = frozenset({"agentId", "organizationId", "derivedStatus"})
_KEPT = ("id", "name", "status", *_TIMES, "hostname", "userAgent", "clientInfo")
_DERIVED = ("active", "idle", "expired", "disconnected")
_PAGE = 200
_MS = timedelta(milliseconds=1)
# Idle thresholds a recording prefers (an API's is likely a round figure); failing those,
# the middle of what the statuses allow.
_ROUND = [timedelta(seconds=s) for s in (30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600)]
_MARGIN = timedelta(seconds=1)


class RecordingError(Exception):
    """A recording that cannot be made: the message says why (the CLI's exit 2)."""


@dataclass
class Recording:
    """What ``record`` read, as a scenario."""

    base_url: str
    scenario: dict[str, Any]
    applications: list[str]
    sessions: int
    anonymized: bool
    #: fields the target sent that the scenario does not keep, and how many sessions had each
    ignored: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The scenario file: a header of comments, then the YAML."""
        lines = [f"# kontext-mock record from {self.base_url}: "
                 f"{_count(len(self.applications), 'application')}, "
                 f"{_count(self.sessions, 'session')}{', anonymized' if self.anonymized else ''}.",
                 "# Times are relative to the moment each list was read; load it with",
                 "# kontext-mock serve --scenario FILE, or @pytest.mark.kontext(scenario=FILE)."]
        if self.ignored:
            shown = ", ".join(f"{k} ({n} sessions)" for k, n in sorted(self.ignored.items()))
            lines.append(f"# Fields the scenario does not keep: {shown}.")
        lines.extend(f"# Note: {n}" for n in self.notes)
        body = yaml.safe_dump(self.scenario, sort_keys=False, allow_unicode=True, width=100)
        return "\n".join(lines) + "\n" + body

    def write(self, path: str | Path) -> Path:
        """Write the scenario file (directories created)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.text(), encoding="utf-8")
        return target


@dataclass
class _Read:
    """One application's sessions as read, and the moment they describe."""

    application: str
    name: str
    sessions: list[dict[str, Any]]
    moment: datetime


def record(
    base_url: str,
    *,
    token: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    application_ids: Sequence[str] = (),
    anonymize: bool = True,
    rate_limit: str | None = None,
    timeout: float = 15.0,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Recording:
    """Read what the credential can read at ``base_url`` into a :class:`Recording`.

    Raises :class:`RecordingError` when the target cannot be read (down, credentials
    refused, an application not found, no way to list applications and none named).
    """
    from kontext_mock.clients.api import ApiClient, api_origin
    from kontext_mock.clients.errors import ClientError
    from kontext_mock.clients.pacing import RateLimiter

    say = progress or (lambda line: None)
    base_url, origin_note = api_origin(base_url)
    if origin_note is not None:
        say(f"note: {origin_note}")
    if not token and not (client_id and client_secret):
        raise RecordingError("give --token, or --client-id and --client-secret")
    client = ApiClient(base_url, token=token, client_id=client_id, client_secret=client_secret,
                      limiter=RateLimiter.from_text(rate_limit) if rate_limit else None,
                      timeout=timeout)
    try:
        names = _applications(client, application_ids)
        reads = []
        for app_id, name in names.items():
            say(f"reading the sessions of application {app_id}")
            reads.append(_read(client, app_id, name))
    except ClientError as exc:
        raise RecordingError(str(exc)) from None
    finally:
        client.close()
    return _scenario(base_url, reads, anonymize, seed)


def _fail(ex: Any, what: str) -> RecordingError:
    why = {401: "the credentials were refused",
           403: "the credentials lack management:applications:read",
           404: "not found for this credential",
           429: "the target kept answering 429 (try --rate-limit)"}.get(
        ex.status, f"it answered {ex.status} {ex.reason}".strip())
    return RecordingError(f"cannot read {what}: {why}")


def _applications(client: Any, named: Sequence[str]) -> dict[str, str]:
    """The applications to record, id -> name."""
    if named:
        return {app_id: f"Recorded application {i + 1}" for i, app_id in enumerate(named)}
    found: dict[str, str] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": _PAGE} | ({"cursor": cursor} if cursor else {})
        ex = client.get("/api/v1/applications", params=params, operation="listApplications")
        if ex.status in (404, 405):
            raise RecordingError("the target does not list applications "
                                 "(GET /api/v1/applications): name them with --application-id")
        body = ex.json_or_none()
        if ex.status != 200 or not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise _fail(ex, "the applications")
        for item in body["items"]:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                found[item["id"]] = str(item.get("name") or f"Recorded application {len(found) + 1}")
        cursor = body.get("nextCursor")
        if not cursor:
            return found


def _read(client: Any, app_id: str, name: str) -> _Read:
    before = datetime.now(UTC)
    ex = client.get(f"/api/v1/applications/{app_id}/sessions",
                    params={"status": "all", "limit": _PAGE}, operation="listSessions")
    after = datetime.now(UTC)
    body = ex.json_or_none()
    if ex.status != 200 or not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise _fail(ex, f"the sessions of application {app_id}")
    sessions = [s for s in body["items"] if isinstance(s, dict)]
    server = ex.server_time
    window = (server, server + timedelta(seconds=1)) if server else (before, after)
    return _Read(app_id, name, sessions, _moment(sessions, *window))


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_instant(value)
    except ValueError:
        return None


def _moment(sessions: list[dict[str, Any]], low: datetime, high: datetime) -> datetime:
    """The instant the list describes: within the server's second (or our request), and,
    within that, one at which every expired token had expired and no other one had."""
    for s in sessions:
        for key in _ORDERED:
            t = _time(s.get(key))
            if t is not None:
                low = max(low, t)
        expires = _time(s.get("tokenExpiresAt"))
        if s.get("status") != "active" or expires is None:
            continue
        if s.get("derivedStatus") == "expired":
            low = max(low, expires)
        else:
            high = min(high, expires - _MS)
    moment = low if low > high else low + (high - low) / 2
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _idle_bounds(reads: list[_Read]) -> tuple[timedelta | None, timedelta | None]:
    """The threshold must be above every age shown active and at most every age shown idle."""
    above: timedelta | None = None
    at_most: timedelta | None = None
    for read in reads:
        for s in read.sessions:
            last = _time(s.get("lastActiveAt"))
            if s.get("status") != "active" or last is None:
                continue
            age = read.moment - last
            if s.get("derivedStatus") == "active":
                above = age if above is None else max(above, age)
            elif s.get("derivedStatus") == "idle":
                at_most = age if at_most is None else min(at_most, age)
    return above, at_most


def _threshold(reads: list[_Read], default: timedelta) -> tuple[timedelta | None, str | None]:
    """The idle threshold the statuses need (None: the mock's default does), and a note."""
    above, at_most = _idle_bounds(reads)
    fits = (above is None or default > above) and (at_most is None or default <= at_most)
    if fits:
        return None, None
    if above is not None and at_most is not None and above >= at_most:
        return None, (f"the recorded statuses fit no single idle threshold (a session "
                      f"{_words(above)} quiet was active, one {_words(at_most)} quiet idle); "
                      "the mock's default is kept")
    low = above or timedelta(0)
    high = at_most or low + 2 * default
    inside = [t for t in _ROUND if low + _MARGIN < t <= high - _MARGIN]
    chosen = max(inside) if inside else low + (high - low) / 2
    chosen = timedelta(seconds=max(1, round(chosen.total_seconds())))
    return chosen, (f"the recorded statuses need an idle threshold above {_words(low)} and at "
                    f"most {_words(high)}; settings.idleAfter is {_words(chosen)}")


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _words(d: timedelta) -> str:
    return f"{d.total_seconds():g} s"


def _relative(t: datetime, moment: datetime) -> str:
    """``t`` as the scenario writes a time relative to its now (``-2h3m4.5s``, ``now``)."""
    ms = round((t - moment).total_seconds() * 1000)
    if ms == 0:
        return "now"
    sign, ms = ("-" if ms < 0 else "+"), abs(ms)
    days, ms = divmod(ms, 86_400_000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    seconds, ms = divmod(ms, 1000)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "",
             f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else "",
             f"{ms}ms" if ms else ""]
    return sign + "".join(parts)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


class _Builder:
    """Turns sessions as read into the scenario's session entries."""

    def __init__(self, anonymize: bool, seed: int) -> None:
        self.anonymizer = Anonymizer(seed) if anonymize else None
        self.ignored: Counter[str] = Counter()
        self.mended: Counter[str] = Counter()

    def session(self, s: dict[str, Any], moment: datetime) -> dict[str, Any]:
        for key in s:
            if key not in _KEPT and key not in _IMPLIED:
                self.ignored[key] += 1
        status = "disconnected" if s.get("status") == "disconnected" else "active"
        times = {k: _time(s.get(k)) for k in _TIMES}
        self._mend(times, status, moment)
        out: dict[str, Any] = {"state": _state(s, status)}
        sid = str(s.get("id"))
        hostname = s.get("hostname") if isinstance(s.get("hostname"), str) else None
        agent = s.get("userAgent") if isinstance(s.get("userAgent"), str) else None
        client = s.get("clientInfo") if isinstance(s.get("clientInfo"), dict) and isinstance(
            s["clientInfo"].get("name"), str) else None
        name = str(s.get("name") or "")
        if self.anonymizer is not None:
            name = self.anonymizer.name(name, hostname, client) if name else ""
            sid = self.anonymizer.session_id(sid)
            hostname = self.anonymizer.hostname(hostname)
            agent = self.anonymizer.user_agent(agent, (client or {}).get("name"))
        elif not _is_uuid(sid):
            self.mended["ids that are not UUIDs (given new ones)"] += 1
            sid = str(uuid.uuid5(uuid.NAMESPACE_URL, sid))
        out["id"] = sid
        if name:
            out["name"] = name
        out["status"] = status
        for key in _TIMES:
            t = times[key]
            out[key] = None if t is None else _relative(t, moment)
        out.update(hostname=hostname, userAgent=agent, clientInfo=client)
        return out

    def _mend(self, times: dict[str, datetime | None], status: str, moment: datetime) -> None:
        """Times the scenario could not load as they are: after the moment, out of order,
        or disagreeing with the status. Moved as little as the scenario needs, counted."""
        if status == "disconnected" and times["disconnectedAt"] is None:
            times["disconnectedAt"] = times["lastActiveAt"] or moment
            self.mended["disconnected sessions without disconnectedAt (given one)"] += 1
        if status == "active" and times["disconnectedAt"] is not None:
            times["disconnectedAt"] = None
            self.mended["connected sessions with a disconnectedAt (dropped)"] += 1
        earliest: datetime | None = None
        for key in _ORDERED:
            t = times[key]
            if t is None:
                continue
            if t > moment:
                t = moment
                self.mended[f"{key} after the moment it was read (moved back to it)"] += 1
            if earliest is not None and t < earliest:
                t = earliest
                self.mended[f"{key} before an earlier time (moved forward)"] += 1
            times[key] = earliest = t


def _state(s: dict[str, Any], status: str) -> str:
    derived = s.get("derivedStatus")
    if derived in _DERIVED:
        return str(derived)
    return "disconnected" if status == "disconnected" else "active"


def _scenario(base_url: str, reads: list[_Read], anonymize: bool, seed: int) -> Recording:
    config = MockConfig()
    threshold, note = _threshold(reads, config.idle_after)
    builder = _Builder(anonymize, seed)
    applications: list[dict[str, Any]] = []
    notes = [note] if note else []
    total = 0
    differ = 0
    idle_after = threshold or config.idle_after
    for read in reads:
        entry: dict[str, Any] = ({"dev": True} if read.application == config.dev_application_id
                                 else {"id": read.application, "name": read.name})
        entry["sessions"] = [builder.session(s, read.moment) for s in read.sessions]
        for recorded, written in zip(read.sessions, entry["sessions"], strict=True):
            if _derived(written, read.moment, idle_after) != recorded.get("derivedStatus"):
                differ += 1
        if len(read.sessions) >= _PAGE:
            notes.append(f"application {read.application}: its first {_PAGE} sessions (the "
                         "sessions list has no cursor to read further)")
        total += len(read.sessions)
        applications.append(entry)
    notes.extend(f"{n} {what}" for what, n in sorted(builder.mended.items()))
    if differ:
        notes.append(f"{differ} sessions will show another derivedStatus in the mock than the "
                     "target showed (its rules differ from the mock's beyond the idle threshold)")
    recorded_at = min((r.moment for r in reads), default=datetime.now(UTC))
    scenario: dict[str, Any] = {
        "description": f"Recorded from {base_url} at {format_instant(recorded_at)} "
                       f"({_count(len(reads), 'application')}, {_count(total, 'session')}"
                       f"{', anonymized' if anonymize else ''})",
    }
    if threshold is not None:
        scenario["settings"] = {"idleAfter": f"{round(threshold.total_seconds())}s"}
    scenario["organizations"] = [{"dev": True, "applications": applications}]
    return Recording(base_url, scenario, [r.application for r in reads], total, anonymize,
                     builder.ignored, notes)


def _derived(written: dict[str, Any], moment: datetime, idle_after: timedelta) -> str:
    """The derivedStatus the mock will compute for a written session when the file loads."""
    def at(key: str) -> datetime | None:
        value = written.get(key)
        if value is None:
            return None
        if value == "now":
            return moment
        return moment + parse_duration(value, allow_negative=True)

    return derived_status(written["status"], at("tokenExpiresAt"), at("lastActiveAt"), moment,
                          idle_after)

