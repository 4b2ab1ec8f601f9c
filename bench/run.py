"""The benchmark: the mock beside its peers and beside the ceiling of its own stack.

    make bench                    # or: .venv/bin/python bench/run.py [--quick] [--runs 5]

Installs what it needs (wrk through apt-get when root, else a pure-Python load generator;
Prism 5 through npm into bench/.work/), then, in one run on this machine:

* throughput and latency of every workload against (a) the mock, (b) a bare Flask app
  with canned bodies of the same size on the same WSGI server (the ceiling), (c) Prism
  static and Prism dynamic serving openapi.yaml; medians of several runs, the targets'
  runs interleaved so that a noisy neighbour hurts all of them alike;
* start-up time from process start to the first 200;
* resident memory with 1,000 and 100,000 sessions;
* list latency of a 100-session application while the store holds 100, 10,000 and
  100,000 sessions in other applications;
* any ``bench/plugin_*.py`` (the pytest plugin's cost) and ``bench/serving_*.py`` (event
  streams, hostile clients, durable writes), whose Markdown output is included.

Prints a table and writes bench/RESULTS.md (with bench/ANALYSIS.md appended).
Not part of the test suite: nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import load  # noqa: E402
import targets  # noqa: E402
from load import Figures, Req  # noqa: E402

WORK = targets.WORK
LIST = f"/api/v1/applications/{targets.DEV_APP}/sessions"
FORM = "application/x-www-form-urlencoded"
# the documented dev client of the mock (public, not a secret)
TOKEN_BODY = "grant_type=client_credentials&client_id=dev-client&client_secret=dev-secret"  # noqa: S105
TARGETS = ("mock", "ceiling", "prism-static", "prism-dynamic")
WORKLOADS = ("get-session", "list-10", "list-100", "revoke-all", "token", "applications",
             "agent-open", "heartbeat", "disconnect", "mixed")
AGENT = "/api/v1/agent-sessions"
AGENT_BODY = ('{"tokenIdentifier":"bench-token","authenticatedUserId":"bench-user",'
              '"clientSessionId":"bench-client"}')
# The mock's state for the throughput workloads: the dev application holds 150 sessions,
# so a list with limit=100&status=all returns 100 of them.
MOCK_ARGS = ["--seed", "1", "--sessions", "150"]


@dataclass
class Options:
    """How much to measure."""

    runs: int
    seconds: float
    warmup: float
    connections: int
    threads: int
    revoke_apps: int
    engine: str
    targets: tuple[str, ...]
    workloads: tuple[str, ...]
    big: int
    prism_verbosity: str
    skip: set[str] = field(default_factory=set)


# -- setup ------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk's path; apt-get installs it when we are root and it is missing; else "python"."""
    if load.wrk_path():
        return "wrk"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: installing wrk with apt-get ...", flush=True)
        for cmd in (["apt-get", "install", "-y", "-qq", "wrk"],
                    ["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            if load.wrk_path():
                return "wrk"
    print("bench: wrk unavailable; using the pure-Python load generator (lower ceiling)")
    return "python"


def ensure_prism() -> bool:
    """Prism 5 in bench/.work/ (npm install on first use); False when npm is missing."""
    if targets.PRISM.exists():
        return True
    npm = shutil.which("npm")
    if not npm:
        print("bench: npm not found; Prism targets skipped")
        return False
    WORK.mkdir(parents=True, exist_ok=True)
    print("bench: installing @stoplight/prism-cli@5 into bench/.work/ ...", flush=True)
    subprocess.run([npm, "install", "--prefix", str(WORK), "--no-audit", "--no-fund",
                    "--silent", "@stoplight/prism-cli@5"], check=False)
    return targets.PRISM.exists()


# -- workloads ---------------------------------------------------------------------------------


def workload_requests(name: str, session_ids: list[str], fresh: list[str],
                      live: list[str] | None = None) -> list[Req]:
    """The requests of a workload (revoke-all: one per fresh application; heartbeat: the
    ``live`` sessions, those a heartbeat finds connected)."""
    gets = [Req("GET", f"{LIST}/{sid}") for sid in session_ids]
    if name == "get-session":
        return gets
    if name == "list-10":
        return [Req("GET", f"{LIST}?limit=10&status=all")]
    if name == "list-100":
        return [Req("GET", f"{LIST}?limit=100&status=all")]
    if name == "revoke-all":
        return [Req("DELETE", f"/api/v1/applications/{app}/sessions") for app in fresh]
    if name == "token":
        return [Req("POST", "/oauth2/token", FORM, TOKEN_BODY, auth=False)]
    if name == "applications":
        return [Req("GET", "/api/v1/applications")]
    if name == "agent-open":
        return [Req("POST", AGENT, "application/json", AGENT_BODY)]
    if name == "heartbeat":
        return [Req("POST", f"{AGENT}/{sid}/heartbeat") for sid in live or session_ids]
    if name == "disconnect":
        # (idempotent: after the first, each finds its session disconnected already)
        return [Req("POST", f"{AGENT}/{sid}/disconnect") for sid in session_ids]
    if name == "mixed":
        # Read-heavy: 70% get, 15% list-10, 5% list-100, 5% token, 5% revoke-all (the dev
        # application's; after the first it finds nothing left to disconnect).
        rng = random.Random(6)
        out: list[Req] = []
        for _ in range(2000):
            roll = rng.random()
            if roll < 0.70:
                out.append(rng.choice(gets))
            elif roll < 0.85:
                out.append(Req("GET", f"{LIST}?limit=10&status=all"))
            elif roll < 0.90:
                out.append(Req("GET", f"{LIST}?limit=100&status=all"))
            elif roll < 0.95:
                out.append(Req("POST", "/oauth2/token", FORM, TOKEN_BODY, auth=False))
            else:
                out.append(Req("DELETE", LIST))
        return out
    raise ValueError(name)


def capture(opts: Options) -> tuple[list[str], list[str], dict[str, bytes]]:
    """Start the mock once: the dev application's session ids, those of them a heartbeat
    finds connected, and the bodies the ceiling will send (the mock's own answers, byte
    for byte)."""
    port = targets.free_port()
    ids_file = WORK / "capture-ids.txt"
    mock = targets.spawn("mock", targets.mock_cmd(port, MOCK_ARGS, 1, ids_file), port,
                         log=WORK / "capture.log")
    try:
        status, raw = targets.get(port, f"{LIST}?limit=200&status=all")
        assert status == 200, raw[:200]
        items = json.loads(raw)["items"]
        session_ids = [s["id"] for s in items]
        live = [s["id"] for s in items
                if s["status"] != "disconnected" and s["derivedStatus"] != "expired"]
        bodies = {
            "get": targets.get(port)[1],
            "list10": targets.get(port, f"{LIST}?limit=10&status=all")[1],
            "list100": targets.get(port, f"{LIST}?limit=100&status=all")[1],
            "token": targets.request(port, "POST", "/oauth2/token", TOKEN_BODY, FORM, False)[1],
            "apps": targets.get(port, "/api/v1/applications")[1],
            "agent": targets.request(port, "POST", AGENT, AGENT_BODY, "application/json")[1],
            "heartbeat": targets.request(port, "POST", f"{AGENT}/{live[0]}/heartbeat")[1],
            "disconnect": targets.request(port, "POST", f"{AGENT}/{live[-1]}/disconnect")[1],
        }
        fresh = ids_file.read_text().split()[0]
        bodies["revoke"] = targets.request(port, "DELETE", f"/api/v1/applications/{fresh}/sessions")[1]
    finally:
        mock.stop()
    return session_ids, live[:-1], bodies


def start_target(name: str, opts: Options, bodies_file: Path, fresh: int,
                 fresh_file: Path) -> targets.Running:
    """Start one target for one workload."""
    port = targets.free_port()
    log = WORK / f"{name}.log"
    if name == "mock":
        cmd = targets.mock_cmd(port, MOCK_ARGS, fresh, fresh_file)
        # agent-open opens a session per request: more than the default cap (100,000) over
        # one workload's runs, which would then time 409 refusals
        return targets.spawn(name, cmd, port, log=log,
                             env={"KONTEXT_MOCK_MAX_SESSIONS": "10000000"})
    if name == "ceiling":
        cmd = targets.ceiling_cmd(port, bodies_file)
    else:
        cmd = targets.prism_cmd(port, name == "prism-dynamic", opts.prism_verbosity)
    return targets.spawn(name, cmd, port, log=log)


@dataclass
class Cell:
    """The runs of one workload against one target."""

    runs: list[Figures] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Median requests per second."""
        return statistics.median(f.rps for f in self.runs)

    @property
    def p50(self) -> float:
        """Median of the runs' median latencies (ms)."""
        return statistics.median(f.p50_ms for f in self.runs)

    @property
    def p99(self) -> float:
        """Median of the runs' p99 latencies (ms)."""
        return statistics.median(f.p99_ms for f in self.runs)

    @property
    def cpu_us(self) -> float:
        """Median server CPU time per request (µs): steadier than req/s on a shared machine."""
        return statistics.median(f.cpu_us or 0.0 for f in self.runs)

    @property
    def size(self) -> float:
        """Bytes per answer on the wire."""
        return statistics.median(f.bytes_per_response for f in self.runs)

    @property
    def errors(self) -> int:
        """Non-2xx answers and socket errors, all runs."""
        return sum(f.status_errors + f.socket_errors for f in self.runs)


def throughput(opts: Options, session_ids: list[str], live: list[str], bodies_file: Path
               ) -> dict[str, dict[str, Cell]]:
    """Every workload against every target, runs interleaved across targets."""
    table: dict[str, dict[str, Cell]] = {}
    for workload in opts.workloads:
        fresh_count = opts.revoke_apps * (opts.runs + 1) if workload == "revoke-all" else 0
        fresh_file = WORK / "fresh-ids.txt"
        running: dict[str, targets.Running] = {}
        try:
            for name in opts.targets:
                running[name] = start_target(name, opts, bodies_file, fresh_count, fresh_file)
            fresh = fresh_file.read_text().split() if fresh_count else []
            if workload == "revoke-all" and "mock" not in running:
                fresh = [targets.DEV_APP] * opts.revoke_apps * (opts.runs + 1)
            cells = table[workload] = {name: Cell() for name in running}
            for run in range(opts.runs + 1):  # run 0 warms up
                if workload == "revoke-all":
                    n = opts.revoke_apps
                    reqs = workload_requests(workload, session_ids, fresh[run * n:(run + 1) * n])
                    mode, seconds = "once", opts.seconds
                else:
                    reqs = workload_requests(workload, session_ids, [], live)
                    mode, seconds = "cycle", opts.warmup if run == 0 else opts.seconds
                order = list(running.items())
                if run % 2:
                    order.reverse()
                for name, target in order:
                    cpu = target.cpu_seconds()
                    figures = load.run(target.url, reqs, mode=mode, connections=opts.connections,
                                       threads=opts.threads, seconds=seconds, engine=opts.engine)
                    if figures.requests:
                        figures.cpu_us = (target.cpu_seconds() - cpu) / figures.requests * 1e6
                    if run:
                        cells[name].runs.append(figures)
                    errors = figures.status_errors + figures.socket_errors
                    print(f"  {workload:12s} {name:14s} run {run}: {figures.rps:9.0f} req/s"
                          f"  p50 {figures.p50_ms:6.2f} ms  p99 {figures.p99_ms:7.2f} ms"
                          f"  cpu {figures.cpu_us or 0:5.0f} us/req"
                          f"{'  (warm-up)' if not run else ''}"
                          f"{f'  ERRORS {errors}' if errors else ''}", flush=True)
        finally:
            for target in running.values():
                target.stop()
    return table


def startup(opts: Options, bodies_file: Path) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds from process start to the first 200, several times per target.

    CPU time (user + system, the process stopped right after its first answer) hardly
    moves with other load on the machine; wall time does."""
    # Bytecode as an installed package has it: pip compiles site-packages on install, and
    # a first run writes the project's own __pycache__ (unless PYTHONDONTWRITEBYTECODE).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "mock_server"),
                    str(HERE)], stdout=subprocess.DEVNULL, check=False)
    out: dict[str, list[tuple[float, float]]] = {}
    for _ in range(5):
        for name in ("mock", "ceiling", "prism-static"):
            if name not in opts.targets and name != "mock":
                continue
            port = targets.free_port()
            if name == "mock":
                cmd = targets.cli_cmd(port, [])
            elif name == "ceiling":
                cmd = targets.ceiling_cmd(port, bodies_file)
            else:
                cmd = targets.prism_cmd(port, False, opts.prism_verbosity)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            running = targets.spawn(name, cmd, port, log=WORK / f"startup-{name}.log")
            running.stop()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            out.setdefault(name, []).append((running.ready_after, cpu))
    return out


def population_args(other_apps: int, per_app: int) -> list[str]:
    """CLI options for the dev application plus ``other_apps`` applications, ``per_app`` each."""
    return ["--seed", "1", "--organizations", "1" if other_apps else "0",
            "--applications", str(other_apps), "--sessions", str(per_app)]


def memory(opts: Options) -> list[tuple[int, float, float, float]]:
    """(sessions, RSS after start MiB, RSS after serving MiB, seconds to first 200)."""
    rows = []
    for total in (1_000, opts.big):
        per_app = 100 if total <= 10_000 else 1_000
        apps = total // per_app - 1
        port = targets.free_port()
        running = targets.spawn(f"mock-{total}", targets.cli_cmd(port, population_args(apps, per_app)),
                                port, log=WORK / f"memory-{total}.log", poll=0.05)
        try:
            before = running.rss_mb()
            for path in (f"{LIST}?limit=200&status=all", targets.PROBE):
                for _ in range(50):
                    targets.get(port, path)
            rows.append((total, before, running.rss_mb(), running.ready_after))
        finally:
            running.stop()
    return rows


def scaling(opts: Options) -> list[tuple[int, Figures]]:
    """List latency (one connection) of the 100-session dev application, by store size.

    The three mocks run side by side and are measured in interleaved rounds, so that the
    machine's other load falls on all three alike."""
    reqs = [Req("GET", f"{LIST}?limit=100&status=all")]
    sizes = (100, opts.big // 10, opts.big)
    running: dict[int, targets.Running] = {}
    try:
        for others in sizes:
            port = targets.free_port()
            # 100,000 in other applications and the dev application's 100: over the mock's
            # default ceiling of 100,000 sessions, which its environment variable lifts.
            running[others] = targets.spawn(
                f"mock-scale-{others}", targets.cli_cmd(port, population_args(others // 100, 100)),
                port, log=WORK / f"scale-{others}.log", poll=0.05,
                env={"KONTEXT_MOCK_MAX_SESSIONS": str(others + 1000)})
        for target in running.values():
            load.run(target.url, reqs, connections=1, threads=1, seconds=opts.warmup,
                     engine=opts.engine)
        runs: dict[int, list[Figures]] = {others: [] for others in sizes}
        for round_ in range(opts.runs):
            for others in (sizes if round_ % 2 == 0 else tuple(reversed(sizes))):
                runs[others].append(load.run(running[others].url, reqs, connections=1,
                                             threads=1, seconds=max(1.0, opts.seconds / 2),
                                             engine=opts.engine))
    finally:
        for target in running.values():
            target.stop()
    rows = []
    for others in sizes:
        middle = sorted(runs[others], key=lambda f: f.p50_ms)[len(runs[others]) // 2]
        rows.append((others, middle))
        print(f"  scaling {others:>7} others: p50 {middle.p50_ms:.3f} ms"
              f"  p99 {middle.p99_ms:.3f} ms  {middle.rps:.0f} req/s", flush=True)
    return rows


SECTIONS = {"plugin_": "The pytest plugin's cost", "serving_": "The serving layer's edges"}


def plugin_sections() -> list[tuple[str, str]]:
    """Markdown from every bench/plugin_*.py and bench/serving_*.py."""
    out = []
    for script in sorted(p for prefix in SECTIONS for p in HERE.glob(f"{prefix}*.py")):
        print(f"bench: {script.name} ...", flush=True)
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              cwd=HERE.parent, check=False)
        text = done.stdout.strip() if done.returncode == 0 else (
            f"failed ({done.returncode}):\n\n```\n{(done.stdout + done.stderr)[-2000:]}\n```")
        out.append((script.name, text))
    return out


# -- the report --------------------------------------------------------------------------------


def versions(engine: str) -> dict[str, str]:
    """Versions of everything measured."""
    out = {"python": platform.python_version()}
    for dist in ("flask", "werkzeug", "httptools", "uvloop", "orjson", "jsonschema",
                 "kontext-mock"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "-"
    if engine == "wrk":
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        out["wrk"] = (wrk.stdout + wrk.stderr).split("\n")[0].strip()
    else:
        out["load generator"] = "bench/load.py (pure Python)"
    if targets.PRISM.exists():
        prism = subprocess.run([str(targets.PRISM), "--version"], capture_output=True, text=True,
                               check=False)
        out["prism"] = prism.stdout.strip()
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
        out["node"] = node.stdout.strip()
    return out


def machine() -> str:
    """CPU, cores, memory, kernel and load."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    load1 = os.getloadavg()[0]
    return (f"{cpu}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.1f} GiB RAM,"
            f" {platform.system()} {platform.release()}; load average {load1:.2f} at start")


@dataclass
class Check:
    """One target of the performance issues."""

    what: str
    achieved: str
    met: bool | None  # None: not measured in this run


def checks(table: dict[str, dict[str, Cell]], start: dict[str, list[tuple[float, float]]],
           mem: list[tuple[int, float, float, float]], scale: list[tuple[int, Figures]],
           big: int) -> list[Check]:
    """The issue's targets against this run's figures."""
    out: list[Check] = []

    def ratio(workload: str, other: str, at_least: float, label: str) -> None:
        row = table.get(workload, {})
        if "mock" in row and other in row:
            r = row["mock"].rps / row[other].rps
            out.append(Check(f"{workload} throughput >= {label} {other}", f"{r:.2f}x", r >= at_least))
        else:
            out.append(Check(f"{workload} throughput >= {label} {other}", "not measured", None))

    # issue 17: every public operation at least 3x Prism static; get-session 8x, list-100 5x
    for workload in table:
        if workload not in ("get-session", "list-100", "mixed"):
            ratio(workload, "prism-static", 3, "3x")
    ratio("get-session", "prism-static", 8, "8x")
    ratio("list-100", "prism-static", 5, "5x")
    ratio("get-session", "prism-dynamic", 8, "8x")
    ratio("get-session", "ceiling", 0.6, "60% of")
    ratio("list-100", "ceiling", 0.6, "60% of")
    for workload in ("get-session", "list-10", "list-100"):
        cell = table.get(workload, {}).get("mock")
        if cell:
            out.append(Check(f"{workload} p99 at 16 connections < 25 ms", f"{cell.p99:.1f} ms",
                             cell.p99 < 25))
    if "mock" in start:
        wall = statistics.median(w for w, _ in start["mock"])
        cpu = statistics.median(c for _, c in start["mock"])
        out.append(Check("start-up to first answer < 0.5 s",
                         f"{wall:.2f} s wall ({cpu:.2f} s CPU)", wall < 0.5))
    for total, _, after, _ in mem:
        if total == big == 100_000:
            out.append(Check("100,000 sessions resident < 300 MB", f"{after * 1.048576:.0f} MB",
                             after * 1.048576 < 300))
    if len(scale) >= 2:
        first, last = scale[0][1].p50_ms, scale[-1][1].p50_ms
        out.append(Check(f"list of a 100-session app: {scale[-1][0]:,} vs {scale[0][0]:,} others"
                         " within 20%", f"{(last / first - 1) * 100:+.0f}%",
                         abs(last / first - 1) <= 0.2))
    return out


def fmt_ratio(a: Cell | None, b: Cell | None) -> str:
    return f"{a.rps / b.rps:.2f}x" if a and b and b.rps else "-"


def render(opts: Options, command: str, table: dict[str, dict[str, Cell]],
           start: dict[str, list[tuple[float, float]]],
           mem: list[tuple[int, float, float, float]],
           scale: list[tuple[int, Figures]], plugins: list[tuple[str, str]],
           found: list[Check], began: datetime, engine: str) -> tuple[str, str]:
    """(terminal text, RESULTS.md text)."""
    lines = ["# Benchmark results", "",
             f"Generated by `bench/run.py` on {began:%Y-%m-%d %H:%M} UTC.", "",
             f"- **command:** `{command}`",
             f"- **machine:** {machine()}",
             "- **versions:** " + ", ".join(f"{k} {v}" for k, v in versions(engine).items()),
             f"- **load:** {engine}, {opts.connections} connections, {opts.threads} threads;"
             f" {opts.runs} runs of {opts.seconds:g} s per cell after a {opts.warmup:g} s warm-up"
             " (revoke-all: one pass over"
             f" {opts.revoke_apps} freshly seeded applications per run); runs interleaved"
             " across targets; figures are medians of the runs.",
             f"- **mock:** `kontext-mock serve {' '.join(MOCK_ARGS)}` (its own HTTP server:"
             " one event loop and 8 worker threads; running clock; every public operation"
             " answered by the router (no Flask) on the loop when the store is free, else in"
             " a worker);"
             " the dev application holds 150 sessions; lists use `status=all`.",
             "- **ceiling:** bench/ceiling.py, the same requests answered by a bare Flask app"
             " with the mock's own bodies, on the same server with the same threads (every"
             " request in a worker: the server runs any WSGI app that way).",
             f"- **Prism:** `prism mock [-d] -v {opts.prism_verbosity} openapi.yaml`.", "",
             "## Targets", "", "| target | achieved | met |", "|---|---|---|"]
    for c in found:
        lines.append(f"| {c.what} | {c.achieved} |"
                     f" {'yes' if c.met else 'n/a' if c.met is None else '**no**'} |")
    lines += ["", "## Throughput and latency", "",
              "| workload | target | req/s | p50 ms | p99 ms | server CPU µs/req | bytes/answer"
              " | vs ceiling | vs Prism static | vs Prism dynamic | errors |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    term = [f"{'workload':12s} {'target':14s} {'req/s':>9s} {'p50ms':>7s} {'p99ms':>7s}"
            f" {'cpu-us':>7s} {'bytes':>7s} {'/ceil':>6s} {'/prism':>7s} {'/prism-d':>8s}"]
    for workload, row in table.items():
        for name, cell in row.items():
            rc = fmt_ratio(cell, row.get("ceiling"))
            rs = fmt_ratio(cell, row.get("prism-static"))
            rd = fmt_ratio(cell, row.get("prism-dynamic"))
            lines.append(f"| {workload} | {name} | {cell.rps:,.0f} | {cell.p50:.2f} |"
                         f" {cell.p99:.2f} | {cell.cpu_us:,.0f} | {cell.size:,.0f} | {rc} | {rs} |"
                         f" {rd} | {cell.errors} |")
            term.append(f"{workload:12s} {name:14s} {cell.rps:9.0f} {cell.p50:7.2f}"
                        f" {cell.p99:7.2f} {cell.cpu_us:7.0f} {cell.size:7.0f} {rc:>6s} {rs:>7s}"
                        f" {rd:>8s}")
    if start:
        lines += ["", "## Start-up (process start to the first 200)", "",
                  "| target | median wall s | median CPU s | wall s of each run |",
                  "|---|---:|---:|---|"]
        for name, values in start.items():
            wall = statistics.median(w for w, _ in values)
            cpu = statistics.median(c for _, c in values)
            lines.append(f"| {name} | {wall:.3f} | {cpu:.3f} |"
                         f" {', '.join(f'{w:.3f}' for w, _ in values)} |")
            term.append(f"start-up {name:14s} {wall:.3f} s wall, {cpu:.3f} s CPU")
    if mem:
        lines += ["", "## Memory (`kontext-mock serve`, seeded)", "",
                  "| sessions | RSS after start MiB | RSS after serving lists MiB |"
                  " start to first 200 s |", "|---:|---:|---:|---:|"]
        for total, before, after, ready in mem:
            lines.append(f"| {total:,} | {before:.0f} | {after:.0f} | {ready:.1f} |")
            term.append(f"memory {total:>7,} sessions: {after:.0f} MiB ({ready:.1f} s to start)")
    if scale:
        lines += ["", "## List of a 100-session application by store size (1 connection)", "",
                  "| sessions in other applications | p50 ms | p99 ms | req/s |",
                  "|---:|---:|---:|---:|"]
        for others, f in scale:
            lines.append(f"| {others:,} | {f.p50_ms:.3f} | {f.p99_ms:.3f} | {f.rps:,.0f} |")
            term.append(f"list by store size {others:>7,}: p50 {f.p50_ms:.3f} ms")
    for name, text in plugins:
        title = next(t for prefix, t in SECTIONS.items() if name.startswith(prefix))
        fenced = name.startswith("plugin_")  # the plugin's scripts print a plain table
        lines += ["", f"## {title} (`bench/{name}`)", "",
                  *(["```", text, "```"] if fenced else [text])]
        term += ["", text]
    analysis = HERE / "ANALYSIS.md"
    if analysis.exists():
        lines += ["", analysis.read_text().strip()]
    term += ["", *[f"{'MET   ' if c.met else 'n/a   ' if c.met is None else 'MISSED'} {c.what}:"
                   f" {c.achieved}" for c in found]]
    return "\n".join(term), "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write bench/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8,
                        help="measured runs per cell, interleaved across targets (default 8)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per run (default 2)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (default 2)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="load generator threads")
    parser.add_argument("--revoke-apps", type=int, default=600,
                        help="fresh applications per revoke-all run (default 600)")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--skip", default="",
                        help="comma list of: startup, memory, scaling, plugins")
    parser.add_argument("--engine", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--prism-verbosity", default="error",
                        help="Prism's -v (default error: its fastest; 'info' logs every request)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 run of 2 s, 10,000 sessions at most")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    began = datetime.now(UTC)
    command = "make bench" if os.environ.get("MAKELEVEL") else shlex.join(
        [Path(sys.executable).name, "bench/run.py", *(argv if argv is not None else sys.argv[1:])])
    WORK.mkdir(parents=True, exist_ok=True)
    engine = ensure_wrk() if args.engine == "auto" else args.engine
    wanted = tuple(t for t in args.targets.split(",") if t)
    if any(t.startswith("prism") for t in wanted) and not ensure_prism():
        wanted = tuple(t for t in wanted if not t.startswith("prism"))
    opts = Options(
        runs=2 if args.quick else args.runs, seconds=1 if args.quick else args.seconds,
        warmup=1 if args.quick else args.warmup, connections=args.connections,
        threads=args.threads, revoke_apps=200 if args.quick else args.revoke_apps,
        engine=engine, targets=wanted,
        workloads=tuple(w for w in args.workloads.split(",") if w),
        big=10_000 if args.quick else 100_000, prism_verbosity=args.prism_verbosity,
        skip=set(args.skip.split(",")) - {""},
    )
    print(f"bench: {machine()}", flush=True)
    session_ids, live, bodies = capture(opts)
    bodies_file = WORK / "bodies.json"
    bodies_file.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in bodies.items()}))
    table = throughput(opts, session_ids, live, bodies_file)
    start = {} if "startup" in opts.skip else startup(opts, bodies_file)
    mem = [] if "memory" in opts.skip else memory(opts)
    scale = [] if "scaling" in opts.skip else scaling(opts)
    plugins = [] if "plugins" in opts.skip else plugin_sections()
    found = checks(table, start, mem, scale, opts.big)
    text, markdown = render(opts, command, table, start, mem, scale, plugins, found, began, engine)
    print("\n" + text)
    args.output.write_text(markdown)
    print(f"\nbench: wrote {args.output} ({time.time() - began.timestamp():.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
