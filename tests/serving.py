"""Run ``kontext-mock serve`` as a real process on a free port, for tests that need one."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serve_process(
    *args: str, until: str = "Ctrl-C", stop: signal.Signals = signal.SIGTERM
) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """Start ``kontext-mock serve --port 0 ARGS``; yield its loopback URL, the lines it
    printed up to one containing ``until``, and the process. Stops it with ``stop``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kontext_mock.cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if until in line:
                break
        head = "".join(lines)
        match = re.search(r"bound to (\S+):(\d+)", head)
        assert match, head + (proc.stdout.read() if proc.poll() is not None else "")
        yield f"http://127.0.0.1:{match.group(2)}", head, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
