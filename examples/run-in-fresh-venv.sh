#!/usr/bin/env bash
# Build kontext-mock's wheel, install it with the example client into a fresh virtual
# environment, and run the example's tests there twice: over HTTP, then in-process.
# This is what a user does; nothing from the project's own checkout is importable.
#
#   examples/run-in-fresh-venv.sh            (PYTHON=python3.12 to pick an interpreter)
#   KEEP_VENV=1 examples/run-in-fresh-venv.sh   keeps the work directory for a look
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/kontext-example.XXXXXX")"
if [[ -z "${KEEP_VENV:-}" ]]; then trap 'rm -rf "$work"' EXIT; else echo "work dir: $work"; fi
start=$SECONDS

echo "== building the kontext-mock wheel"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$root"
wheel=("$work"/dist/kontext_mock-*.whl)

echo "== installing it and the example into a fresh venv"
"$python" -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip --quiet --disable-pip-version-check)
# A copy of the example, so nothing (caches, build dirs) is written into the checkout.
cp -r "$here/sessions-client" "$work/sessions-client"
# PyPI's own "fixtures" (a testing library) beside it: kontext-mock installs one name,
# kontext_mock, so the two never meet.
"${pip[@]}" install "${wheel[0]}" "$work/sessions-client[test]" fixtures

cd "$work/sessions-client"
echo "== the wheel installs kontext_mock only, beside PyPI's fixtures; the dashboard's files are in it"
"$work/venv/bin/python" - <<'PY'
import importlib.metadata
from pathlib import Path

import fixtures  # PyPI's: untouched by kontext-mock
from kontext_mock import KontextMock
from kontext_mock.fixtures import KontextServer

assert hasattr(fixtures, "Fixture"), fixtures.__file__  # the testing library's own
assert KontextServer.__module__ == "kontext_mock.fixtures.server"
files = importlib.metadata.files("kontext-mock") or []
tops = {Path(str(f)).parts[0] for f in files if not str(f).startswith("kontext_mock-")}
assert tops <= {"kontext_mock", "..", "bin"}, tops

client = KontextMock().app.test_client()
for path in ("/_mock/ui/", "/_mock/ui/dashboard.js", "/_mock/ui/dashboard.css"):
    answer = client.get(path)
    assert answer.status_code == 200 and len(answer.data) > 1000, (path, answer.status_code)
PY

echo "== running the example's tests"
# The plugin must load through its entry point, not from a conftest or the checkout.
"$work/venv/bin/python" -m pytest -p no:cacheprovider -q --kontext-transport=http
"$work/venv/bin/python" -m pytest -p no:cacheprovider -q --kontext-transport=inprocess

echo "== done in $((SECONDS - start)) s"
