"""Whole states: a seeded population, a scenario, an exported state document, a
snapshot. Each becomes a :class:`~kontext_mock.core.state.MockSnapshot` and goes through
the one replace path, :meth:`~kontext_mock.core.state.MockState.replace`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kontext_mock.config import ConfigError, read_fields
from kontext_mock.core.durations import format_instant
from kontext_mock.core.errors import UnprocessableError
from kontext_mock.core.fakedata import generate
from kontext_mock.core.records import AccessToken
from kontext_mock.core.state import MockSnapshot, MockState
from kontext_mock.core.statedoc import export_state, read_state
from kontext_mock.core.store import Store, StoreSnapshot

if TYPE_CHECKING:
    from kontext_mock.core.scenarios import Blueprint

__all__ = ["Population"]


class Population:
    """Puts the mock into a whole state, and tells what it holds."""

    def __init__(self, state: MockState) -> None:
        self.state = state

    def reset(self, *, seed: int | None = None, empty: bool = False,
              organizations: int | None = None, applications: int | None = None,
              sessions: int | None = None, status_mix: dict[str, float] | None = None) -> None:
        """Back to a seeded state (see :meth:`kontext_mock.KontextMock.reset`)."""
        state = self.state
        changes = _settings({k: v for k, v in dict(
            seed=seed, organizations=organizations, applications=applications,
            sessions=sessions, status_mix=status_mix).items() if v is not None})
        candidate = state.config.with_changes(**changes) if changes else state.config
        config = candidate.with_changes(organizations=0, sessions=0) if empty else candidate
        total = (1 + config.organizations * config.applications) * config.sessions
        if total > config.max_sessions:
            raise UnprocessableError([{
                "field": "sessions",
                "message": f"{total} sessions in all; the mock holds at most {config.max_sessions}",
            }])
        population = generate(config, state.clock.now())
        store = Store()
        for org in population.organizations:
            store.add_organization(org)
        for app in population.applications:
            store.add_application(app)
        for client in population.clients:
            store.add_client(client)
        store.add_sessions(population.sessions)
        for token in population.tokens:
            store.add_token(token)
        store.add_token(AccessToken(
            token=candidate.dev_token, client_id=candidate.dev_client_id,
            organization_id=candidate.dev_organization_id, scopes=candidate.dev_scopes,
            application_id=candidate.dev_application_id, expires_at=None,
        ))
        # The clock stays as it is: seeded times are placed relative to it.
        # Fault ids go on from where they were (as event ids do): an id a client still holds
        # from before never names a new rule.
        state.replace(MockSnapshot(_taken_over(store), candidate, now=None, frozen=None,
                                   faults_made=state.faults.made))

    def load_scenario(self, name_or_path: str | Path) -> None:
        """Replace the state with a scenario by name or path (see
        :meth:`kontext_mock.KontextMock.load_scenario`)."""
        # scenarios (YAML, their schema) are loaded when one is: a seeded start needs none
        from kontext_mock.core import scenarios as scenario_files

        state = self.state
        self._install(scenario_files.load(name_or_path, state.config, state.clock.now()))

    def load_scenario_text(self, text: str, name: str = "inline") -> str:
        """Replace the state with a scenario given as YAML text; returns its name."""
        from kontext_mock.core import scenarios as scenario_files

        state = self.state
        self._install(scenario_files.build(text, f"<{name}>", name, state.config,
                                           state.clock.now()))
        return name

    def scenarios(self) -> list[tuple[str, str]]:
        """``(name, description)`` of the scenarios found by name."""
        from kontext_mock.core import scenarios as scenario_files

        return scenario_files.available(self.state.config)

    def export_state(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (see :meth:`kontext_mock.KontextMock.export_state`)."""
        with self.state.store.lock:
            return export_state(self.state)

    def import_state(self, data: dict[str, Any]) -> None:
        """Replace everything with an exported state (checked whole first; 422 naming the
        first bad field, and nothing changes)."""
        state = self.state
        imported = read_state(data, state.config.max_sessions)
        state.replace(MockSnapshot(
            _taken_over(imported.store), state.config.with_changes(**_settings(imported.settings)),
            now=imported.now, frozen=imported.frozen, faults=tuple(imported.faults),
            faults_made=imported.faults_made, rate_limit=imported.rate_limit,
            scripts=tuple(imported.scripts), sessions_made=imported.sessions_made,
        ))

    def summary(self) -> dict[str, Any]:
        """How many records the mock holds, and its clock."""
        state = self.state
        with state.store.lock:
            store = state.store
            return {
                "organizations": len(store.organizations),
                "applications": len(store.applications),
                "clients": len(store.clients),
                "sessions": len(store.sessions),
                "clock": {"now": format_instant(state.clock.now()), "frozen": state.clock.frozen},
            }

    def _install(self, blueprint: Blueprint) -> None:
        config = self.state.config.with_changes(seed=blueprint.seed)
        if blueprint.idle_after is not None:
            config = config.with_changes(idle_after=blueprint.idle_after)
        self.state.replace(MockSnapshot(
            _taken_over(blueprint.store), config, now=blueprint.now, frozen=blueprint.frozen,
            scripts=tuple(blueprint.scripts), faults_made=self.state.faults.made,
        ))
        self.state.gateway.tools = list(blueprint.mcp_tools)


def _settings(values: dict[str, Any]) -> dict[str, Any]:
    """Settings read by the configuration's one set of rules; a bad one is a 422 naming it."""
    try:
        return read_fields(values)
    except ConfigError as exc:
        raise UnprocessableError([{"field": exc.key, "message": str(exc)}]) from None


def _taken_over(store: Store) -> StoreSnapshot:
    """A snapshot that shares a throwaway store's records (replacing copies them once)."""
    return StoreSnapshot(
        dict(store.organizations), dict(store.applications), dict(store.clients),
        dict(store.tokens),
        {app_id: list(store.application_sessions(app_id)) for app_id in store.applications},
    )
