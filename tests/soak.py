"""The soak: many client threads against one live mock, invariants checked throughout.

Run the long version from the repository's root::

    .venv/bin/python -m tests.soak --duration 300 --threads 16

Each worker thread mixes lists, gets, revoke-alls, token requests and agent sessions
(create, heartbeat, disconnect) over real HTTP on loopback; a clock thread moves the
mock's clock forward. Checked at every answer: no 5xx, only the statuses the operation
may answer, and each derivedStatus consistent with the mock's clock during the request.
Checked at the end: no error or exception in the server's log, every session accounted
for, the sum of ``disconnectedCount`` equal to the sessions revoke-all disconnected, and
(where the mock has a request journal) one journal entry per request sent.

Bounded: by ``--duration`` seconds and ``--max-requests`` in all; loopback only.
"""

from __future__ import annotations

import argparse
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

from kontext_mock import KontextMock, MockConfig, parse_instant
from kontext_mock.http.serve import start

DEV_TOKEN = {"Authorization": "Bearer dev-token"}
AGENT_BODY = {"tokenIdentifier": "t", "authenticatedUserId": "u", "clientSessionId": "c"}
_FAR_PAST = datetime.min.replace(tzinfo=parse_instant("2026-01-01T00:00:00Z").tzinfo)
_FAR_FUTURE = datetime.max.replace(tzinfo=_FAR_PAST.tzinfo)
_MS = timedelta(milliseconds=1)
# The journal's memory bound for long runs: beyond it the count is checked as "full".
JOURNAL_CAP = 250_000
FILTERS = {"active": {"active", "idle"}, "inactive": {"expired", "disconnected"},
           "all": {"active", "idle", "expired", "disconnected"}}


class LogCatcher(logging.Handler):
    """Keeps every error and exception the server logs; counts its other warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []
        self.warnings = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.ERROR and not record.exc_info:
            self.warnings += 1
            return
        self.records.append(f"{record.name} {record.levelname}: {record.getMessage()}"
                            + (" (with exception)" if record.exc_info else ""))


@dataclass
class Tally:
    """What the clients sent and saw, merged from every thread."""

    requests: int = 0
    public_requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    ops: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    revoked_sum: int = 0
    created: set[str] = field(default_factory=set)
    agent_disconnected: set[str] = field(default_factory=set)
    reads_checked: int = 0
    sessions_checked: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def merge(self, other: Tally) -> None:
        with self.lock:
            self.requests += other.requests
            self.public_requests += other.public_requests
            self.statuses.update(other.statuses)
            self.ops.update(other.ops)
            self.violations.extend(other.violations)
            self.revoked_sum += other.revoked_sum
            self.created |= other.created
            self.agent_disconnected |= other.agent_disconnected
            self.reads_checked += other.reads_checked
            self.sessions_checked += other.sessions_checked


@dataclass
class Report:
    """The figures of one soak."""

    threads: int
    seconds: float
    requests: int
    statuses: dict[int, int]
    ops: dict[str, int]
    violations: list[str]
    log_problems: list[str]
    reads_checked: int
    sessions_checked: int
    revoked_sum: int
    sessions_created: int
    clock_moves: int
    virtual_seconds: float
    journal: str
    log_warnings: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        return not self.violations and not self.log_problems

    def summary(self) -> str:
        return (
            f"soak: {self.threads} threads, {self.seconds:.1f} s, {self.requests} requests,"
            f" {self.rate:.0f} req/s, {sum(v for k, v in self.statuses.items() if k >= 500)} 5xx,"
            f" {len(self.violations)} violations, {len(self.log_problems)} errors logged"
            f" ({self.log_warnings} warnings)\n"
            f"  statuses {dict(sorted(self.statuses.items()))}\n"
            f"  operations {dict(sorted(self.ops.items()))}\n"
            f"  {self.reads_checked} reads ({self.sessions_checked} sessions) judged against the"
            f" clock; {self.clock_moves} clock moves ({self.virtual_seconds / 60:.0f} virtual"
            f" minutes)\n"
            f"  {self.sessions_created} sessions created; revoke-all disconnected"
            f" {self.revoked_sum}; journal: {self.journal}"
        )


# -- judging one answer against the clock ------------------------------------------------


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def consistent_window(session: dict[str, Any], idle_after: timedelta) -> tuple[datetime, datetime]:
    """The instants ``[lo, hi]`` at which the session's facts give its derivedStatus
    (empty when lo > hi). Derived as the mock's rule says, independently of its code."""
    derived = session["derivedStatus"]
    if session["status"] == "disconnected":
        return (_FAR_PAST, _FAR_FUTURE) if derived == "disconnected" else (_FAR_FUTURE, _FAR_PAST)
    if derived == "disconnected":
        return _FAR_FUTURE, _FAR_PAST
    expires = _instant(session["tokenExpiresAt"])
    last = _instant(session["lastActiveAt"])
    idle_from = last + idle_after if last is not None else _FAR_PAST
    if derived == "expired":
        return (expires, _FAR_FUTURE) if expires is not None else (_FAR_FUTURE, _FAR_PAST)
    before_expiry = expires - _MS if expires is not None else _FAR_FUTURE
    if derived == "idle":
        return idle_from, before_expiry
    return _FAR_PAST, min(before_expiry, idle_from - _MS)  # active


