"""The README's curl tour, run as written against a live mock."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from .conftest import LiveMock

README = Path(__file__).resolve().parent.parent / "README.md"


def tour_script() -> str:
    text = README.read_text()
    section = text[text.index("## A tour with curl"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_tour_works_as_written(live: LiveMock) -> None:
    script = tour_script()
    assert "BASE=http://localhost:8080" in script
    script = script.replace("BASE=http://localhost:8080", f"BASE={live.url}")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count('{"items":') == 3
    assert '{"session":{"id":"44444444-4444-4444-8444-444444444444"' in out
    revoked = json.loads(re.search(r'\{"success":true,"disconnectedCount":\d+\}', out).group(0))
    assert revoked["disconnectedCount"] > 0
    assert '{"items":[]}' in out  # nothing connected after revoke


def test_the_readme_control_plane_lines_work(live: LiveMock) -> None:
    text = README.read_text()
    section = text[text.index("## The control plane"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    host = live.url.removeprefix("http://")
    # the event stream never ends by itself; every other line runs as written
    lines = [line for line in block.splitlines() if line.strip() and "_mock/events" not in line]
    assert len(lines) == 2
    live.mock.freeze()
    before = live.mock.now()
    script = "\n".join(lines).replace("localhost:8080", host)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (live.mock.now() - before).total_seconds() == 600
    assert '{"items":[' in proc.stdout
