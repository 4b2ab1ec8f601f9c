"""What the kit reports as undocumented is the target's, not its own: the fuzzed writes
the mock echoes back are never listed, a free-form object (``clientInfo``) is not listed
key by key, and a field the target adds still is."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from requests.structures import CaseInsensitiveDict

from kontext_mock import KontextMock
from kontext_mock.contracts import Options, Report, Target, run_contract
from kontext_mock.contracts.http import Exchange
from kontext_mock.contracts.openapi import ApiSpec
from kontext_mock.contracts.undocumented import Undocumented
from kontext_mock.http.serve import start

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED_CLIENT_INFO = {"name", "version", "title", "os"}
LIST = "/api/v1/applications/550e8400-e29b-41d4-a716-446655440000/sessions"


def exchange(method: str, path: str, sent: Any, answer: Any, operation: str) -> Exchange:
    return Exchange(method, f"http://target{path}", {}, orjson.dumps(sent) if sent else None,
                    200 if method == "GET" else 201, "OK",
                    CaseInsensitiveDict({"Content-Type": "application/json"}),
                    orjson.dumps(answer), operation=operation)


def session(**extra: Any) -> dict[str, Any]:
    return {"id": "44444444-4444-4444-8444-444444444444", "name": "s", **extra}


def test_a_field_the_kit_wrote_is_not_the_target_s_and_a_new_one_is() -> None:
    seen = Undocumented(ApiSpec.load())
    seen(exchange("POST", "/api/v1/agent-sessions", {"name": "s", "zone": "written"},
                  {"sessionId": "44444444-4444-4444-8444-444444444444", "name": "s"},
                  "createAgentSession"))
    seen(exchange("GET", LIST, None, {"items": [session(zone="written")]}, "listSessions"))
    assert seen.items() == []  # the kit's own write, echoed back
    seen(exchange("GET", LIST, None, {"items": [session(zone="eu-west-1", region="eu")]},
                  "listSessions"))
    names = {(i["name"], i["example"]) for i in seen.items()}
    assert names == {("$.items[*].zone", '"eu-west-1"'), ("$.items[*].region", '"eu"')}


def test_clientinfo_is_free_form_and_not_reported_key_by_key() -> None:
    seen = Undocumented(ApiSpec.load())
    info = {"name": "claude-code", "version": "1.0", "platform": "linux", "extra": {"a": 1}}
    seen(exchange("GET", LIST, None, {"items": [session(clientInfo=info)]}, "listSessions"))
    assert seen.items() == []


def agent_writes(app: Any, sent: list[dict[str, Any]]) -> Any:
    """Keep the clientInfo of every agent session the kit opens."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/api/v1/agent-sessions":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(size)
            try:
                info = orjson.loads(body).get("clientInfo")
            except (orjson.JSONDecodeError, AttributeError):
                info = None
            if isinstance(info, dict):
                sent.append(info)
            environ = {**environ, "wsgi.input": io.BytesIO(body)}
        return app(environ, start_response)  # type: ignore[no-any-return]

    return wrapped


def schema_run(spec: Path | None, sent: list[dict[str, Any]]) -> Report:
    server = start(agent_writes(KontextMock(seed=7).app, sent), "127.0.0.1", 0)
    try:
        return run_contract(Target(server.url, token="dev-token"),
                            Options(spec=spec, seed=1, layers=("schema",)))
    finally:
        server.stop()


@pytest.mark.slow  # two schema-layer runs
def test_a_run_whose_fuzzed_writes_the_mock_echoes_lists_none_of_them(tmp_path: Path) -> None:
    # With clientInfo closed (as it was), only the kit's memory of its writes keeps the
    # fuzzed keys the mock echoes out of the report.
    closed = tmp_path / "openapi.yaml"
    text = (ROOT / "openapi.yaml").read_text(encoding="utf-8")
    marker = "      required: [name]\n      additionalProperties: true\n"
    assert marker in text
    closed.write_text(text.replace(marker, "      required: [name]\n"), encoding="utf-8")
    for spec in (closed, None):
        sent: list[dict[str, Any]] = []
        report = schema_run(spec, sent)
        assert report.ok, report.render()
        fuzzed = [k for info in sent for k in info if k not in DOCUMENTED_CLIENT_INFO]
        assert fuzzed, "the run wrote no clientInfo key beyond the documented ones"
        assert [u for u in report.undocumented if "clientInfo" in u["name"]] == []
        text = report.render()
        assert "clientInfo." not in text
        # the printed section and the drift report are one list
        printed = text[text.index("Undocumented"):] if "Undocumented (" in text else ""
        for item in report.drift_document()["undocumented"]:
            assert item["name"] in printed
