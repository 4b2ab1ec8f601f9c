"""The package's layers, one way: the core knows no HTTP, the HTTP layer knows no
command line, plugin or kit; the CLIs, the plugin and the kit sit on top. The HTTP
clients (``clients/``) are a layer of their own beneath the kit, ``record`` and the
command line, which import it and not each other.

Read from the source (type-only imports included): a new import that crosses a layer the
wrong way fails here, whatever the tests run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mock_server"
#: for each layer: the folder, and the kontext_mock modules it may not import
LAYERS = {
    "core": (PACKAGE / "core", ("kontext_mock.http", "kontext_mock.mock", "kontext_mock.cli",
                                "kontext_mock.statefile", "kontext_mock.clients",
                                "kontext_mock.recording", "kontext_mock.contracts",
                                "kontext_mock.fixtures")),
    "http": (PACKAGE / "http", ("kontext_mock.mock", "kontext_mock.cli", "kontext_mock.statefile",
                                "kontext_mock.clients", "kontext_mock.recording",
                                "kontext_mock.contracts", "kontext_mock.fixtures")),
}


def imports(path: Path) -> list[str]:
    """Every module ``path`` imports (absolute imports: the package uses no relative ones)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    folder, above = LAYERS[layer]
    crossing = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted(folder.rglob("*.py"))
        for name in imports(path)
        if any(name == a or name.startswith(a + ".") for a in above)
    ]
    assert crossing == []


def test_the_configuration_stands_below_the_layers() -> None:
    # every layer reads MockConfig: it may use the core's parsers of text, nothing above
    above = ("kontext_mock.http", "kontext_mock.mock", "kontext_mock.cli",
             "kontext_mock.contracts", "kontext_mock.fixtures", "kontext_mock.core.engine")
    crossing = [n for n in imports(PACKAGE / "config.py")
                if any(n == a or n.startswith(a + ".") for a in above)]
    assert crossing == []


def test_the_layers_hold_the_modules_they_say() -> None:
    # a module added at the top of the package is a decision about its layer
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top == ["__init__", "anonymize", "cli", "config", "mock", "recording", "statefile",
                   "version"]


def crossings(paths: list[Path], banned: tuple[str, ...]) -> list[str]:
    """Each import of a ``banned`` module (or one below it) by ``paths``."""
    return [f"{path.relative_to(ROOT)} imports {name}"
            for path in paths for name in imports(path)
            if any(name == b or name.startswith(b + ".") for b in banned)]


def test_the_http_clients_import_nothing_of_the_package_but_themselves() -> None:
    # beneath the kit, record and the CLI: a client that took the kit's errors, the
    # mock or the CLI's options would tie them together again
    paths = sorted((PACKAGE / "clients").rglob("*.py"))
    outside = [f"{path.relative_to(ROOT)} imports {name}"
               for path in paths for name in imports(path)
               if name.startswith("kontext_mock") and not name.startswith("kontext_mock.clients")]
    assert [p.stem for p in paths] == ["__init__", "api", "control", "errors", "pacing"]
    assert outside == []


def test_the_kit_record_and_the_cli_take_the_clients_not_each_other() -> None:
    kit = sorted((ROOT / "contracts").rglob("*.py"))
    top = [PACKAGE / "recording.py", PACKAGE / "anonymize.py", PACKAGE / "cli.py"]
    assert crossings(kit, ("kontext_mock.recording", "kontext_mock.anonymize",
                           "kontext_mock.cli")) == []
    assert crossings(top, ("kontext_mock.contracts",)) == []
    # and each of them reaches a client through the layer
    assert "kontext_mock.clients.api" in imports(PACKAGE / "recording.py")
    assert "kontext_mock.clients.control" in imports(PACKAGE / "cli.py")
    assert "kontext_mock.clients.api" in imports(ROOT / "contracts" / "http.py")
    assert "kontext_mock.clients.control" in imports(ROOT / "contracts" / "control.py")


def test_the_server_imports_none_of_the_apis_modules() -> None:
    # http/serving/ is an HTTP server for any app: it knows nothing of the mock's API, its
    # core or its settings, so the folder shows what is the server's and what the API's
    folder = PACKAGE / "http" / "serving"
    crossing = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted(folder.rglob("*.py"))
        for name in imports(path)
        if name.startswith("kontext_mock") and not (
            name == "kontext_mock.http.serving" or name.startswith("kontext_mock.http.serving."))
    ]
    assert crossing == []
    assert {p.stem for p in folder.glob("*.py")} >= {"server", "exchange", "wsgi"}


def test_no_object_runs_its_own_init_again() -> None:
    # an object re-initialised in place hides what it holds from the type checker and the
    # reader: a method that says what it replaces does it instead
    again = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == "__init__" and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "self"
    ]
    assert again == []
