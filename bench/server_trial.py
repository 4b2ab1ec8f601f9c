"""The server trial behind the choice of WSGI server: waitress against granian.

    .venv/bin/pip install granian && .venv/bin/python bench/server_trial.py

Serves the bare Flask ceiling and the mock on waitress (threads, as ``kontext-mock
serve``) and on granian (one worker process, 1 or 8 Python threads) and measures
get-session with wrk: median req/s and p99 of three runs each. Prints a Markdown table.
The mock keeps its state in one process; granian's single worker satisfies that too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import load  # noqa: E402
import targets  # noqa: E402
from load import Req  # noqa: E402

APPS = '''
import base64, json, os, sys
sys.path.insert(0, {bench!r})
from ceiling import create_app
from mock_server import KontextMock
bodies = {{k: base64.b64decode(v) for k, v in json.loads(open({bodies!r}).read()).items()}}
bare = create_app(bodies)
mock = KontextMock(seed=1, sessions=150).app
'''


def main(argv: list[str] | None = None) -> int:
    """Run the trial; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args(argv)
    bodies = targets.WORK / "bodies.json"
    if not bodies.exists():
        print("run bench/run.py once first (it captures the canned bodies)", file=sys.stderr)
        return 2
    module = targets.WORK / "trial_apps.py"
    module.write_text(APPS.format(bench=str(HERE), bodies=str(bodies)))
    reqs = [Req("GET", targets.PROBE)]
    rows = []
    for app in ("bare", "mock"):
        configs = {
            "waitress, 8 threads": ["waitress"],
            "granian, 1 worker, 1 thread": ["granian", "1"],
            "granian, 1 worker, 8 threads": ["granian", "8"],
        }
        for label, how in configs.items():
            port = targets.free_port()
            if how[0] == "waitress":
                cmd = [targets.PYTHON, "-c",
                       f"import sys; sys.path.insert(0, {str(targets.WORK)!r}); import trial_apps;"
                       " from mock_server.serve import serve_forever;"
                       f" serve_forever(trial_apps.{app}, '127.0.0.1', {port}, threads=8)"]
            else:
                cmd = [str(Path(targets.PYTHON).parent / "granian"), "--interface", "wsgi",
                       "--workers", "1", "--blocking-threads", how[1], "--port", str(port),
                       "--working-dir", str(targets.WORK), f"trial_apps:{app}"]
            running = targets.spawn(f"{app} {label}", cmd, port,
                                    log=targets.WORK / "trial.log", poll=0.05)
            try:
                load.run(running.url, reqs, seconds=2)
                runs = [load.run(running.url, reqs, seconds=args.seconds) for _ in range(args.runs)]
            finally:
                running.stop()
            rps = statistics.median(f.rps for f in runs)
            p99 = statistics.median(f.p99_ms for f in runs)
            rows.append((app, label, rps, p99))
            print(f"  {app:5s} {label:30s} {rps:8.0f} req/s  p99 {p99:6.1f} ms", flush=True)
    print("\n| app | server | req/s | p99 ms |\n|---|---|---:|---:|")
    for app, label, rps, p99 in rows:
        print(f"| {app} | {label} | {rps:,.0f} | {p99:.1f} |")
    (targets.WORK / "server_trial.json").write_text(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
