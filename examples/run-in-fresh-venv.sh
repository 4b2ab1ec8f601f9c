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
"${pip[@]}" install "${wheel[0]}" "$work/sessions-client[test]" 2> >(grep -v "is ignored: it is neither" >&2)

cd "$work/sessions-client"
echo "== the dashboard's files are in the wheel"
"$work/venv/bin/python" - <<'PY'
from mock_server import KontextMock

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
