"""Negative-mode fuzzing of the public and control-plane specs with schemathesis: every invalid request is
refused with a documented 4xx and a JSON body; no request, valid or not, gets a 5xx.

Besides schemathesis' own checks (all of them), a recorder in front of the app sees
every answer the server sent and judges it independently. The number of cases per
operation is ``KONTEXT_SCHEMATHESIS_EXAMPLES`` (default 40; the long run uses 1000).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from kontext_mock import KontextMock
from kontext_mock.http.serve import RunningServer, start
from kontext_mock.http.spec import Spec

from .conftest import NOW

pytestmark = pytest.mark.slow  # fuzzing: schemathesis' negative phase over both specs

HERE = Path(__file__).resolve().parent
EXAMPLES = int(os.environ.get("KONTEXT_SCHEMATHESIS_EXAMPLES", "40"))


class Recorder:
    """WSGI middleware that keeps the status and body of every answer."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.answers: list[tuple[str, str, int, str, bytes]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen: dict[str, Any] = {}

        def recording_start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            seen["status"] = int(status.split()[0])
            seen["type"] = next((v for k, v in headers if k.lower() == "content-type"), "")
            return start_response(status, headers, *exc)

        body = b"".join(self.app(environ, recording_start))
        with self.lock:
            self.answers.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                                 seen["status"], seen["type"], body))
        return [body]


@pytest.fixture
def recorded_server() -> Iterator[tuple[RunningServer, Recorder]]:
    # Event streams end quickly, so that a generated request to one does not hang; state
    # imports and scenarios stay small.
    mock = KontextMock(seed=7, now=NOW, frozen=False, max_sessions=3000,
                       event_stream_max=timedelta(milliseconds=50), admin_token=ADMIN)
    recorder = Recorder(mock.app)
    server = start(recorder, "127.0.0.1", 0)
    try:
        yield server, recorder
    finally:
        server.stop()


def run_schemathesis(spec: Path, url: str, workdir: Path, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli",
            "--config-file", str(HERE / "schemathesis-negative.toml"),
            "run", str(spec),
            "--url", url,
            "-H", f"Authorization: Bearer {token}",
            "--mode", "negative",
            "--checks", "all",
            "--max-examples", str(EXAMPLES),
            "--seed", "20261201",
            "--generation-database", "none",
            "--no-color",
        ],
        capture_output=True, text=True, timeout=600, cwd=workdir,
    )


def generated(output: str) -> int:
    match = re.search(r"(\d+) generated", output)
    assert match, output[-3000:]
    return int(match.group(1))


# The control plane runs with an admin token, so that its auth checks have something to
# check (open on loopback, it would accept requests without one, as documented).
ADMIN = "reliability-admin-token"
SPECS = {"openapi.yaml": (HERE.parent / "openapi.yaml", "dev-token"),
         "control.yaml": (HERE.parent / "mock_server" / "control.yaml", ADMIN)}


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_negative_fuzzing_finds_no_server_error(
    recorded_server: tuple[RunningServer, Recorder], tmp_path: Path, spec: str
) -> None:
    server, recorder = recorded_server
    proc = run_schemathesis(*SPECS[spec][:1], server.url, tmp_path, SPECS[spec][1])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    cases = generated(proc.stdout)
    assert cases >= 7 * EXAMPLES // 4, proc.stdout[-3000:]

    statuses = Counter(status for _, _, status, _, _ in recorder.answers)
    print(f"\nnegative fuzzing of {spec}: {cases} cases, {len(recorder.answers)} requests,"
          f" statuses {dict(sorted(statuses.items()))}")
    assert len(recorder.answers) >= cases
    assert not [a for a in recorder.answers if a[2] >= 500]
    rejections = [a for a in recorder.answers if 400 <= a[2] < 500]
    assert rejections, "negative mode sent nothing the mock refused"
    # (a JSON-RPC endpoint's refusals of what it reads are JSON-RPC errors: x-error-style)
    jsonrpc_paths = Spec.from_file(SPECS[spec][0]).jsonrpc_paths
    for method, path, status, content_type, body in rejections:
        assert content_type.startswith("application/json"), (method, path, status, content_type)
        if path.partition("?")[0] in jsonrpc_paths and body.startswith(b'{"jsonrpc":"2.0"'):
            error = orjson.loads(body)["error"]
            assert isinstance(error["code"], int) and error["message"], (method, path, body)
            continue
        assert body.startswith(b'{"error":'), (method, path, status, body[:200])
