"""The trial behind the choice of HTTP server: candidates measured side by side.

    .venv/bin/python bench/server_trial.py [--runs 3] [--seconds 3]

Installs the candidates into a virtual environment of their own (bench/.work/trial-venv:
uvicorn with httptools and uvloop, granian, aiohttp, hypercorn, waitress, and this
project), serves the same trivial app on each (``bench/trial_apps.py``: a 600-byte JSON
answer), and measures with wrk at 16 connections, runs interleaved across servers:

* req/s, p99 and the server's CPU time per request (what the server itself costs);
* what it does with a 1 MiB request head, a malformed request line, and a client that
  sends half a head and then nothing (closed, and when, within 15 s).

What no request can show (whether an app can learn that a client left before its request
is run, drop a connection without answering, or hold an event stream without a thread)
is in bench/ANALYSIS.md, from each server's public API. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402
import targets  # noqa: E402
from load import Req  # noqa: E402

VENV = targets.WORK / "trial-venv"
SERVERS = ("kontext", "uvicorn", "granian-asgi", "granian-wsgi", "aiohttp", "hypercorn", "waitress")
PACKAGES = ["uvicorn", "httptools", "uvloop", "granian", "aiohttp", "hypercorn", "waitress"]


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        print("trial: creating bench/.work/trial-venv ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = [str(python), "-c", "import kontext_mock.http.serving.server, " + ", ".join(PACKAGES)]
    if subprocess.run(probe, capture_output=True).returncode:  # new, or the project moved
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(HERE.parent),
                        *PACKAGES], check=True)
    return python


def spawn(python: Path, server: str) -> tuple[subprocess.Popen[bytes], int]:
    port = targets.free_port()
    proc = subprocess.Popen([str(python), str(HERE / "trial_apps.py"), server, str(port)],
                            cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if targets.get(port, "/", timeout=2)[0] == 200:
                return proc, port
        except OSError:
            time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"{server} did not start")


def raw(port: int, data: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        try:
            sock.sendall(data)
            return sock.recv(300)
        except OSError:
            return b""


def describe(answer: bytes) -> str:
    if not answer:
        return "closed, no answer"
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    kind = next((line.split(":", 1)[1].strip() for line in head[1:]
                 if line.lower().startswith("content-type:")), "no body type")
    return f"{' '.join(head[0].split()[1:2])} {kind}"


def trickle(port: int, within: float = 15.0) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=within) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        try:
            while sock.recv(4096):
                pass
        except TimeoutError:
            return f"open after {within:g} s"
        except OSError:
            pass
        return f"closed after {time.monotonic() - started:.1f} s"


def main(argv: list[str] | None = None) -> int:
    """Run the trial; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--servers", default=",".join(SERVERS))
    args = parser.parse_args(argv)
    python = ensure_venv()
    servers = [s for s in args.servers.split(",") if s]
    runs: dict[str, list[tuple[float, float, float]]] = {s: [] for s in servers}
    probes: dict[str, tuple[str, str, str]] = {}
    for round_ in range(args.runs):
        for server in servers if round_ % 2 == 0 else list(reversed(servers)):
            proc, port = spawn(python, server)
            try:
                url = f"http://127.0.0.1:{port}"
                load.run(url, [Req("GET", "/")], seconds=1, engine="wrk")
                before = targets.tree_cpu_seconds(proc.pid)
                figures = load.run(url, [Req("GET", "/")], connections=16, seconds=args.seconds,
                                   engine="wrk")
                spent = targets.tree_cpu_seconds(proc.pid) - before
                runs[server].append((figures.rps, figures.p99_ms,
                                     spent / max(figures.requests, 1) * 1e6))
                if server not in probes:
                    big = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20)
                              + b"\r\n\r\n")
                    bad = raw(port, b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
                    probes[server] = (describe(big), describe(bad), trickle(port))
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    print("| server | req/s | p99 ms | server CPU µs/req | 1 MiB head | malformed request"
          " | half a head, then silence |")
    print("|---|---:|---:|---:|---|---|---|")
    for server in servers:
        rps = statistics.median(r for r, _, _ in runs[server])
        p99 = statistics.median(p for _, p, _ in runs[server])
        cpu = statistics.median(c for _, _, c in runs[server])
        big, bad, slow = probes[server]
        print(f"| {server} | {rps:,.0f} | {p99:.1f} | {cpu:.0f} | {big} | {bad} | {slow} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