def judge_read(sessions: list[dict[str, Any]], t0: datetime, t1: datetime,
               idle_after: timedelta) -> str | None:
    """None when one instant within ``[t0, t1]`` explains every session's derivedStatus."""
    lo, hi = t0, t1
    for s in sessions:
        a, b = consistent_window(s, idle_after)
        lo, hi = max(lo, a), min(hi, b)
        if lo > hi:
            return (f"session {s['id']} is {s['derivedStatus']} (status {s['status']}, last"
                    f" {s['lastActiveAt']}, expires {s['tokenExpiresAt']}) at no instant in"
                    f" [{t0.isoformat()}, {t1.isoformat()}] consistent with the rest")
    return None


# -- the clients -----------------------------------------------------------------------------


class Worker:
    """One client thread: a weighted random mix of operations until the deadline."""

    WEIGHTS = (("list", 30), ("get", 20), ("revoke", 2), ("token", 6), ("create", 18),
               ("heartbeat", 16), ("disconnect", 8))

    def __init__(self, soak: Soak, seed: int) -> None:
        self.soak = soak
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.mine: list[str] = []
        self.http = requests.Session()
        names, weights = zip(*self.WEIGHTS, strict=True)
        self.choices = [n for n, w in zip(names, weights, strict=True) for _ in range(w)]

    def run(self) -> None:
        try:
            while self.soak.may_send():
                op = self.rng.choice(self.choices)
                getattr(self, op)()
                self.tally.ops[op] += 1
        except Exception as exc:  # a broken client is a failed soak, not a hung one
            self.tally.violations.append(f"client crashed: {type(exc).__name__}: {exc}")
        finally:
            self.http.close()
            self.soak.tally.merge(self.tally)

    # each operation: send, check the status against what the operation may answer

    def send(self, method: str, path: str, allowed: set[int], **kwargs: Any) -> requests.Response:
        kwargs.setdefault("headers", DEV_TOKEN)
        response = self.http.request(method, self.soak.url + path, timeout=30, **kwargs)
        self.tally.requests += 1
        self.tally.public_requests += 1
        self.tally.statuses[response.status_code] += 1
        if response.status_code not in allowed:
            self.tally.violations.append(
                f"{method} {path}: {response.status_code} {response.text[:200]}")
        if "x-request-id" not in response.headers:
            self.tally.violations.append(f"{method} {path}: no x-request-id")
        return response

    def list(self) -> None:
        status = self.rng.choice(["active", "inactive", "all"])
        limit = self.rng.choice([1, 10, 100, 200])
        t0 = self.soak.mock.now()
        r = self.send("GET", f"{self.soak.base}?status={status}&limit={limit}", {200})
        t1 = self.soak.mock.now()
        if r.status_code == 200:
            items = r.json()["items"]
            if len(items) > limit:
                self.tally.violations.append(f"list limit {limit}: {len(items)} items")
            wrong = [s["id"] for s in items if s["derivedStatus"] not in FILTERS[status]]
            if wrong:
                self.tally.violations.append(f"list status={status} returned {wrong[:3]}")
            self.check_read(items, t0, t1)

    def get(self) -> None:
        pool = self.mine or self.soak.seeded
        sid = self.rng.choice(pool)
        t0 = self.soak.mock.now()
        r = self.send("GET", f"{self.soak.base}/{sid}", {200})
        t1 = self.soak.mock.now()
        if r.status_code == 200:
            self.check_read([r.json()["session"]], t0, t1)

    def revoke(self) -> None:
        r = self.send("DELETE", self.soak.base, {200})
        if r.status_code == 200:
            self.tally.revoked_sum += r.json()["disconnectedCount"]

    def token(self) -> None:
        form = {"grant_type": "client_credentials", "client_id": "dev-client",
                "client_secret": "dev-secret", "scope": "management:applications:read"}
        issued_at = self.soak.mock.now()
        r = self.send("POST", "/oauth2/token", {200}, data=form, headers={})
        if r.status_code != 200:
            return
        token = r.json()["access_token"]
        # Used at once: valid unless the clock passed its lifetime meanwhile.
        r = self.send("GET", f"{self.soak.base}?limit=1", {200, 401},
                      headers={"Authorization": f"Bearer {token}"})
        if r.status_code == 401 and self.soak.mock.now() - issued_at < self.soak.mock.config.token_ttl:
            self.tally.violations.append("a fresh token was refused before its expiry")

    def create(self) -> None:
        r = self.send("POST", "/api/v1/agent-sessions", {201}, json=AGENT_BODY)
        if r.status_code == 201:
            sid = r.json()["sessionId"]
            self.mine.append(sid)
            self.tally.created.add(sid)

    def heartbeat(self) -> None:
        if not self.mine:
            return self.create()
        sid = self.rng.choice(self.mine)
        # 409: revoked by a revoke-all or expired as the clock moved; both legitimate
        self.send("POST", f"/api/v1/agent-sessions/{sid}/heartbeat", {200, 409})
        return None

    def disconnect(self) -> None:
        if not self.mine:
            return self.create()
        sid = self.mine.pop(self.rng.randrange(len(self.mine)))
        r = self.send("POST", f"/api/v1/agent-sessions/{sid}/disconnect", {200})
        if r.status_code == 200:
            if r.json()["status"] != "disconnected":
                self.tally.violations.append(f"disconnect of {sid} left it {r.json()['status']}")
            self.tally.agent_disconnected.add(sid)
        return None

    def check_read(self, sessions: list[dict[str, Any]], t0: datetime, t1: datetime) -> None:
        problem = judge_read(sessions, t0, t1, self.soak.mock.config.idle_after)
        self.tally.reads_checked += 1
        self.tally.sessions_checked += len(sessions)
        if problem:
            self.tally.violations.append(problem)


