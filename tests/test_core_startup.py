"""What a mock's start does and leaves for later, counted rather than timed: the modules
it imports, the validators it compiles (on first use, once, whichever thread asks).

The time itself is the benchmark's (``bench/run.py``: start-up to the first answer).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading

import orjson
import pytest
import requests
from flask.testing import FlaskClient

from kontext_mock import KontextMock
from kontext_mock.http import spec
from kontext_mock.http.app import pipeline_of
from kontext_mock.http.serve import start
from kontext_mock.http.spec import LazyValidator, Spec, default_spec_path, load_spec

from .conftest import AUTH, DEV_APP
from .serving import wait_until

#: what a start must not import: the spec's YAML form and the validators (first use), the
#: fuzzing and contract tools (tests' and the kit's)
NOT_AT_START = ("yaml", "jsonschema", "referencing", "schemathesis", "hypothesis",
                "kontext_mock.contracts")


def test_serving_a_mock_imports_no_yaml_validator_or_test_tool() -> None:
    # what `kontext-mock serve` loads before it listens, in a fresh interpreter
    script = (
        "import sys\n"
        "from kontext_mock.cli import main, config_from_args, build_parser\n"
        "from kontext_mock.http.serve import serve_forever\n"
        "from kontext_mock.mock import KontextMock\n"
        "args = build_parser('serve').parse_args(['serve'])\n"
        "mock = KontextMock(config_from_args(args))\n"
        "mock.app\n"
        "print(sorted(m for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    loaded = eval(out)  # noqa: S307 - a list of names printed by the child above
    found = [m for m in loaded if m.split(".")[0] in NOT_AT_START or m.startswith(NOT_AT_START)]
    assert "flask" in loaded  # (the script did build the app)
    assert found == []


def test_loading_a_spec_compiles_no_validator() -> None:
    before = spec.compilations
    fresh = Spec.from_file(default_spec_path())
    assert spec.compilations == before
    op = fresh.operations["getSession"]
    assert all(isinstance(p.validator, LazyValidator) for p in op.parameters)


def test_a_validator_is_compiled_on_first_use_then_kept() -> None:
    fresh = Spec.from_file(default_spec_path())
    limit = next(p for p in fresh.operations["listSessions"].parameters if p.name == "limit")
    before = spec.compilations
    assert not limit.validator.is_valid(0)
    assert spec.compilations == before + 1
    assert [e.validator for e in limit.validator.iter_errors(0)] == ["minimum"]
    assert limit.validator.is_valid(5)
    assert spec.compilations == before + 1


def test_threads_asking_at_once_get_one_compiled_validator(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = Spec.from_file(default_spec_path())
    lazy = fresh.operations["getSession"].responses["200"][0]
    assert lazy is not None
    threads = 8
    # Each compile waits for every other thread to be compiling too, so that a validator
    # compiled without a lock is compiled by all of them. With the lock only one thread
    # compiles: the barrier is broken by its timeout (a wait of no consequence to the
    # verdict, which the count of compilations gives).
    inside = threading.Barrier(threads, timeout=1)
    compile_schema = Spec.validator

    def colliding(self: Spec, schema: dict[str, object]) -> object:
        with contextlib.suppress(threading.BrokenBarrierError):
            inside.wait()
        return compile_schema(self, schema)

    monkeypatch.setattr(Spec, "validator", colliding)
    start = threading.Barrier(threads)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(lazy.compiled)

    before = spec.compilations
    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(got) == threads
    assert all(g is got[0] for g in got)
    assert spec.compilations == before + 1


def test_a_specs_validators_come_from_one_import_of_jsonschema(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = Spec.from_file(default_spec_path())
    app_id, session_id = fresh.operations["getSession"].parameters[:2]
    assert app_id.validator.is_valid("not-a-uuid") is False  # compiled: jsonschema bound now
    # what pytester does after an in-process run: the modules imported during it are dropped
    for name in [m for m in sys.modules if m.split(".")[0] in ("jsonschema", "referencing")]:
        monkeypatch.delitem(sys.modules, name)
    # compiled after the drop, its format failure is still a failure, not a FormatError raised
    assert [e.validator for e in session_id.validator.iter_errors("not-a-uuid")] == ["format"]


def test_a_lazy_validator_finds_what_the_schema_forbids() -> None:
    lazy = load_spec().lazy_validator({"$ref": "#/components/schemas/Error"})
    assert lazy.is_valid({"error": "x", "message": "y"})
    assert list(lazy.iter_errors({"error": "x", "message": "y"})) == []
    for body, rule in (({"error": 1, "message": "y"}, "type"), ({"error": "x"}, "required"),
                       (None, "type"), ([], "type")):
        assert not lazy.is_valid(body), body
        assert rule in [e.validator for e in lazy.iter_errors(body)], body


@pytest.fixture
def fresh_client() -> FlaskClient:
    """A mock over specs loaded afresh: none of their validators compiled yet."""
    load_spec.cache_clear()
    return KontextMock(seed=1).app.test_client()


def test_the_first_bad_request_is_refused_by_the_compiled_rule(fresh_client: FlaskClient) -> None:
    before = spec.compilations
    response = fresh_client.get(f"/api/v1/applications/{DEV_APP}/sessions?limit=0", headers=AUTH)
    assert response.status_code == 400
    body = orjson.loads(response.data)
    assert body["error"] == "validation_error"
    assert any(d["field"] == "limit" for d in body["details"]), body
    assert spec.compilations > before


def test_a_served_mock_compiles_its_validators_in_a_worker_once_it_listens() -> None:
    load_spec.cache_clear()
    mock = KontextMock(seed=1)
    pipeline = pipeline_of(mock.app)
    assert pipeline is not None
    assert pipeline.spec.uncompiled > 0 and pipeline.control_spec.uncompiled > 0
    compiled_in: set[str] = set()
    compile_schema = Spec.validator

    def noting_its_thread(self: Spec, schema: dict[str, object]) -> object:
        compiled_in.add(threading.current_thread().name)
        return compile_schema(self, schema)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Spec, "validator", noting_its_thread)
        server = start(mock.app, "127.0.0.1", 0, threads=2)
        try:
            # no request asks for one: the server compiles them all, in a worker
            wait_until(lambda: pipeline.spec.uncompiled == 0
                       and pipeline.control_spec.uncompiled == 0, "every validator compiled")
        finally:
            server.stop()
    assert compiled_in and not any("server" in name for name in compiled_in), compiled_in


def test_until_its_validators_are_compiled_the_loop_answers_nothing_itself(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a refusal compiles a validator: before the warm-up is done, it is compiled in a
    # worker, never on the server's loop (where a compile would hold every client)
    load_spec.cache_clear()
    mock = KontextMock(seed=1)
    pipeline = pipeline_of(mock.app)
    assert pipeline is not None
    held = threading.Event()
    compiled_in: list[str] = []
    compile_schema = Spec.validator

    def noting_its_thread(self: Spec, schema: dict[str, object]) -> object:
        compiled_in.append(threading.current_thread().name)
        return compile_schema(self, schema)

    monkeypatch.setattr(Spec, "validator", noting_its_thread)
    monkeypatch.setattr(type(pipeline), "warm", lambda self: held.wait(60))
    server = start(mock.app, "127.0.0.1", 0, threads=2)
    try:
        answer = requests.get(f"{server.url}/api/v1/applications/{DEV_APP}/sessions?limit=0",
                              headers=AUTH, timeout=30)
        assert answer.status_code == 400 and answer.json()["error"] == "validation_error"
        assert not pipeline.warmed
        assert compiled_in and not any("server" in name for name in compiled_in), compiled_in
    finally:
        held.set()
        server.stop()
