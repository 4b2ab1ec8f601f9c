"""Everything the mock does, without HTTP: one object over parts with one job each.

:class:`MockEngine` is what the HTTP layer, the state file and the pytest plugin work
with; :class:`kontext_mock.KontextMock` is this plus its Flask app. Its methods are the
public Python API, each handed to the part whose job it is:

* :class:`~kontext_mock.core.state.MockState` holds what they share (configuration,
  clock, store, events, journal, fault rules, rate limit, lifecycles) and the one way of
  replacing it whole;
* :class:`~kontext_mock.core.timeline.Timeline` moves the clock and plays what is due;
* :class:`~kontext_mock.core.tokens.Tokens` authenticates bearer tokens and issues them;
* :class:`~kontext_mock.core.sessions.Sessions` lists, reads, revokes, opens, heartbeats
  and disconnects sessions, and makes or changes them explicitly;
* :class:`~kontext_mock.core.accounts.Accounts` keeps organizations, applications and
  OAuth clients;
* :class:`~kontext_mock.core.population.Population` seeds, loads scenarios, exports and
  imports whole states.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kontext_mock.config import MockConfig
from kontext_mock.core.accounts import Accounts
from kontext_mock.core.clock import VirtualClock
from kontext_mock.core.errors import NotFoundError, UnprocessableError
from kontext_mock.core.events import EventBus
from kontext_mock.core.faults import Faults
from kontext_mock.core.gateway import Gateway
from kontext_mock.core.journal import Journal
from kontext_mock.core.lifecycles import Lifecycles
from kontext_mock.core.oauth import OAuth
from kontext_mock.core.population import Population
from kontext_mock.core.ratelimit import PRODUCTION_PER_MINUTE, RateLimiter
from kontext_mock.core.records import (
    AccessToken,
    Application,
    DerivedStatus,
    OAuthClient,
    Organization,
    Session,
)
from kontext_mock.core.sessions import Sessions
from kontext_mock.core.state import MockSnapshot, MockState
from kontext_mock.core.store import Store
from kontext_mock.core.timeline import Duration, Timeline
from kontext_mock.core.tokens import Tokens

__all__ = ["MockEngine"]


class MockEngine:
    """A stateful mock of the Kontext sessions API, without its HTTP face.

    ``config`` is used as given (``kontext_mock.KontextMock`` reads keyword overrides).
    """

    def __init__(self, config: MockConfig) -> None:
        self.state = MockState(config)
        self.timeline = Timeline(self.state)
        self.tokens = Tokens(self.state)
        self.sessions = Sessions(self.state)
        self.accounts = Accounts(self.state)
        self.population = Population(self.state)
        #: the MCP gateway's OAuth (public clients, codes, refresh, token exchange)
        self.oauth = OAuth(self.state)
        #: the MCP gateway at ``/mcp``
        self.gateway = Gateway(self.state, self.oauth, self.sessions)
        # the shared parts, as attributes (they live as long as the mock)
        self.clock: VirtualClock = self.state.clock
        self.store: Store = self.state.store
        self.events: EventBus = self.state.events
        #: what clients sent to the public API
        self.journal: Journal = self.state.journal
        #: fault rules applied to public API requests
        self.faults: Faults = self.state.faults
        #: the per-credential rate limit (off until :meth:`rate_limit`)
        self.limiter: RateLimiter = self.state.limiter
        #: sessions' scripted futures, played as the clock moves
        self.lifecycles: Lifecycles = self.state.lifecycles
        self.population.reset()

    # -- configuration ---------------------------------------------------------------------

    @property
    def config(self) -> MockConfig:
        """The configuration in force (a reset, a scenario or an import may change it)."""
        return self.state.config

    @config.setter
    def config(self, value: MockConfig) -> None:
        self.state.config = value

    @property
    def idle_after(self) -> timedelta:
        """No activity for this long makes a connected session idle."""
        return self.state.config.idle_after

    @property
    def sessions_made(self) -> int:
        """How many sessions :meth:`add_session` made since the last reset."""
        return self.state.sessions_made

    # -- whole states ------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, empty: bool = False,
              organizations: int | None = None, applications: int | None = None,
              sessions: int | None = None, status_mix: dict[str, float] | None = None) -> None:
        """Back to a seeded state (the configuration's, or with the given changes).

        ``empty=True`` keeps only the dev organization, application and credentials.
        Seeded times are placed relative to the clock's current instant.
        """
        self.population.reset(seed=seed, empty=empty, organizations=organizations,
                              applications=applications, sessions=sessions,
                              status_mix=status_mix)

    def snapshot(self) -> MockSnapshot:
        """Capture the state, the clock, faults, the rate limit and lifecycles;
        :meth:`restore` returns to it in microseconds."""
        return self.state.snapshot()

    def restore(self, snap: MockSnapshot) -> None:
        """Return to a snapshot: records, configuration, clock, faults, the rate limit and
        lifecycles (event history and the journal cleared)."""
        self.state.replace(snap)

    def scenarios(self) -> list[tuple[str, str]]:
        """``(name, description)`` of the scenarios :meth:`load_scenario` finds by name."""
        return self.population.scenarios()

    def load_scenario(self, name_or_path: str | Path) -> None:
        """Replace the state with a scenario: a name of ``fixtures/scenarios/`` (or of a
        folder in ``config.scenario_dirs``), or a path to a ``.yaml`` file. A bad scenario
        raises :class:`~kontext_mock.core.scenarios.ScenarioError` naming file, line and
        field, and changes nothing."""
        self.population.load_scenario(name_or_path)

    def load_scenario_text(self, text: str, name: str = "inline") -> str:
        """Replace the state with a scenario given as YAML text; returns its name."""
        return self.population.load_scenario_text(text, name)

    def export_state(self) -> dict[str, Any]:
        """The whole state as JSON-ready data: records, clock, settings, lifecycles, faults
        and the rate limit. :meth:`import_state` of it gives an identical mock."""
        return self.population.export_state()

    def import_state(self, data: dict[str, Any]) -> None:
        """Replace everything with an exported state (checked whole first; 422 naming the
        first bad field, and nothing changes)."""
        self.population.import_state(data)

    def summary(self) -> dict[str, Any]:
        """How many records the mock holds, and its clock."""
        return self.population.summary()

    # -- the clock ----------------------------------------------------------------------------

    def now(self) -> datetime:
        """The mock's current instant."""
        return self.state.clock.now()

    def reads_as_of(self) -> tuple[int, MockConfig, datetime]:
        """Where what every read of the API depends on (besides its request and its token)
        stands: the store's generation (it moves at every change to a record), the
        configuration in force and the clock's instant. A read whose answer says how to
        tell it still holds at an instant (``Answer.holds``) answers the same for as long
        as the first two are the same and it holds at the third (the router keeps such
        answers: ``http/kept.py``). Read with the store's lock held, for a consistent
        account."""
        state = self.state
        return state.store.generation, state.config, state.clock.now()

    def advance(self, duration: Duration) -> datetime:
        """Move the clock forward (``"PT10M"``, ``"10m"``, ``600`` or a timedelta), playing
        what is due on the way: scripted lifecycle steps, and ``session.idle`` and
        ``session.expired`` events, in time order."""
        return self.timeline.advance(duration)

    def set_time(self, instant: datetime | str) -> datetime:
        """Move the clock to an instant; forwards it plays what is due, as :meth:`advance`
        does; backwards nothing is undone."""
        return self.timeline.set_time(instant)

    def freeze(self) -> datetime:
        """Stop the clock."""
        return self.timeline.freeze()

    def unfreeze(self) -> datetime:
        """Let the clock run again."""
        return self.timeline.unfreeze()

    def tick(self) -> None:
        """Play what is due up to now (a running clock moves without being told)."""
        self.timeline.tick()

    def clock_state(self) -> dict[str, Any]:
        """``{"now": ..., "frozen": ...}``."""
        return self.timeline.clock_state()

    # -- tokens ----------------------------------------------------------------------------------

    def authenticate(self, token: str) -> AccessToken:
        """The stored token for a bearer string; 401 when unknown or expired on the mock's clock."""
        return self.tokens.authenticate(token)

    def issue_token(self, client_id: str, client_secret: str, scope: str | None = None
                    ) -> dict[str, Any]:
        """RFC 6749 client credentials: a token for a registered client, scoped as asked."""
        return self.tokens.issue_token(client_id, client_secret, scope)

    # -- sessions ---------------------------------------------------------------------------------

    def visible_application(self, application_id: str, organization_id: str | None) -> Application:
        """The application, if the caller's organization (None: any) owns it; else 404."""
        return self.sessions.visible_application(application_id, organization_id)

    def select_sessions(self, application_id: str, status: str = "active", limit: int = 100,
                        organization_id: str | None = None) -> list[tuple[Session, DerivedStatus]]:
        """The application's sessions that pass the ``status`` filter, in list order, with
        their derived status. Call with the store's lock held to serialize consistently."""
        return self.sessions.select_sessions(application_id, status, limit, organization_id)

    def list_sessions(self, application_id: str, *, status: str = "active", limit: int = 100,
                      organization_id: str | None = None) -> list[dict[str, Any]]:
        """What ``GET .../sessions`` lists, as Session objects."""
        return self.sessions.list_sessions(application_id, status=status, limit=limit,
                                           organization_id=organization_id)

    def session_page(self, application_id: str, *, status: str = "active", offset: int = 0,
                     limit: int = 100) -> dict[str, Any]:
        """A page of an application's sessions (any organization) from ``offset`` on, in
        list order and filtered as the list is: ``items``, ``total`` (how many pass the
        filter) and ``counts`` of every session by derived status."""
        return self.sessions.session_page(application_id, status=status, offset=offset,
                                          limit=limit)

    def find_session(self, application_id: str, session_id: str,
                     organization_id: str | None = None) -> tuple[Session, DerivedStatus]:
        """The session and its derived status; 404 unless it belongs to this visible application."""
        return self.sessions.find_session(application_id, session_id, organization_id)

    def get_session(self, application_id: str, session_id: str,
                    organization_id: str | None = None) -> dict[str, Any]:
        """What ``GET .../sessions/{id}`` answers, as a Session object."""
        return self.sessions.get_session(application_id, session_id, organization_id)

    def revoke_all(self, application_id: str, organization_id: str | None = None) -> int:
        """Disconnect every connected session of the application; how many changed."""
        return self.sessions.revoke_all(application_id, organization_id)

    def open_session(self, application_id: str | None = None, *,
                     token_identifier: str | None = None,
                     authenticated_user_id: str | None = None,
                     client_session_id: str | None = None,
                     hostname: str | None = None, user_agent: str | None = None,
                     client_info: dict[str, Any] | None = None) -> Session:
        """An agent connects (``POST /api/v1/agent-sessions``): a new connected session of
        ``application_id`` (default: the dev application), active now; returns the stored
        :class:`Session` (``.id`` is what ``heartbeat`` and ``disconnect`` take).

        What the agent tells about itself, kept with the session but shown by no answer
        of the API (made up when not given): ``token_identifier``, an identifier of the
        access token the agent holds (not the token); ``authenticated_user_id``, the user
        the agent acts for; ``client_session_id``, the agent's own id for this session
        (one per agent process). ``hostname``, ``user_agent`` and ``client_info`` (MCP
        ``{"name", "version"}``) are what the API's Session object shows.

        400 when ``client_info`` nests too deep to be stored; 409 when the mock holds
        ``max_sessions`` sessions."""
        return self.sessions.open_session(
            application_id, token_identifier=token_identifier,
            authenticated_user_id=authenticated_user_id, client_session_id=client_session_id,
            hostname=hostname, user_agent=user_agent, client_info=client_info)

    def heartbeat(self, application_id: str, session_id: str) -> Session:
        """An agent's heartbeat: ``lastActiveAt`` becomes now. 409 when the session is gone."""
        return self.sessions.heartbeat(application_id, session_id)

    def disconnect(self, application_id: str, session_id: str, reason: str = "agent") -> Session:
        """End one session (idempotent: a disconnected session stays as it is)."""
        return self.sessions.disconnect(application_id, session_id, reason)

    def add_session(self, application_id: str | None = None, state: str = "active",
                    **fields: Any) -> dict[str, Any]:
        """Add a session whose derivedStatus is ``state`` now (default application: the dev
        one). ``fields`` are the API's camelCase names, kept as given (times ISO 8601 or
        relative like ``lastActiveAt="-3m"``); the rest is faked and placed in order around
        them. ``lifecycle={"until": "+20m", "then": "disconnect"}`` scripts its future.
        Returns the Session object as the API shows it. 422 when the given fields do not
        hold together, 409 for a taken id or a full mock, 404 for an unknown application."""
        return self.sessions.add_session(application_id, state, **fields)

    def update_session(self, session_id: str, **fields: Any) -> dict[str, Any]:
        """Change a session's fields (camelCase; times may be relative). ``status=
        "disconnected"`` disconnects it (``disconnectedAt`` default now, ``disconnectReason``
        default ``agent``) and publishes ``session.disconnected``; ``lifecycle=None`` removes
        its script. Returns the Session object; 422 when the result does not hold together."""
        return self.sessions.update_session(session_id, **fields)

    def session_detail(self, session_id: str) -> dict[str, Any]:
        """A session of any application: the public object, its disconnect reason and script."""
        return self.sessions.session_detail(session_id)

    # -- organizations, applications, clients -----------------------------------------------

    def add_organization(self, org: Organization | None = None, *, id: str | None = None,
                         name: str | None = None) -> Organization:
        """Add an organization (an :class:`Organization`, or its id and name, faked when
        not given). 409 when the id is taken."""
        return self.accounts.add_organization(org, id=id, name=name)

    def add_application(self, organization_id: str | None = None, *, id: str | None = None,
                        name: str | None = None) -> Application:
        """Add an application to an organization (default: the dev organization)."""
        return self.accounts.add_application(organization_id, id=id, name=name)

    def add_client(
        self, client: OAuthClient | None = None, *, client_id: str | None = None,
        client_secret: str | None = None, scopes: Any = ("management:all",),
        organization_id: str | None = None, application_id: str | None = None,
        name: str | None = None, token: str | None = None,
    ) -> OAuthClient:
        """Register an OAuth client of ``/oauth2/token`` with its scopes (an
        :class:`OAuthClient`, or its fields; the organization defaults to the application's,
        else the dev organization). ``token`` also registers a static bearer token of the
        client that never expires."""
        return self.accounts.add_client(
            client, client_id=client_id, client_secret=client_secret, scopes=scopes,
            organization_id=organization_id, application_id=application_id, name=name,
            token=token)

    def client_info(self, client_id: str) -> dict[str, Any]:
        """A registered client as data, without its secret."""
        return self.accounts.client_info(client_id)

    def application_ids(self, organization_id: str | None = None) -> list[str]:
        """Ids of the applications (of one organization, if given), dev application first."""
        return self.accounts.application_ids(organization_id)

    def applications(self) -> list[dict[str, Any]]:
        """Every application with its organization's name and how many sessions it holds:
        the dev application first, then by organization and application name."""
        return self.accounts.applications()

    # -- faults and the rate limit --------------------------------------------------------------

    def add_fault(self, method: str = "*", path: str = "/api/v1/*", *,
                  latency: float | tuple[float, float] | list[float] | None = None,
                  status: int | None = None, drop: bool = False, times: int | None = None,
                  probability: float | None = None, seed: int | None = None) -> str:
        """Add a fault rule for public API requests matching ``method`` (or ``*``) and the
        glob ``path``: wait ``latency`` seconds (or a ``(low, high)`` range), answer
        ``status`` with the documented error body, or ``drop`` the connection; for the next
        ``times`` matching requests, or a ``probability`` share of them (seeded by ``seed``,
        default the mock's seed). Returns the rule's id."""
        try:
            rule = self.faults.add(
                method, path, latency=latency, status=status, drop=drop, times=times,
                probability=probability, seed=self.config.seed if seed is None else seed,
            )
        except (TypeError, ValueError) as exc:
            raise UnprocessableError([{"field": None, "message": str(exc)}]) from None
        return rule.id

    def remove_fault(self, fault_id: str) -> None:
        """Remove one fault rule (404 when there is none with this id)."""
        if not self.faults.remove(fault_id):
            raise NotFoundError(f"fault {fault_id} not found")

    def clear_faults(self) -> int:
        """Remove every fault rule; how many there were."""
        return self.faults.clear()

    def rate_limit(self, per_minute: int | None = PRODUCTION_PER_MINUTE) -> None:
        """Limit requests per credential per minute of the mock's clock (default 120, the
        production figure); None turns it off. Over the limit: 429 with ``Retry-After``."""
        try:
            self.limiter.set(per_minute)
        except ValueError as exc:
            raise UnprocessableError([{"field": "perMinute", "message": str(exc)}]) from None