class Soak:
    """One soak run: a fresh mock, a live server, workers and a clock mover."""

    def __init__(self, *, duration: float, threads: int, max_requests: int,
                 server_threads: int = 8, seed: int = 11, clock_step: float = 0.05,
                 move_every: int | None = None) -> None:
        self.duration = duration
        self.threads = threads
        self.max_requests = max_requests
        self.seed = seed
        self.clock_step = clock_step
        #: move the clock once every this many requests (None: every ``clock_step`` seconds)
        self.move_every = move_every
        self._moves_due = threading.Semaphore(0)
        extra: dict[str, Any] = {}
        if "journal_size" in MockConfig.__dataclass_fields__:
            # a journal that keeps every request of the run (up to a memory bound)
            self.journal_size = extra["journal_size"] = min(max_requests * 2 + 10, JOURNAL_CAP)
        self.mock = KontextMock(seed=seed, now="2026-01-01T12:00:00Z", frozen=True,
                                organizations=1, applications=2, sessions=40, **extra)
        self.app_id = self.mock.config.dev_application_id
        self.base = f"/api/v1/applications/{self.app_id}/sessions"
        self.seeded = [s["id"] for s in self.mock.list_sessions(self.app_id, status="all", limit=200)]
        self.server_threads = server_threads
        self.journal_size = getattr(self, "journal_size", 0)
        self.tally = Tally()
        self._sent = 0
        self._sent_lock = threading.Lock()
        self._deadline = 0.0
        self.url = ""

    def may_send(self) -> bool:
        """True while the run has time and requests left (claims one request)."""
        if time.monotonic() >= self._deadline:
            return False
        with self._sent_lock:
            if self._sent >= self.max_requests:
                return False
            self._sent += 1
            if self.move_every and self._sent % self.move_every == 0:
                self._moves_due.release()
            return True

    def run(self) -> Report:
        catcher = LogCatcher()
        loggers = [logging.getLogger(n) for n in ("kontext_mock",)]
        for logger in loggers:
            logger.addHandler(catcher)
        revoked_before = self._count_reason("revoked")
        sessions_before = set(self.mock.store.sessions)
        start_virtual = self.mock.now()
        server = start(self.mock.app, "127.0.0.1", 0, threads=self.server_threads)
        self.url = server.url
        moves = 0
        started = time.monotonic()
        self._deadline = started + self.duration
        workers = [Worker(self, self.seed * 1000 + i) for i in range(self.threads)]
        threads = [threading.Thread(target=w.run, name=f"soak-{i}") for i, w in enumerate(workers)]
        try:
            for t in threads:
                t.start()
            rng = random.Random(self.seed)
            while time.monotonic() < self._deadline + 60:
                if self.move_every:
                    # paced by requests: one move per ``move_every`` requests, all of them
                    if not self._moves_due.acquire(timeout=0.1):
                        if any(t.is_alive() for t in threads):
                            continue
                        break
                elif not any(t.is_alive() for t in threads):
                    break
                self.mock.advance(timedelta(seconds=rng.uniform(1, 20)))
                moves += 1
                if not self.move_every:
                    time.sleep(self.clock_step)
            for t in threads:
                t.join(60)
            elapsed = time.monotonic() - started
        finally:
            server.stop()
            for logger in loggers:
                logger.removeHandler(catcher)
        tally = self.tally
        violations = list(tally.violations)
        violations += self._final_invariants(tally, sessions_before, revoked_before)
        journal = self._journal_check(tally, violations)
        return Report(
            threads=self.threads, seconds=elapsed, requests=tally.requests,
            statuses=dict(tally.statuses), ops=dict(tally.ops), violations=violations,
            log_problems=catcher.records, reads_checked=tally.reads_checked,
            sessions_checked=tally.sessions_checked, revoked_sum=tally.revoked_sum,
            sessions_created=len(tally.created), clock_moves=moves,
            virtual_seconds=(self.mock.now() - start_virtual).total_seconds(), journal=journal,
            log_warnings=catcher.warnings,
        )

    def _count_reason(self, reason: str) -> int:
        with self.mock.store.lock:
            return sum(1 for s in self.mock.store.sessions.values() if s.disconnect_reason == reason)

    def _final_invariants(self, tally: Tally, before: set[str], revoked_before: int) -> list[str]:
        out = []
        with self.mock.store.lock:
            now_ids = set(self.mock.store.sessions)
            if now_ids != before | tally.created:
                missing = (before | tally.created) - now_ids
                extra = now_ids - before - tally.created
                out.append(f"sessions not accounted for: {len(missing)} missing, {len(extra)} extra")
            for sid in tally.created:
                s = self.mock.store.sessions.get(sid)
                if s is not None and s.application_id != self.app_id:
                    out.append(f"session {sid} created in {s.application_id}")
            for sid in tally.agent_disconnected:
                s = self.mock.store.sessions.get(sid)
                if s is None or s.status != "disconnected":
                    out.append(f"session {sid} was disconnected by its agent but is not")
            # revoke-all only touches the dev application; the other applications are untouched
        revoked = self._count_reason("revoked") - revoked_before
        if revoked != tally.revoked_sum:
            out.append(f"revoke-all reported {tally.revoked_sum} disconnections, the store has {revoked}")
        return out

    def _journal_check(self, tally: Tally, violations: list[str]) -> str:
        journal = getattr(self.mock, "journal", None)
        if journal is None:
            return "none in this mock"
        count = len(journal)
        expected = min(tally.public_requests, self.journal_size)
        if count != expected:
            violations.append(f"journal holds {count} entries for {tally.public_requests} requests")
        return f"{count} entries for {tally.public_requests} requests (kept up to {self.journal_size})"


def run(duration: float, threads: int, max_requests: int, **kwargs: Any) -> Report:
    """One soak; see the module's docstring."""
    return Soak(duration=duration, threads=threads, max_requests=max_requests, **kwargs).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds (default 300)")
    parser.add_argument("--threads", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--server-threads", type=int, default=8, help="server threads (default 8)")
    parser.add_argument("--max-requests", type=int, default=2_000_000,
                        help="stop after this many requests in all (default 2,000,000)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    report = run(args.duration, args.threads, args.max_requests,
                 server_threads=args.server_threads, seed=args.seed)
    print(report.summary())
    for problem in (report.violations + report.log_problems)[:20]:
        print("  !", problem)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
