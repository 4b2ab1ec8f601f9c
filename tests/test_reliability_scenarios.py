"""The scenario loader under hostile input, and scenario names that try to leave their folder.

Any text ends in a loaded scenario or a clear 4xx naming the file (and line and field
where there is one), quickly, with the mock's state unchanged; a name through the control
plane never makes the mock read, or even look at, a file outside ``fixtures/scenarios``
and the configured scenario folders. Cases per fuzzing test: ``KONTEXT_FUZZ_EXAMPLES``
(default 300).
"""

from __future__ import annotations

import builtins
import os
import pathlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kontext_mock import KontextMock
from kontext_mock.core.errors import ApiError
from kontext_mock.core.scenarios import ScenarioError, builtin_folder

from .conftest import NOW, ValidatingClient

EXAMPLES = int(os.environ.get("KONTEXT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large],
)
MAX_SESSIONS = 2000


@pytest.fixture(scope="module")
def small_mock() -> KontextMock:
    """A mock that holds at most a few thousand sessions, so big scenarios are refused fast."""
    return KontextMock(seed=2, now=NOW, frozen=True, max_sessions=MAX_SESSIONS, sessions=3)


# -- generated scenarios --------------------------------------------------------------------

junk = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                 st.text(max_size=20), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
times = st.one_of(st.sampled_from(["-3m", "+4m", "-1h", "PT10M", "-P1D", "now", "2026-01-01T12:00:00Z",
                                   "1999-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "-0s", "+-3m",
                                   "P", "yesterday", "-99999999999d"]), st.text(max_size=12), junk)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually the well-formed value, sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, junk)


session = st.fixed_dictionaries({}, optional={
    "state": maybe(st.sampled_from(["active", "idle", "expired", "disconnected"])),
    "status": maybe(st.sampled_from(["active", "disconnected"])),
    "id": maybe(st.uuids().map(str)),
    "name": maybe(st.text(min_size=1, max_size=20)),
    "createdAt": times, "connectedAt": times, "lastActiveAt": times,
    "tokenExpiresAt": times, "disconnectedAt": times,
    "disconnectReason": maybe(st.sampled_from(["revoked", "agent", "timeout", None])),
    "hostname": maybe(st.text(max_size=20)),
    "clientInfo": maybe(st.fixed_dictionaries({"name": st.text(max_size=10)})),
    "lifecycle": maybe(st.fixed_dictionaries(
        {"until": times}, optional={"heartbeatEvery": times,
                                    "then": st.sampled_from(["disconnect", "expire", "idle", "x"]),
                                    "reason": st.sampled_from(["agent", "timeout", "revoked"])})),
    "repeat": maybe(st.sampled_from([1, 2, 5, 100_000, 0, -1])),
})
generate = st.fixed_dictionaries({"generate": st.fixed_dictionaries(
    {"count": maybe(st.sampled_from([0, 1, 5, 20, MAX_SESSIONS + 1, 1_000_000]))},
    optional={"mix": maybe(st.dictionaries(
        st.sampled_from(["active", "idle", "expired", "disconnected", "zombie"]),
        st.one_of(st.floats(0, 1), st.integers(-1, 3)), max_size=4)),
        "seed": maybe(st.integers(0, 2**40))})})
client = st.fixed_dictionaries({
    "clientId": maybe(st.text(min_size=1, max_size=12)),
    "clientSecret": maybe(st.text(min_size=1, max_size=12)),
    "scopes": maybe(st.lists(st.sampled_from(["management:all", "management:logs:read", "bogus"]),
                             min_size=1, max_size=3)),
}, optional={"token": maybe(st.text(min_size=8, max_size=20)), "name": st.text(max_size=8)})
application = st.fixed_dictionaries({}, optional={
    "dev": maybe(st.just(True)),
    "id": maybe(st.uuids().map(str)),
    "name": maybe(st.text(min_size=1, max_size=12)),
    "clients": maybe(st.lists(client, max_size=2)),
    "sessions": maybe(st.lists(st.one_of(session, session, generate), max_size=6)),
})
organization = st.fixed_dictionaries({}, optional={
    "dev": maybe(st.just(True)),
    "id": maybe(st.uuids().map(str)),
    "name": maybe(st.text(min_size=1, max_size=12)),
    "clients": maybe(st.lists(client, max_size=2)),
    "applications": maybe(st.lists(application, max_size=3)),
})
scenario = st.fixed_dictionaries({}, optional={
    "description": maybe(st.text(max_size=30)),
    "seed": maybe(st.integers(0, 2**31)),
    "clock": maybe(st.fixed_dictionaries({}, optional={"now": times, "frozen": maybe(st.booleans())})),
    "organizations": maybe(st.lists(organization, max_size=3)),
    "extra": junk,
})


def as_text(data: Any, cut: int | None, noise: str) -> str:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if cut is not None:
        text = text[: cut % (len(text) + 1)] + noise
    return text


@FUZZ
@given(data=scenario, cut=st.one_of(st.none(), st.none(), st.integers(0, 10_000)),
       noise=st.sampled_from(["", ":", "- ", "{", "&a", "*a", "\t", "!!python/name:os.system", "\x00"]))
