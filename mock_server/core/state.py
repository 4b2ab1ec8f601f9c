"""The mock's state held together, and the one way of replacing it whole.

:class:`MockState` holds what every part of the mock shares: the configuration, the
clock, the store, the event bus, the journal, the fault rules, the rate limit, the
lifecycles and the faker. It also holds the few acts every part needs alike: publishing a
session's event, disconnecting a session, playing what is due as the clock moves.

Every way of putting the mock into another state (a reset, a restored snapshot, a
scenario, an imported state document) builds a :class:`MockSnapshot` and hands it to
:meth:`MockState.replace`, the one place that swaps records, clock, configuration, fault
rules, rate limit and lifecycles together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kontext_mock.config import MockConfig
from kontext_mock.core.clock import VirtualClock
from kontext_mock.core.durations import format_instant
from kontext_mock.core.events import EventBus
from kontext_mock.core.fakedata import SessionFaker
from kontext_mock.core.faults import Faults
from kontext_mock.core.gatewaystate import GatewayState
from kontext_mock.core.journal import Journal
from kontext_mock.core.lifecycles import Lifecycles, Script
from kontext_mock.core.ratelimit import RateLimiter
from kontext_mock.core.records import DISCONNECTED, Session
from kontext_mock.core.store import Store, StoreSnapshot

__all__ = ["MockSnapshot", "MockState"]


@dataclass(frozen=True, slots=True)
class MockSnapshot:
    """A whole state to be in: what :meth:`MockState.replace` installs.

    ``now`` None keeps the clock where it is; ``frozen`` None keeps it frozen or running.
    """

    store: StoreSnapshot
    config: MockConfig
    now: datetime | None
    frozen: bool | None
    faults: tuple[dict[str, Any], ...] = ()
    faults_made: int = 0
    rate_limit: int | None = None
    scripts: tuple[Script, ...] = ()
    #: where lifecycles were last played (default: ``now``)
    horizon: datetime | None = None
    sessions_made: int = 0


class MockState:
    """What the parts of a mock share (see the module's docstring)."""

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        if config.now is not None:
            self.clock = VirtualClock(config.now, frozen=config.frozen)
        else:
            self.clock = VirtualClock.system()
            if config.frozen:
                self.clock.freeze()
        self.store = Store()
        self.events = EventBus()
        #: what clients sent to the public API
        self.journal = Journal(config.journal_size)
        #: fault rules applied to public API requests
        self.faults = Faults()
        #: the per-credential rate limit (off until asked for)
        self.limiter = RateLimiter()
        #: sessions' scripted futures, played as the clock moves
        self.lifecycles = Lifecycles()
        self.faker = SessionFaker(config.seed + 1, config.idle_after)
        #: sessions made since the last replace (each draws its own seed from the count)
        self.sessions_made = 0
        #: the MCP gateway's tokens, sessions and streams
        self.gateway = GatewayState()

    def now(self) -> datetime:
        """The mock's current instant."""
        return self.clock.now()

    # -- acts every part needs alike ------------------------------------------------------

    def publish(self, type_: str, session: Session, at: datetime, **extra: Any) -> None:
        """Publish a session's lifecycle event."""
        self.events.publish(type_, at, _event_data(session, format_instant(at), extra))

    def disconnect(self, session: Session, at: datetime, reason: str) -> None:
        """Disconnect a connected session (call with the store's lock held)."""
        self.disconnect_all([session], at, reason)

    def disconnect_all(self, sessions: list[Session], at: datetime, reason: str) -> None:
        """Disconnect connected sessions, all at ``at`` (call with the store's lock held):
        their MCP streams end, and one event each is published."""
        for session in sessions:
            session.status = DISCONNECTED
            session.disconnected_at = at
            session.disconnect_reason = reason  # type: ignore[assignment]
            self.store.touch(session)
        self.gateway.end_all([s.id for s in sessions])
        when, extra = format_instant(at), {"reason": reason}
        self.events.publish_all("session.disconnected", at,
                                [_event_data(s, when, extra) for s in sessions])

    def play(self, now: datetime) -> None:
        """Play what is due up to ``now``: scripted steps, idle and expiry events (call
        with the store's lock held)."""
        self.lifecycles.run(self.store, self.config.idle_after, now, self.publish,
                            self.disconnect)

    # -- the whole state --------------------------------------------------------------------

    def snapshot(self) -> MockSnapshot:
        """The state as it is: records, configuration, clock, fault rules, rate limit and
        lifecycles (:meth:`replace` returns to it in microseconds)."""
        with self.store.lock:
            return MockSnapshot(
                self.store.snapshot(), self.config, self.clock.now(), self.clock.frozen,
                faults=tuple(self.faults.export()), faults_made=self.faults.made,
                rate_limit=self.limiter.per_minute,
                scripts=tuple(self.lifecycles.scripts.values()),
                horizon=self.lifecycles.horizon, sessions_made=self.sessions_made,
            )

    def replace(self, to: MockSnapshot) -> None:
        """Be in state ``to``: records, configuration, clock, fault rules, rate limit and
        lifecycles as it says; the event history and the journal start empty."""
        with self.store.lock:
            self.store.restore(to.store)
            self.config = to.config
            if to.now is not None:
                self.clock.set(to.now)
            if to.frozen is True and not self.clock.frozen:
                self.clock.freeze()
            elif to.frozen is False and self.clock.frozen:
                self.clock.unfreeze()
            now = self.clock.now()
            self.events.clear()
            self.journal.clear()
            self.faults.replace(list(to.faults), to.faults_made)
            self.limiter.set(to.rate_limit)
            self.lifecycles.reset(to.horizon or now, list(to.scripts))
            self.sessions_made = to.sessions_made
            self.gateway.clear()
            # Reseeded, the faker draws as a new one would, at a fraction of the cost (the
            # pytest plugin replaces the state before every test).
            self.faker.rng.seed(self.config.seed + 1)
            self.faker.fake.seed_instance(self.config.seed + 1)
            self.faker.idle_after = self.config.idle_after


def _event_data(session: Session, when: str, extra: dict[str, Any]) -> dict[str, Any]:
    """A session's lifecycle event's data: whose, when (formatted), and what else."""
    return {
        "sessionId": session.id,
        "applicationId": session.application_id,
        "organizationId": session.organization_id,
        "at": when,
        **extra,
    }
