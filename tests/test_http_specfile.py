"""The specs' shipped JSON form (``mock_server/spec_cache.json``, ``http/specfile.py``):
the same documents as the YAML, and never used for a text it was not made from."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
import yaml

from kontext_mock.http import specfile
from kontext_mock.http.spec import Spec, default_spec_path

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", specfile.SPEC_NAMES)
def test_the_cache_holds_each_spec_as_its_yaml_reads(name: str) -> None:
    text = default_spec_path(name).read_bytes()
    cached = specfile.cached_documents()
    assert specfile.digest(text) in cached, (
        f"mock_server/{specfile.CACHE_NAME} is behind {name}: run `make spec-cache`")
    assert cached[specfile.digest(text)] == yaml.safe_load(text)


def test_the_cache_holds_nothing_but_the_specs() -> None:
    digests = {specfile.digest(default_spec_path(n).read_bytes()) for n in specfile.SPEC_NAMES}
    assert set(specfile.cached_documents()) == digests


def test_the_cache_keeps_the_yaml_order() -> None:
    # the mock serves its document (GET /openapi.json) in the YAML's order
    text = default_spec_path().read_bytes()
    cached = specfile.cached_documents()[specfile.digest(text)]
    assert orjson.dumps(cached) == orjson.dumps(yaml.safe_load(text))


def test_a_package_spec_is_read_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_yaml(text: bytes) -> object:
        raise AssertionError("read from YAML")

    monkeypatch.setattr(specfile, "read_yaml", no_yaml)
    document = specfile.read_document(default_spec_path())
    assert document["info"]["title"] == yaml.safe_load(default_spec_path().read_text())["info"]["title"]


def test_an_edited_spec_is_read_from_its_yaml(tmp_path: Path) -> None:
    edited = tmp_path / "openapi.yaml"
    text = default_spec_path().read_text(encoding="utf-8")
    title = yaml.safe_load(text)["info"]["title"]
    edited.write_text(text.replace(f"title: {title}", "title: Edited", 1), encoding="utf-8")
    assert Spec.from_file(edited).document["info"]["title"] == "Edited"


def test_each_read_gives_a_document_of_its_own() -> None:
    first = specfile.read_document(default_spec_path())
    first["info"]["title"] = "changed by a caller"
    assert specfile.read_document(default_spec_path())["info"]["title"] != "changed by a caller"


def test_without_a_cache_the_specs_read_from_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(specfile, "CACHE_NAME", "no-such-cache.json")
    assert specfile.cached_documents() == {}
    assert specfile.read_document(default_spec_path()) == yaml.safe_load(
        default_spec_path().read_bytes())


def test_write_cache_writes_what_the_shipped_one_holds(tmp_path: Path) -> None:
    for name in specfile.SPEC_NAMES:
        shutil.copy(default_spec_path(name), tmp_path / name)
    written = specfile.write_cache(tmp_path)
    assert orjson.loads(written.read_bytes()) == specfile.cached_documents()


def test_write_cache_refuses_a_spec_json_would_change(tmp_path: Path) -> None:
    for name in specfile.SPEC_NAMES:
        shutil.copy(default_spec_path(name), tmp_path / name)
    with (tmp_path / "control.yaml").open("a", encoding="utf-8") as f:
        f.write("x-released: 2026-01-01\n")  # a YAML date, which JSON would make a string
    with pytest.raises(ValueError, match=r"control\.yaml"):
        specfile.write_cache(tmp_path)
    assert not (tmp_path / specfile.CACHE_NAME).exists()
