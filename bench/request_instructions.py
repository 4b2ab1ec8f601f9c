"""A request's cost inside the mock, without sockets: CPU instructions (callgrind) or time.

A request's bytes are fed to a connection of the mock's own server over a stand-in
transport, so what runs is exactly the server's parsing and head building, the request
pipeline, the router, the endpoint and the handler: no event loop wake-up, no system
call. Instruction counts do not depend on how busy the machine is, so two commits
compare within a fraction of a percent where wrk's figures move by ten.

    .venv/bin/python bench/request_instructions.py                  # both, get-session
    .venv/bin/python bench/request_instructions.py --workload list-100 --no-callgrind

Instructions are counted inside httptools' ``feed_data`` only (everything a request does
happens in its callbacks), with the mock's clock frozen: under callgrind a running clock
would reach a new millisecond at every request, which it does about once in twenty
requests at full speed. Needs valgrind for the count (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

APP = "550e8400-e29b-41d4-a716-446655440000"
SESSION = "44444444-4444-4444-8444-444444444444"
PATHS = {
    "get-session": f"/api/v1/applications/{APP}/sessions/{SESSION}",
    "list-100": f"/api/v1/applications/{APP}/sessions?limit=100&status=all",
}
WARM_UP = 20


class _Transport(asyncio.Transport):
    """Takes what the server writes, and throws it away after checking the status."""

    def __init__(self) -> None:
        super().__init__()
        self.last = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.last = bytes(data[:16])

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def feed(workload: str, requests: int, timed: bool) -> list[float]:
    """Serve ``requests`` requests of ``workload`` (after a warm-up); with ``timed``, the
    µs per request of seven rounds of them."""
    import uvloop

    from kontext_mock import KontextMock
    from kontext_mock.http.serve import application_for
    from kontext_mock.http.serving.server import HttpServer, _Connection

    mock = KontextMock(seed=1, sessions=150)
    mock.freeze()
    app = application_for(mock.app, 8)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        server = HttpServer(app, sock)
        loop = uvloop.new_event_loop()
        server.loop = loop
        workers = ThreadPoolExecutor(2)
        server.workers = workers
        app.start(loop, workers)
        app.pipeline.warm()  # type: ignore[attr-defined]
        connection = _Connection(server)
        transport = _Transport()
        connection.connection_made(transport)
        request = (f"GET {PATHS[workload]} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                   "Authorization: Bearer dev-token\r\n\r\n").encode()
        for _ in range(WARM_UP):
            connection.data_received(request)
        if not transport.last.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"{workload}: not answered 200: {transport.last!r}")
        gc.freeze()
        rounds = []
        for _ in range(7 if timed else 1):
            started = time.perf_counter()
            for _ in range(requests):
                connection.data_received(request)
            rounds.append((time.perf_counter() - started) / requests * 1e6)
        app.stop()
        workers.shutdown()
        return rounds


def instructions(workload: str, requests: int) -> float:
    """Instructions per request, counted by callgrind inside ``feed_data``."""
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--toggle-collect=*feed_data*",
         "--callgrind-out-file=/dev/null", sys.executable, __file__, "--workload", workload,
         "--requests", str(requests), "--inside"],
        capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise SystemExit(f"callgrind said no count:\n{run.stderr[-2000:]}")
    return int(found.group(1)) / (requests + WARM_UP)


def main() -> None:
    """Print instructions and (or) µs per request of a workload."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(PATHS), default="get-session")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--no-callgrind", action="store_true", help="time only")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        feed(args.workload, args.requests, timed=False)
        return
    if not args.no_callgrind:
        count = instructions(args.workload, args.requests)
        print(f"{args.workload}: {count / 1000:.1f}k instructions per request (callgrind)")
    rounds = feed(args.workload, max(args.requests, 20000), timed=True)
    print(f"{args.workload}: {min(rounds):.2f} µs per request in process (best of 7)")


if __name__ == "__main__":
    main()
