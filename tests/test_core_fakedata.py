"""Seeded fake data: deterministic, realistic, and the status mix asked for."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st

from kontext_mock import KontextMock
from kontext_mock.core.fakedata import DERIVED_STATES, FAKER_PROVIDERS, SessionFaker, apportion
from kontext_mock.core.records import DISCONNECTED, Application, Session

NOW = "2026-05-05T05:05:05Z"


def everything(mock: KontextMock) -> bytes:
    return orjson.dumps({a: mock.list_sessions(a, status="all", limit=200)
                         for a in mock.application_ids()})


def test_same_seed_same_bytes_different_seed_different_bytes() -> None:
    first = everything(KontextMock(seed=3, now=NOW, frozen=True))
    assert first == everything(KontextMock(seed=3, now=NOW, frozen=True))
    assert first != everything(KontextMock(seed=4, now=NOW, frozen=True))


def test_reset_with_the_same_seed_restores_the_same_bytes() -> None:
    mock = KontextMock(seed=3, now=NOW, frozen=True)
    first = everything(mock)
    mock.revoke_all(mock.config.dev_application_id)
    mock.reset()
    assert everything(mock) == first


@pytest.mark.parametrize("sessions", [0, 1, 20, 57])
def test_the_status_mix_is_exact(sessions: int) -> None:
    mix = {"active": 0.5, "idle": 0.2, "expired": 0.1, "disconnected": 0.2}
    mock = KontextMock(seed=5, now=NOW, frozen=True, sessions=sessions, status_mix=mix)
    counts = Counter(s["derivedStatus"] for s in
                     mock.list_sessions(mock.config.dev_application_id, status="all", limit=200))
    assert counts == Counter({k: v for k, v in apportion(sessions, mix).items() if v})


def test_apportion_keeps_the_total() -> None:
    assert apportion(7, {"a": 1, "b": 1, "c": 1}) == {"a": 3, "b": 2, "c": 2}
    assert sum(apportion(1000, {"a": 0.33, "b": 0.33, "c": 0.34}).values()) == 1000


def test_counts_shape_the_population() -> None:
    mock = KontextMock(seed=1, now=NOW, frozen=True, organizations=3, applications=4, sessions=5)
    assert len(mock.store.organizations) == 4  # plus the dev organization
    assert len(mock.application_ids()) == 1 + 3 * 4
    assert len(mock.store.sessions) == 13 * 5


def test_clients_look_real() -> None:
    mock = KontextMock(seed=9, now=NOW, frozen=True, sessions=200)
    sessions = mock.list_sessions(mock.config.dev_application_id, status="all", limit=200)
    names = {s["clientInfo"]["name"] for s in sessions if s["clientInfo"]}
    assert {"claude-code", "kontext-cli"} <= names
    for s in sessions:
        info = s["clientInfo"]
        if info and s["userAgent"] and info["name"] == "claude-code":
            assert s["userAgent"].startswith(f"claude-code/{info['version']}")
        if s["hostname"]:
            assert " " not in s["hostname"] and s["hostname"] == s["hostname"].lower()
    # a few clients do not report themselves
    assert any(s["hostname"] is None for s in sessions)


# -- coherence, over many seeds and status mixes -----------------------------------------------

_MIXES = st.dictionaries(st.sampled_from(DERIVED_STATES), st.integers(0, 4), min_size=1).filter(
    lambda mix: sum(mix.values()) > 0)


def incoherences(session: Session, now: datetime, idle_after: timedelta, state: str) -> list[str]:
    """Every coherence rule a session breaks (empty: it holds together)."""
    s = session
    wrong = []
    if s.connected_at is None or s.last_active_at is None or s.token_expires_at is None:
        return ["a seeded session has every time but disconnectedAt"]
    if not s.created_at <= s.connected_at <= s.last_active_at:
        wrong.append("createdAt <= connectedAt <= lastActiveAt")
    if s.last_active_at > s.token_expires_at:
        wrong.append("lastActiveAt after tokenExpiresAt")
    if max(s.created_at, s.connected_at, s.last_active_at) > now:
        wrong.append("a time after now")
    if (s.disconnected_at is not None) != (s.status == DISCONNECTED):
        wrong.append("disconnectedAt only (and always) on disconnected sessions")
    if (s.disconnect_reason is not None) != (s.status == DISCONNECTED):
        wrong.append("disconnectReason only (and always) on disconnected sessions")
    if s.disconnected_at is not None and not s.last_active_at <= s.disconnected_at <= now:
        wrong.append("lastActiveAt <= disconnectedAt <= now")
    if s.derived_status(now, idle_after) != state:
        wrong.append(f"derivedStatus {s.derived_status(now, idle_after)}, asked {state}")
    return wrong


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mix=_MIXES, idle_minutes=st.integers(1, 120))
def test_every_seeded_session_holds_together(seed: int, mix: dict[str, int],
                                             idle_minutes: int) -> None:
    now = datetime(2026, 5, 5, 5, 5, 5, tzinfo=UTC)
    idle_after = timedelta(minutes=idle_minutes)
    faker = SessionFaker(seed, idle_after)
    app = Application(str(uuid.UUID(int=seed, version=4)), "org", "App")
    for state, count in mix.items():
        for _ in range(count * 5):
            session = faker.session(app, state, now)
            assert incoherences(session, now, idle_after, state) == [], (state, session)


@pytest.mark.parametrize("seed", range(1, 6))
def test_a_seeded_mock_holds_together(seed: int) -> None:
    """The population ``serve`` starts with: every session of every application."""
    mock = KontextMock(seed=seed, now=NOW, frozen=True, organizations=2, sessions=40)
    now, idle_after = mock.now(), mock.config.idle_after
    for session in mock.store.sessions.values():
        state = session.derived_status(now, idle_after)
        assert incoherences(session, now, idle_after, state) == [], session


@pytest.mark.parametrize("state", DERIVED_STATES)
def test_faked_times_keep_before_a_given_token_expiry(state: str) -> None:
    mock = KontextMock(seed=2, now=NOW, frozen=True)
    for expiry in ("-1h", "-3m", "-2d"):
        made = mock.add_session(state=state, tokenExpiresAt=expiry)
        session = mock.store.sessions[made["id"]]
        assert session.last_active_at is not None and session.token_expires_at is not None
        assert session.created_at <= session.last_active_at <= session.token_expires_at, made


@pytest.mark.parametrize("scenario", ["mixed", "all-expired", "two-orgs", "revoke-in-progress"])
def test_the_shipped_scenarios_hold_together(scenario: str) -> None:
    mock = KontextMock(seed=1, now=NOW, frozen=True)
    mock.load_scenario(scenario)
    now, idle_after = mock.now(), mock.config.idle_after
    for session in mock.store.sessions.values():
        state = session.derived_status(now, idle_after)
        assert incoherences(session, now, idle_after, state) == [], session


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_the_fake_data_draws_what_a_faker_with_every_provider_draws(seed: int) -> None:
    # SessionFaker holds only the providers it draws from: a mock starts sooner, and a seed
    # gives the same names as before
    mine = SessionFaker(seed, timedelta(minutes=5)).fake
    every = Faker("en_US")
    every.seed_instance(seed)
    draws = [(f.first_name(), f.company(), f.word()) for f in (mine, every) for _ in range(40)]
    assert draws[:40] == draws[40:]
    assert len(mine.providers) == len(FAKER_PROVIDERS) < len(every.providers)
