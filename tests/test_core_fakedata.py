"""Seeded fake data: deterministic, realistic, and the status mix asked for."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from kontext_mock import KontextMock
from kontext_mock.core.fakedata import apportion

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
