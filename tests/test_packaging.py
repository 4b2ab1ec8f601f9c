"""The distribution: one import name, ``kontext_mock``, over the repository's three folders.

The wheel installs ``kontext_mock`` (from ``mock_server/``), ``kontext_mock.contracts``
(``contracts/``) and ``kontext_mock.fixtures`` (``fixtures/``) and nothing else, so it
lives beside PyPI's ``fixtures`` and ``contracts`` (``examples/run-in-fresh-venv.sh``
installs the wheel with PyPI's ``fixtures`` into a fresh environment and imports both).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest
import yaml

from kontext_mock.http.specfile import digest

pytestmark = pytest.mark.slow  # builds and installs the wheel

ROOT = Path(__file__).resolve().parent.parent
OLD_NAMES = ("mock_server", "contracts", "fixtures")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(ROOT)], check=True, capture_output=True)
    (built,) = out.glob("kontext_mock-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_installs_kontext_mock_and_nothing_else(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"kontext_mock"}
    names = set(wheel.namelist())
    for expected in ("kontext_mock/openapi.yaml", "kontext_mock/control.yaml",
                     "kontext_mock/http/ui/index.html", "kontext_mock/contracts/cli.py",
                     "kontext_mock/fixtures/plugin.py", "kontext_mock/fixtures/scenarios/mixed.yaml",
                     "kontext_mock/py.typed"):
        assert expected in names, expected


def test_the_packaged_contract_is_the_repositorys(wheel: zipfile.ZipFile) -> None:
    # mock_server/openapi.yaml links to the one at the top; the wheel holds its content
    assert wheel.read("kontext_mock/openapi.yaml") == (ROOT / "openapi.yaml").read_bytes()
    assert yaml.safe_load(wheel.read("kontext_mock/openapi.yaml"))["openapi"].startswith("3.1")


def test_the_packaged_spec_cache_is_of_the_packaged_specs(wheel: zipfile.ZipFile) -> None:
    # an installed mock reads its specs from their JSON form only when it is of their text
    cached = orjson.loads(wheel.read("kontext_mock/spec_cache.json"))
    for name in ("openapi.yaml", "control.yaml"):
        text = wheel.read(f"kontext_mock/{name}")
        assert cached[digest(text)] == yaml.safe_load(text), name


def test_entry_points_name_kontext_mock(wheel: zipfile.ZipFile) -> None:
    (points,) = (n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    text = wheel.read(points).decode()
    assert "kontext-mock = kontext_mock.cli:main" in text
    assert "kontext-contract = kontext_mock.contracts.cli:main" in text
    assert "kontext = kontext_mock.fixtures.plugin" in text


def test_the_install_instructions_name_the_wheel_that_is_built(wheel: zipfile.ZipFile) -> None:
    built = Path(str(wheel.filename)).name
    for doc in ("README.md", "fixtures/README.md", "contracts/README.md"):
        named = set(re.findall(r"kontext_mock-[\w.]+-py3-none-any\.whl", (ROOT / doc).read_text()))
        assert named == {built}, doc


def test_httpx_is_an_extra_the_httpx_helpers_ask_for(wheel: zipfile.ZipFile) -> None:
    (metadata,) = (n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    lines = wheel.read(metadata).decode().splitlines()
    assert "Provides-Extra: httpx" in lines
    assert [line for line in lines if line.startswith("Requires-Dist: httpx")] == [
        'Requires-Dist: httpx>=0.27; extra == "httpx"', 'Requires-Dist: httpx>=0.27; extra == "dev"']


def test_no_code_imports_the_folders_by_their_own_names() -> None:
    # From the checkout the folders are importable as they are named (pytest puts the
    # repository on sys.path): an import by those names would pass here and fail installed.
    found = []
    for base in ("mock_server", "contracts", "fixtures", "tests", "bench", "examples"):
        for path in (ROOT / base).rglob("*.py"):
            if ".work" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                         else [])
                found += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if n.split(".")[0] in OLD_NAMES]
    assert found == []


def test_starting_the_server_loads_no_test_tooling() -> None:
    # The CLI and the mock import neither pytest nor hypothesis nor schemathesis.
    code = ("import sys, kontext_mock.cli, kontext_mock.mock, kontext_mock.http.serve;"
            " print(sorted(m for m in ('pytest', 'hypothesis', 'schemathesis', 'playwright')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
