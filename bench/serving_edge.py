"""The serving layer under hostile and long-lived clients, and the cost of durable writes.

    .venv/bin/python bench/serving_edge.py [--runs 5] [--seconds 2]

Prints Markdown (``bench/run.py`` includes it in RESULTS.md). Every figure is a median of
``--runs`` interleaved runs against ``kontext-mock serve`` in its own process:

1. **Event streams.** get-session at 16 connections (wrk) with no stream open, then with
   50 ``/_mock/events`` streams open, both while an agent session heartbeats every 50 ms
   (an event each, sent to every open stream): req/s and p99 of each, and their ratio
   (the streams' cost, the events' own being in both). A row without the heartbeats shows
   what publishing the events costs by itself.
2. **Slow and idle clients.** With 300 connections trickling a request head (a byte a
   second) and 300 idle keep-alive connections open, how long a new client waits for a
   get-session (30 fresh connections, one after the other).
3. **A stream whose client leaves**: seconds from the client closing its connection to
   the mock having dropped the stream's subscription (in-process server, 20 times).
4. **Writes.** Agent-session creates at 8 connections: without a state file, and with
   one (``--state-file``: every create on disk, fsync, before its answer).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import load  # noqa: E402
import targets  # noqa: E402
from load import Figures, Req  # noqa: E402

WORK = targets.WORK
AGENT_BODY = '{"tokenIdentifier":"t","authenticatedUserId":"u","clientSessionId":"c"}'
SERVE = ["--seed", "1", "--sessions", "150"]


def median(figures: list[Figures], key: str) -> float:
    return statistics.median(getattr(f, key) for f in figures)


def spawn(name: str, args: list[str]) -> targets.Running:
    port = targets.free_port()
    return targets.spawn(name, targets.cli_cmd(port, args), port, log=WORK / f"{name}.log",
                         poll=0.05)


# -- 1. event streams ------------------------------------------------------------------------


class Streams:
    """``n`` event streams whose events are read (and thrown away) by one thread.

    The thread drains every stream a few times a second, not event by event: the kernel's
    buffers hold what arrives in between, and a reader woken for every event would take
    from the two cores the very CPU whose sharing the section measures."""

    def __init__(self, port: int, n: int) -> None:
        self.socks = []
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(b"GET /_mock/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            sock.setblocking(False)
            self.socks.append(sock)
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.wait(0.25):
            for sock in self.socks:
                with contextlib.suppress(BlockingIOError):
                    while chunk := sock.recv(1 << 20):
                        self.received += len(chunk)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()


@contextlib.contextmanager
def heartbeating(port: int) -> Iterator[None]:
    """One agent session heartbeating every 50 ms meanwhile: an event on every open stream."""
    import http.client
    import json

    stop = threading.Event()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/v1/agent-sessions", body=AGENT_BODY,
                 headers={"Authorization": "Bearer dev-token", "Content-Type": "application/json"})
    sid = json.loads(conn.getresponse().read())["sessionId"]

    def beat() -> None:
        while not stop.wait(0.05):
            conn.request("POST", f"/api/v1/agent-sessions/{sid}/heartbeat",
                         headers={"Authorization": "Bearer dev-token"})
            conn.getresponse().read()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        conn.close()


def streams_section(runs: int, seconds: float, engine: str) -> list[str]:
    running = spawn("edge-streams", SERVE)
    reqs = [Req("GET", targets.PROBE)]
    quiet: list[Figures] = []
    plain: list[Figures] = []
    streamed: list[Figures] = []
    delivered = 0

    def measured() -> Figures:
        return load.run(running.url, reqs, connections=16, seconds=seconds, engine=engine)

    try:
        load.run(running.url, reqs, seconds=1, engine=engine)
        for _ in range(runs):
            quiet.append(measured())
            with heartbeating(running.port):
                plain.append(measured())
            streams = Streams(running.port, 50)
            try:
                with heartbeating(running.port):
                    streamed.append(measured())
            finally:
                delivered += streams.received
                streams.close()
    finally:
        running.stop()
    p99_plain, p99_streams = median(plain, "p99_ms"), median(streamed, "p99_ms")

    def row(label: str, figures: list[Figures]) -> str:
        return (f"| {label} | {median(figures, 'rps'):,.0f} | {median(figures, 'p50_ms'):.2f} |"
                f" {median(figures, 'p99_ms'):.2f} |")

    return [
        "### Event streams (get-session, 16 connections)", "",
        "| open streams | req/s | p50 ms | p99 ms |", "|---:|---:|---:|---:|",
        row("0, no events", quiet),
        row("0, an event every 50 ms", plain),
        row("50, an event every 50 ms (to each)", streamed), "",
        f"p99 with 50 streams / without, the same events published: **{p99_streams / p99_plain:.2f}x**"
        f" (target < 2x); the streams received {delivered / 1024:,.0f} KiB of events meanwhile.", "",
    ]


# -- 2. slow and idle clients ------------------------------------------------------------------


def hostile_section() -> list[str]:
    running = spawn("edge-hostile", SERVE)
    port = running.port
    hostile: list[socket.socket] = []
    stop = threading.Event()
    try:
        for i in range(600):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            if i % 2:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            else:
                sock.sendall(f"GET {targets.PROBE} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Authorization: Bearer dev-token\r\n\r\n".encode())
                sock.recv(65536)
            hostile.append(sock)

        def trickle() -> None:
            while not stop.wait(1.0):
                for sock in hostile[1::2]:
                    with contextlib.suppress(OSError):  # (answered 408 past its deadline)
                        sock.sendall(b"x")

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        waits = []
        for _ in range(30):
            started = time.perf_counter()
            status, _ = targets.get(port, timeout=30)
            waits.append(time.perf_counter() - started)
            assert status == 200
        stop.set()
        thread.join(5)
    finally:
        for sock in hostile:
            sock.close()
        running.stop()
    return [
        "### A new client beside 300 trickling and 300 idle connections", "",
        f"get-session from 30 fresh connections: median {statistics.median(waits) * 1000:.1f} ms,"
        f" slowest {max(waits) * 1000:.1f} ms (target: answered within 1 s).", "",
    ]


# -- 3. a stream whose client leaves -------------------------------------------------------------


def stream_release_section() -> list[str]:
    from kontext_mock import KontextMock
    from kontext_mock.http.serve import start

    mock = KontextMock(seed=1)
    server = start(mock.app, "127.0.0.1", 0)
    freed = []
    try:
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(b"GET /_mock/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            while b"subscribed" not in sock.recv(4096):
                pass
            started = time.perf_counter()
            sock.close()
            while mock.events.subscriber_count:
                time.sleep(0.0005)
            freed.append(time.perf_counter() - started)
    finally:
        server.stop()
    return [
        "### A stream whose client leaves", "",
        f"from the client's close to the subscription dropped (20 times): median"
        f" {statistics.median(freed) * 1000:.2f} ms, slowest {max(freed) * 1000:.2f} ms"
        " (target: within 2 s).", "",
    ]


# -- 4. writes ------------------------------------------------------------------------------------


def writes_section(runs: int, seconds: float, engine: str) -> list[str]:
    reqs = [Req("POST", "/api/v1/agent-sessions", "application/json", AGENT_BODY)]
    rows = []
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        state = Path(tmp) / "state.json"
        configs = {"no state file": SERVE,
                   "--state-file (fsync before every answer, group commit)":
                   [*SERVE, "--state-file", str(state)]}
        results: dict[str, list[Figures]] = {name: [] for name in configs}
        for _ in range(runs):
            for name, args in configs.items():
                running = spawn("edge-writes", args)
                try:
                    results[name].append(load.run(running.url, reqs, connections=8,
                                                  seconds=seconds, engine=engine))
                finally:
                    running.stop()
                state.unlink(missing_ok=True)
                state.with_name("state.json.log").unlink(missing_ok=True)
        for name, figures in results.items():
            rows.append(f"| {name} | {median(figures, 'rps'):,.0f} | {median(figures, 'p50_ms'):.2f}"
                        f" | {median(figures, 'p99_ms'):.2f} |")
    return ["### Writes (agent-session creates, 8 connections)", "",
            "| mock | creates/s | p50 ms | p99 ms |", "|---|---:|---:|---:|", *rows, ""]


def main(argv: list[str] | None = None) -> int:
    """Measure and print Markdown."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--engine", choices=("wrk", "python"),
                        default="wrk" if load.wrk_path() else "python")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    lines = [*streams_section(args.runs, args.seconds, args.engine), *hostile_section(),
             *stream_release_section(), *writes_section(args.runs, args.seconds, args.engine)]
    print("\n".join(lines).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
