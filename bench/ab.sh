#!/usr/bin/env bash
# A/B of two checkouts of the mock: interleaved wrk runs of get-session and list-100,
# each with the server's CPU time per request (what the machine's noise moves least).
#
#   bench/ab.sh TREE_A TREE_B [ROUNDS]      e.g. bench/ab.sh /tmp/before . 5
#
# Each tree's code is imported from that tree: a link to its mock_server/ named
# kontext_mock, first on PYTHONPATH (an editable install would otherwise serve this
# checkout's code for both). Served by `kontext_mock.cli serve` with this checkout's .venv
# (or $PYTHON), one round at a time, A then B; take medians. Needs wrk (apt-get install wrk).
set -euo pipefail
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd); ROUNDS=${3:-5}
PYTHON=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
APP=550e8400-e29b-41d4-a716-446655440000
SESSION=44444444-4444-4444-8444-444444444444
AUTH='Authorization: Bearer dev-token'
TICKS=$(getconf CLK_TCK)
LINKS=$(mktemp -d)
trap 'rm -rf "$LINKS"' EXIT
mkdir "$LINKS/A" "$LINKS/B"
ln -s "$A/mock_server" "$LINKS/A/kontext_mock"
ln -s "$B/mock_server" "$LINKS/B/kontext_mock"
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# "req/s µs-of-server-CPU-per-request" of a 3 s wrk run against $2, served by process $1
measure() {
  local before after rps
  before=$(cpu_ticks "$1")
  rps=$(wrk -t2 -c16 -d3s -H "$AUTH" "$2" | awk '/Requests\/sec/ {print $2}')
  after=$(cpu_ticks "$1")
  "$PYTHON" -c "print('$rps', round(($after - $before) / $TICKS / ($rps * 3) * 1e6, 1))"
}
for round in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    port=$(free_port)
    PYTHONPATH="$LINKS/$side" "$PYTHON" -m kontext_mock.cli serve --port "$port" --seed 1 \
      --sessions 150 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/_mock/clock" >/dev/null && break; sleep 0.1; done
    sleep 2  # (its validators compile in a worker as it starts)
    base="http://127.0.0.1:$port/api/v1/applications/$APP/sessions"
    echo "round $round $side get-session $(measure "$pid" "$base/$SESSION")" \
      "list-100 $(measure "$pid" "$base?limit=100&status=all") (req/s, µs CPU/req)"
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  done
done
