"""The table of ``docs/mcp.md``: every probe of ``tests/test_mcp_probes.py`` against the
mock's gateway and the official MCP Python SDK's Streamable HTTP server, with what the
specification asks and why the mock answers otherwise where it does.

    .venv/bin/python bench/mcp_probes.py > /tmp/mcp-probes.md
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_mcp_probes import PROBES, running_mock, running_peer, worse


def main() -> None:
    """Print the table (markdown)."""
    print("| probe | the specification (or HTTP) asks | the mock | the SDK's server | why they differ |")
    print("| --- | --- | --- | --- | --- |")
    with running_mock() as mock_target, running_peer() as peer_target:
        for probe in PROBES:
            mock, peer = probe.run(mock_target), probe.run(peer_target)
            problem = worse(probe, mock, peer)
            mark = f" (worse: {problem})" if problem else ""
            same = (mock.status, mock.shape, mock.code) == (peer.status, peer.shape, peer.code)
            print(f"| {probe.name} | {probe.spec} | {mock}{mark} | {peer} | "
                  f"{'' if same else probe.differs} |")


if __name__ == "__main__":
    main()
