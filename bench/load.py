"""Load generators: wrk where installed, else a pure-Python one; both report the same figures.

A workload is a list of :class:`Req`. ``cycle`` replays it for a duration; ``once`` sends
each request exactly once (revoke-all on fresh applications). Both are closed loops: each
connection sends its next request when the previous answer arrived.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
LUA = HERE / "requests.lua"


@dataclass(frozen=True)
class Req:
    """One request of a workload."""

    method: str
    path: str
    content_type: str = ""
    body: str = ""
    auth: bool = True

    def line(self) -> str:
        """The request as a line of requests.lua's input file."""
        return "\t".join((self.method, self.path, self.content_type, self.body,
                          "1" if self.auth else "0"))


@dataclass
class Figures:
    """What one load run measured."""

    requests: int
    seconds: float
    bytes: int
    status_errors: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    #: the server's CPU time (user + system) per answered request, when known
    cpu_us: float | None = None

    @property
    def rps(self) -> float:
        """Requests answered per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def bytes_per_response(self) -> float:
        """Mean size of an answer on the wire (headers included)."""
        return self.bytes / self.requests if self.requests else 0.0


def wrk_path() -> str | None:
    """The wrk binary, if installed."""
    return shutil.which("wrk")


def run(base_url: str, reqs: list[Req], *, mode: str = "cycle", connections: int = 16,
        threads: int = 2, seconds: float = 5.0, engine: str = "wrk") -> Figures:
    """Run one load test; ``engine`` is "wrk" or "python"."""
    if engine == "wrk":
        return _run_wrk(base_url, reqs, mode, connections, threads, seconds)
    return _run_python(base_url, reqs, mode, connections, threads, seconds)


# -- wrk -------------------------------------------------------------------------------------


def _run_wrk(base_url: str, reqs: list[Req], mode: str, connections: int, threads: int,
             seconds: float) -> Figures:
    threads = min(threads, connections)
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "requests.tsv"
        listing.write_text("\n".join(r.line() for r in reqs) + "\n")
        markers = Path(tmp) / "done"
        markers.mkdir()
        # "once" ends when every thread is done (SIGINT makes wrk report at once); the
        # duration is only a cap then.
        duration = max(1, round(seconds if mode == "cycle" else seconds * 30))
        cmd = [wrk_path() or "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
               "--timeout", "5s", "-s", str(LUA), base_url, "--", str(listing), mode,
               str(threads), str(markers)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if mode == "once":
            while proc.poll() is None and len(list(markers.iterdir())) < threads:
                time.sleep(0.005)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=duration + 60)
    line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no figures: {stdout[-500:]} {stderr[-500:]}")
    d = json.loads(line[6:])
    return Figures(
        requests=d["requests"], seconds=d["duration_us"] / 1e6, bytes=d["bytes"],
        status_errors=d["status_errors"], socket_errors=d["socket_errors"],
        p50_ms=d["p50_us"] / 1000, p90_ms=d["p90_us"] / 1000, p99_ms=d["p99_us"] / 1000,
        mean_ms=d["mean_us"] / 1000, max_ms=d["max_us"] / 1000,
    )


# -- pure Python ------------------------------------------------------------------------------


def _worker(base_url: str, reqs: list[Req], mode: str, connections: int, seconds: float,
            queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One process: ``connections`` threads, one keep-alive connection each."""
    split = urlsplit(base_url)
    latencies: list[float] = []
    counts = {"bytes": 0, "status": 0, "socket": 0}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop(k: int) -> None:
        mine = reqs[k::connections] if mode == "once" else reqs
        i = (len(mine) * k // connections) if mode == "cycle" else 0
        conn = http.client.HTTPConnection(split.hostname, split.port, timeout=5)
        local: list[float] = []
        nbytes = status = socket_errors = 0
        while True:
            if mode == "once":
                if i >= len(mine):
                    break
            elif time.perf_counter() >= deadline:
                break
            r = mine[i % len(mine)]
            i += 1
            headers = {"Authorization": "Bearer dev-token"} if r.auth else {}
            if r.content_type:
                headers["Content-Type"] = r.content_type
            t0 = time.perf_counter()
            try:
                conn.request(r.method, r.path, body=r.body or None, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException):
                socket_errors += 1
                conn.close()
                conn = http.client.HTTPConnection(split.hostname, split.port, timeout=5)
                continue
            local.append(time.perf_counter() - t0)
            nbytes += len(data) + 150  # about the size of the answer's head
            status += answer.status >= 400
        conn.close()
        with lock:
            latencies.extend(local)
            counts["bytes"] += nbytes
            counts["status"] += status
            counts["socket"] += socket_errors

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put((latencies, counts))


def _run_python(base_url: str, reqs: list[Req], mode: str, connections: int, processes: int,
                seconds: float) -> Figures:
    processes = max(1, min(processes, connections))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    share = [connections // processes + (1 if k < connections % processes else 0)
             for k in range(processes)]
    parts = [reqs[k::processes] for k in range(processes)] if mode == "once" else [reqs] * processes
    started = time.perf_counter()
    procs = [ctx.Process(target=_worker, args=(base_url, parts[k], mode, share[k], seconds, queue))
             for k in range(processes)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(x for lat, _ in results for x in lat)
    if not latencies:
        raise RuntimeError("no request was answered")

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return Figures(
        requests=len(latencies), seconds=min(elapsed, seconds) if mode == "cycle" else elapsed,
        bytes=sum(c["bytes"] for _, c in results),
        status_errors=sum(c["status"] for _, c in results),
        socket_errors=sum(c["socket"] for _, c in results),
        p50_ms=pct(0.5), p90_ms=pct(0.9), p99_ms=pct(0.99),
        mean_ms=statistics.fmean(latencies) * 1000, max_ms=latencies[-1] * 1000,
    )
