"""Where ``serve``'s start goes, stage by stage (a benchmark to run by hand, not a test).

    .venv/bin/python bench/startup_stages.py [--before REV] [--runs 5]

Runs what ``kontext-mock serve`` does up to its first answer in a fresh interpreter,
stopping after each stage (the interpreter; the command line's import; the serving
modules' imports; the seeded mock; its app and specs; the server in a thread and one
GET, the client's import included), and prints what each stage adds. Counted in
instructions under valgrind's callgrind when it is installed: a count hardly moves with
the machine's load, which times do (``bench/run.py`` and ``bench/cli_startup.py`` time
the whole start). Without valgrind: CPU time, the median of ``--runs``. With
``--before``, the same for another revision, side by side. Each tree is imported as
``bench/cli_startup.py`` lays it out (as installed), with its bytecode written first.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cli_startup import PYTHON, WORK, env_for, package_root, timed, unpack  # noqa: E402

STAGES = ("interpreter", "import kontext_mock.cli", "import the serving modules",
          "KontextMock(config)", "mock.app (specs, routes)", "serve + first GET")

SCRIPT = '''
import sys
stage = int(sys.argv[1])
if stage >= 1:
    from kontext_mock.cli import build_parser, config_from_args
if stage >= 2:
    from kontext_mock.http.serve import start
    from kontext_mock.mock import KontextMock
if stage >= 3:
    mock = KontextMock(config_from_args(build_parser("serve").parse_args(["serve"])))
if stage >= 4:
    app = mock.app
if stage >= 5:
    import http.client
    running = start(app)
    c = mock.config
    conn = http.client.HTTPConnection("127.0.0.1", running.port)
    conn.request("GET", f"/api/v1/applications/{c.dev_application_id}/sessions/{c.dev_session_id}",
                 headers={"Authorization": f"Bearer {c.dev_token}"})
    assert conn.getresponse().status == 200
    running.stop()
'''


def instructions(script: Path, stage: int, env: dict[str, str]) -> float:
    """Millions of instructions of one run up to ``stage`` (callgrind's Ir)."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         PYTHON, str(script), str(stage)],
        env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1)) / 1e6


def cpu_ms(script: Path, stage: int, env: dict[str, str], runs: int) -> float:
    """Median CPU milliseconds of ``runs`` runs up to ``stage``."""
    return statistics.median(timed([PYTHON, str(script), str(stage)], env)[1]
                             for _ in range(runs)) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", metavar="REV", help="a revision to compare with")
    parser.add_argument("--runs", type=int, default=5, help="runs per stage without valgrind")
    opts = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    script = WORK / "startup_stage.py"
    script.write_text(SCRIPT)
    trees = {"this tree": env_for(package_root(HERE.parent, "after"))}
    if opts.before:
        trees[opts.before] = env_for(package_root(unpack(opts.before), "before"))
    counted = shutil.which("valgrind") is not None
    unit = "M instructions" if counted else "ms CPU"
    for env in trees.values():  # bytecode written, as an installed package has it
        subprocess.run([PYTHON, str(script), str(len(STAGES) - 1)], env=env, check=True)
    totals: dict[str, list[float]] = {}
    for name, env in trees.items():
        totals[name] = [instructions(script, n, env) if counted else cpu_ms(script, n, env, opts.runs)
                        for n in range(len(STAGES))]
    header = " | ".join(f"{name}: {unit} (added)" for name in trees)
    lines = [f"| stage | {header} |", "|---|" + "---:|" * len(trees)]
    for n, stage in enumerate(STAGES):
        cells = []
        for values in totals.values():
            added = values[n] - (values[n - 1] if n else 0.0)
            cells.append(f"{values[n]:,.0f} ({added:+,.0f})")
        lines.append(f"| {stage} | {' | '.join(cells)} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
