"""The table of ``docs/reliability.md``: every probe of ``tests/test_server_probes.py``
against the mock's server and uvicorn, with what the RFC asks.

    .venv/bin/python bench/server_probes.py > /tmp/probes.md
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_server_probes import (
    PROBES,
    Outcome,
    Probe,
    run_probe,
    running_mock,
    running_uvicorn,
)


def main() -> None:
    """Print the table (markdown)."""
    print("| probe | RFC (or sense) asks | the mock | uvicorn |")
    print("| --- | --- | --- | --- |")
    with running_mock() as mock_port, running_uvicorn() as uvicorn_port:
        for probe in PROBES:
            found: dict[str, Outcome] = {}

            def on_peer(probe: Probe = probe, found: dict[str, Outcome] = found) -> None:
                found["peer"] = run_probe(uvicorn_port, probe)

            peer = threading.Thread(target=on_peer)
            peer.start()
            mock = run_probe(mock_port, probe)
            peer.join()
            mark = "" if probe.ok(mock) else " (worse than the RFC)"
            print(f"| {probe.name} | {probe.rfc} | {mock}{mark} | {found['peer']} |")


if __name__ == "__main__":
    main()
