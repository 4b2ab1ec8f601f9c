#!/usr/bin/env bash
# A/B of two checkouts of the mock: interleaved wrk runs of get-session and list-100.
#
#   bench/ab.sh TREE_A TREE_B [ROUNDS]      e.g. bench/ab.sh /tmp/before . 5
#
# Each tree's mock is served by `python -m kontext_mock.cli serve` from that tree
# (with this checkout's .venv, or $PYTHON), one round at a time, A then B; take medians.
# Needs wrk (apt-get install wrk).
set -euo pipefail
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd); ROUNDS=${3:-5}
PYTHON=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
APP=550e8400-e29b-41d4-a716-446655440000
SESSION=44444444-4444-4444-8444-444444444444
AUTH='Authorization: Bearer dev-token'
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rps() { wrk -t2 -c16 -d3s -H "$AUTH" "$1" | awk '/Requests\/sec/ {print $2}'; }
for round in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    tree=${!side}; port=$(free_port)
    (cd "$tree" && exec "$PYTHON" -m kontext_mock.cli serve --port "$port" --seed 1 \
      --sessions 150 >/dev/null 2>&1) &
    pid=$!
    for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/_mock/clock" >/dev/null && break; sleep 0.1; done
    base="http://127.0.0.1:$port/api/v1/applications/$APP/sessions"
    echo "round $round $side get-session $(rps "$base/$SESSION") list-100 $(rps "$base?limit=100&status=all")"
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  done
done