@pytest.mark.slow
def test_any_scenario_text_loads_or_is_a_clear_4xx_and_changes_nothing(
    small_mock: KontextMock, data: Any, cut: int | None, noise: str
) -> None:
    text = as_text(data, cut, noise)
    small_mock.freeze()  # an earlier loaded scenario may have left the clock running
    before = small_mock.export_state()
    try:
        small_mock.load_scenario_text(text, "fuzz")
    except ScenarioError as exc:
        problem: str | None = str(exc)
    except ApiError as exc:
        problem = f"{exc.status} {exc.message}" if 400 <= exc.status < 500 else f"BAD {exc.status}"
    else:
        problem = None
    event("refused" if problem else "loaded")
    if problem is not None:
        assert not problem.startswith("BAD"), problem
        assert problem.strip()
        assert small_mock.export_state() == before  # a refused scenario changes nothing
    else:
        assert len(small_mock.store.sessions) <= MAX_SESSIONS


@FUZZ
@given(text=st.text(max_size=300))
def test_any_text_through_the_control_plane_is_answered_in_json(small_mock: KontextMock,
                                                                text: str) -> None:
    small_mock.app.test_client_class = ValidatingClient
    response = small_mock.app.test_client().post("/_mock/scenarios/load", json={"yaml": text})
    assert response.status_code in (200, 400, 404, 413, 422), response.get_data()[:300]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
                   + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
                   + ["description: *a8"]), "expand"),
        ("description: &a [*a]", "contains it"),
        ("organizations: &o [{applications: [{sessions: *o}]}]", "contains it"),
        ("!!python/object/apply:os.system ['touch /tmp/kontext-pwned']", "unsupported YAML"),
        ("description: !!python/name:os.system", "unsupported YAML"),
        ("[" * 5000 + "]" * 5000, "YAML"),
        ("organizations:\n" + "  - applications: [{sessions: [{generate: {count: 1000000}}]}]\n" * 3,
         "sessions"),
        ("organizations: [{applications: [{sessions: [{generate: {count: 1}},"
         " {state: idle, repeat: 100000}]}]}]", "sessions"),
    ],
    ids=["alias-bomb", "recursive-alias", "recursive-alias-deep", "python-tag", "python-name",
         "deep-nesting", "huge-generate", "huge-repeat"],
)
def test_hostile_yaml_is_refused_quickly(client: FlaskClient, mock: KontextMock, text: str,
                                         problem: str) -> None:
    before = mock.export_state()
    # refused by the loader's own bounds (expansion, nesting, counts), named in the message,
    # before any of it is built: no timing needed to see that
    response = client.post("/_mock/scenarios/load", json={"yaml": text})
    assert response.status_code == 422, response.json
    assert problem in response.json["message"]
    assert response.json["file"] == "<inline>"
    assert mock.export_state() == before
    assert not Path("/tmp/kontext-pwned").exists()


# -- scenario names never leave their folders -----------------------------------------------


@pytest.fixture
def touched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the process reads, opens or probes while the test runs."""
    seen: list[str] = []
    real_open = builtins.open

    def spy(name: str, method: Any) -> Any:
        def wrapper(self: Path, *args: Any, **kwargs: Any) -> Any:
            seen.append(str(self))
            return method(self, *args, **kwargs)
        return wrapper

    for name in ("read_text", "read_bytes", "is_file", "exists", "stat", "open", "glob", "is_dir"):
        monkeypatch.setattr(pathlib.Path, name, spy(name, getattr(pathlib.Path, name)))

    def open_spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_spy)
    return seen


HOSTILE_NAMES = [
    "../mixed", "../../etc/passwd", "..", ".", "mixed/../mixed", "/etc/passwd", "/tmp/x.yaml",
    "..\\mixed", "mixed.yaml", "./mixed", "~/mixed", "%2e%2e%2fmixed", "..%2fmixed",
    "mixed\x00.yaml", "MIXED", "mixed ", " mixed", "C:\\Windows\\win.ini", "file:///etc/passwd",
    "fixtures/scenarios/mixed", "\u2025/mixed", "mixed/", "a" * 65, "",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_scenario_name_that_is_a_path_is_refused_without_touching_a_file(
    client: FlaskClient, mock: KontextMock, touched: list[str], name: str
) -> None:
    before = mock.export_state()
    touched.clear()
    response = client.post("/_mock/scenarios/load", json={"name": name})
    assert response.status_code == 400, response.json
    assert response.json["error"] == "validation_error"
    assert touched == []
    assert mock.export_state() == before


def test_names_resolve_only_inside_the_scenario_folders(tmp_path: Path, touched: list[str]) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "team.yaml").write_text("description: the team's own\n")
    (tmp_path / "outside.yaml").write_text("description: must never be read\n")
    mock = KontextMock(seed=1, now=NOW, frozen=True, scenario_dirs=(str(mine),))
    mock.app.test_client_class = ValidatingClient
    http = mock.app.test_client()
    touched.clear()
    assert http.post("/_mock/scenarios/load", json={"name": "team"}).status_code == 200
    assert http.post("/_mock/scenarios/load", json={"name": "mixed"}).status_code == 200
    assert http.post("/_mock/scenarios/load", json={"name": "outside"}).status_code == 404
    assert http.post("/_mock/scenarios/load", json={"name": "../outside"}).status_code == 400
    allowed = (str(mine.resolve()), str(builtin_folder().resolve()))
    seen = list(touched)  # resolving below probes paths too (and the spy records them)
    strays = [p for p in seen if not str(Path(p).resolve()).startswith(allowed)
              and not p.endswith(("control.yaml", "openapi.yaml"))]
    assert strays == []
    outside = str(tmp_path / "outside.yaml")
    assert not any(str(Path(p).resolve()) == outside for p in seen)


def test_an_unknown_name_is_404_naming_the_known_ones(client: FlaskClient) -> None:
    response = client.post("/_mock/scenarios/load", json={"name": "no-such-scenario"})
    assert response.status_code == 404
    assert "mixed" in response.json["message"]
