"""How long the command line takes: a control command against a running mock, and
``serve`` from its start to its first answer.

    .venv/bin/python bench/cli_startup.py [--runs 15] [--before main]

* ``kontext-mock clock show`` (the console script, as a user runs it) against a running
  mock, beside ``python -c 'import json, urllib.request'``, the floor of any Python
  command that talks HTTP: the medians of ``--runs`` interleaved runs, and their ratio
  (the target: within 3x);
* the same command through ``python -m kontext_mock.cli``, for this tree and for the
  tree of ``--before`` (a git revision, unpacked into bench/.work), interleaved;
* ``serve``, from the process's start to its first 200, wall and CPU time, for both
  trees, interleaved.

Each tree is imported from a folder of links laid out as the installed package is
(``kontext_mock`` with ``contracts`` and ``fixtures`` inside it), so both run with the
same interpreter and libraries. Bytecode is written by a warm-up run of each command
first, as an installed package has it. CPU time (user + system of the child) hardly moves
with other load on the machine; wall time does. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import targets  # noqa: E402

WORK = HERE / ".work"
PYTHON = sys.executable
SCRIPT = Path(PYTHON).parent / "kontext-mock"
FLOOR = [PYTHON, "-c", "import json, urllib.request"]


def package_root(tree: Path, name: str) -> Path:
    """A folder whose ``kontext_mock`` is ``tree``'s package, as installed."""
    root = WORK / f"pkg-{name}"
    shutil.rmtree(root, ignore_errors=True)
    package = root / "kontext_mock"
    package.mkdir(parents=True)
    for entry in sorted((tree / "mock_server").iterdir()):
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for folder in ("contracts", "fixtures"):
        (package / folder).symlink_to(tree / folder)
    return root


def unpack(revision: str) -> Path:
    """The tree of ``revision`` (``git archive``), in bench/.work."""
    tree = WORK / f"tree-{revision.replace('/', '-')}"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(targets.ROOT), "archive", revision],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def env_for(root: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if root is not None:
        env["PYTHONPATH"] = str(root)
    return env


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``cmd``, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, cwd=targets.ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def serve_once(root: Path, name: str) -> tuple[float, float]:
    """(wall, CPU) seconds from ``serve``'s start to its first 200."""
    port = targets.free_port()
    cmd = [PYTHON, "-m", "kontext_mock.cli", "serve", "--port", str(port)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    running = targets.spawn(name, cmd, port, log=WORK / f"cli-startup-{name}.log",
                            env=env_for(root), poll=0.002)
    running.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return running.ready_after, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--before", default="main", metavar="REV",
                        help="the revision to compare with (default main)")
    opts = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    after_root = package_root(targets.ROOT, "after")
    before_root = package_root(unpack(opts.before), "before")

    port = targets.free_port()
    mock = targets.spawn("mock", [str(SCRIPT), "serve", "--port", str(port), "--frozen"], port,
                         log=WORK / "cli-startup-mock.log", env=env_for(None))
    try:
        url = f"http://127.0.0.1:{port}"
        clock = ["clock", "show", "--url", url]
        commands = {
            "python -c 'import json, urllib.request'": (FLOOR, env_for(None)),
            "kontext-mock clock show": ([str(SCRIPT), *clock], env_for(None)),
            "python -m kontext_mock.cli clock show (this tree)":
                ([PYTHON, "-m", "kontext_mock.cli", *clock], env_for(after_root)),
            f"python -m kontext_mock.cli clock show ({opts.before})":
                ([PYTHON, "-m", "kontext_mock.cli", *clock], env_for(before_root)),
        }
        for cmd, env in commands.values():  # warm-up: bytecode written, caches filled
            timed(cmd, env)
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(opts.runs):
            order = list(commands)
            random.shuffle(order)
            for name in order:
                runs[name].append(timed(*commands[name]))
    finally:
        mock.stop()

    trees = {"serve (this tree)": after_root, f"serve ({opts.before})": before_root}
    for root in trees.values():  # warm-up
        serve_once(root, "warm-up")
    served: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for _ in range(opts.runs):
        order = list(trees)
        random.shuffle(order)
        for name in order:
            served[name].append(serve_once(trees[name], "after" if "this" in name else "before"))

    floor_wall, _ = median(runs[next(iter(commands))])
    print(f"{opts.runs} interleaved runs each, medians; load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| command | wall | CPU | wall / floor |")
    print("|---|---:|---:|---:|")
    for name, times in runs.items():
        wall, cpu = median(times)
        print(f"| `{name}` | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms | {wall / floor_wall:.2f}x |")
    print("\n| serve, to the first 200 | wall | CPU |")
    print("|---|---:|---:|")
    for name, times in served.items():
        wall, cpu = median(times)
        print(f"| {name} | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
