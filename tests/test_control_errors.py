"""Refused control-plane requests say what to give: a fault without an effect, a journal
filter by an unknown method, a body that matches none of a schema's alternatives; never
jsonschema's "is not valid under any of the given schemas"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from flask.testing import FlaskClient

from kontext_mock import KontextMock
from kontext_mock.http.explain import HINT
from kontext_mock.http.spec import default_spec_path

VAGUE = "is not valid under any of the given schemas"


def refusal(answer: Any) -> str:
    """The whole refusal as text, after checking it is a 400 that changed nothing."""
    assert answer.status_code == 400, answer.json
    assert answer.json["error"] == "validation_error"
    text = str(answer.json)
    assert VAGUE not in text
    return text


def test_a_fault_with_only_a_path_names_the_effects_to_give(client: FlaskClient,
                                                             mock: KontextMock) -> None:
    for body in ({"path": "/api/v1/*"}, {"method": "GET"}, {"drop": False}):
        text = refusal(client.post("/_mock/faults", json=body))
        assert "give one of status" in text and "latency" in text and "drop: true" in text
    assert client.get("/_mock/faults").json["items"] == []


def test_a_bad_latency_says_what_a_latency_is(client: FlaskClient) -> None:
    answer = client.post("/_mock/faults", json={"latency": "slow"})
    assert "[low, high]" in refusal(answer)
    assert answer.json["details"][0]["field"] == "latency"


def test_unknown_fields_are_named_with_the_known_ones(client: FlaskClient) -> None:
    text = refusal(client.post("/_mock/faults", json={"status": 503, "retries": 2}))
    assert "unknown field: retries" in text and "known: method, path, latency" in text


def test_the_journal_refuses_an_unknown_method_naming_the_allowed_ones(
    client: FlaskClient,
) -> None:
    answer = client.get("/_mock/journal?method=FOO")
    text = refusal(answer)
    assert "'FOO'" in text
    assert all(m in text for m in ("GET", "POST", "PUT", "PATCH", "DELETE"))
    assert answer.json["details"][0] == {"location": "query", "field": "method",
                                         "message": answer.json["details"][0]["message"]}
    for method in ("DELETE", "delete", "get"):
        assert client.get(f"/_mock/journal?method={method}").status_code == 200


def test_a_scenario_load_needs_a_name_or_a_text(client: FlaskClient) -> None:
    for body in ({}, {"name": "mixed", "yaml": "seed: 1"}):
        assert "either name" in refusal(client.post("/_mock/scenarios/load", json=body))


def test_a_session_time_says_what_a_time_is(client: FlaskClient, mock: KontextMock) -> None:
    before = len(mock.store.sessions)
    answer = client.post("/_mock/sessions", json={"tokenExpiresAt": "tomorrow"})
    text = refusal(answer)
    assert "ISO 8601 instant" in text and "-3m" in text and "'tomorrow'" in text
    # the unknown-property echo of the failed value is not a second complaint
    assert len(answer.json["details"]) == 1
    assert len(mock.store.sessions) == before


def test_a_nullable_object_names_what_it_lacks_not_that_it_is_no_null(
    client: FlaskClient,
) -> None:
    answer = client.post("/_mock/sessions", json={"clientInfo": {}})
    text = refusal(answer)
    assert "'name' is a required property" in text and "null" not in text
    answer = client.post("/_mock/sessions", json={"lifecycle": {}})
    assert "'until' is a required property" in refusal(answer)


def test_a_seed_mix_names_the_states_it_knows(client: FlaskClient) -> None:
    text = refusal(client.post("/_mock/reset", json={"statusMix": {"busy": 1}}))
    assert "unknown field: busy" in text and "active, idle, expired, disconnected" in text


def test_a_clock_duration_says_what_a_duration_is(client: FlaskClient) -> None:
    text = refusal(client.post("/_mock/clock/advance", json={"by": [10]}))
    assert "PT10M" in text and "1h30m" in text


# -- the spec: every alternative a client writes has words, or is "this or null" -------------


def _request_schemas(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for path, item in document["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict):
                continue
            for param in op.get("parameters", []):
                if "$ref" in param:
                    param = _resolve(document, param["$ref"])
                yield f"{method.upper()} {path} {param['name']}", param["schema"]
            for media in op.get("requestBody", {}).get("content", {}).values():
                yield f"{method.upper()} {path} body", media["schema"]


def _resolve(document: dict[str, Any], ref: str) -> Any:
    target: Any = document
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def _alternatives(document: dict[str, Any], schema: Any, where: str,
                  seen: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, list):
        for item in schema:
            yield from _alternatives(document, item, where, seen)
        return
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref in seen:
            return
        seen.add(ref)
        yield from _alternatives(document, _resolve(document, ref), f"{where} -> {ref}", seen)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            yield where, schema
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            for name, sub in value.items():
                yield from _alternatives(document, sub, f"{where}.{name}", seen)
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties", "not"):
            yield from _alternatives(document, value, where, seen)


def _nullable(schema: dict[str, Any]) -> bool:
    branches = schema.get("anyOf") or schema.get("oneOf") or []
    return len(branches) == 2 and {"type": "null"} in branches


def test_every_alternative_a_client_writes_has_words_for_its_failure() -> None:
    document = yaml.safe_load(default_spec_path("control.yaml").read_text())
    unworded = []
    for where, schema in _request_schemas(document):
        for place, alternative in _alternatives(document, schema, where, set()):
            if HINT not in alternative and not _nullable(alternative):
                unworded.append(place)
    assert unworded == []


def test_fields_are_named_from_the_rule_not_from_the_message() -> None:
    # jsonschema's words are prose for people; the field comes from the rule and the value
    from jsonschema import Draft202012Validator

    from kontext_mock.http.explain import explain

    schema = {"type": "object", "required": ["b'c", "d"], "additionalProperties": False,
              "properties": {"b'c": {}, "d": {}, "e": {}}}
    failures = explain(Draft202012Validator(schema).iter_errors({"e": 1, "it's": 2}))
    fields = sorted(str(f) for f, _, _ in failures)
    assert fields == ["None", "b'c", "d"]
    unknown = next(m for f, m, v in failures if v == "additionalProperties")
    assert unknown.startswith("unknown field: it's (known: b'c, d, e)")
    combined = {"allOf": [{"properties": {"a": {"type": "integer"}}}], "unevaluatedProperties": False}
    echo = explain(Draft202012Validator(combined).iter_errors({"a": "x"}))
    assert [v for _, _, v in echo] == ["type"]  # the failed value, not an echo of it as unknown
    both = explain(Draft202012Validator(combined).iter_errors({"a": 1, "z": 2}))
    assert [m for _, m, _ in both] == ["unknown field: z"]
