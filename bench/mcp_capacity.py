"""500 MCP clients connected at once, each with its stream open: what they cost the others.

    .venv/bin/python bench/mcp_capacity.py [--clients 500] [--runs 3] [--seconds 3]

Against ``kontext-mock serve`` in its own process. Each client does what an MCP SDK does
on connect: a gateway token (the token exchange of the dev token), ``initialize``,
``notifications/initialized``, then ``GET /mcp``, the session's stream, which it keeps
open. REST reads (get-session, 16 connections, wrk where installed) are measured with no
MCP client, then with all of them connected: req/s and p99 of each, medians of
``--runs`` interleaved runs. Prints Markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import statistics
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import load  # noqa: E402
import targets  # noqa: E402
from load import Figures, Req  # noqa: E402

WORK = targets.WORK
SERVE = ["--seed", "1", "--sessions", "150"]
APP = "550e8400-e29b-41d4-a716-446655440000"


def gateway_token(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = ("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
            "&subject_token=dev-token"
            "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
            f"&client_id=app_{APP}&resource=mcp-gateway&scope=gateway%3Aaccess")
    conn.request("POST", "/oauth2/token", body=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    token = json.loads(conn.getresponse().read())["access_token"]
    conn.close()
    return str(token)


def connect(port: int, token: str, n: int) -> str:
    """One client's handshake; its Mcp-Session-Id."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream", "User-Agent": f"bench-agent/{n}"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "bench-agent", "version": str(n)}}}
    conn.request("POST", "/mcp", body=json.dumps(init), headers=headers)
    answer = conn.getresponse()
    answer.read()
    session = answer.getheader("Mcp-Session-Id")
    assert answer.status == 200 and session, answer.status
    headers.update({"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"})
    conn.request("POST", "/mcp", body='{"jsonrpc":"2.0","method":"notifications/initialized"}',
                 headers=headers)
    conn.getresponse().read()
    conn.close()
    return session


class McpClients:
    """``n`` connected MCP clients, each with its GET stream open (read by one thread)."""

    def __init__(self, port: int, n: int) -> None:
        token = gateway_token(port)
        self.socks = []
        for i in range(n):
            session = connect(port, token, i)
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall((f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                          f"Authorization: Bearer {token}\r\nMcp-Session-Id: {session}\r\n"
                          "MCP-Protocol-Version: 2025-11-25\r\n\r\n").encode())
            head = sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 200"), head[:80]
            sock.setblocking(False)
            self.socks.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.wait(0.5):
            for sock in self.socks:
                with contextlib.suppress(BlockingIOError):
                    while sock.recv(1 << 16):
                        pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    engine = "wrk" if load.wrk_path() else "python"
    port = targets.free_port()
    running = targets.spawn("mcp-capacity", targets.cli_cmd(port, SERVE), port,
                            log=WORK / "mcp-capacity.log", poll=0.05)
    reqs = [Req("GET", targets.PROBE)]
    base = f"http://127.0.0.1:{port}"
    without: list[Figures] = []
    with_clients: list[Figures] = []
    try:
        load.run(base, reqs, seconds=1.0, engine=engine)  # warm-up
        clients = None
        for _ in range(args.runs):
            without.append(load.run(base, reqs, seconds=args.seconds, engine=engine))
            if clients is None:
                clients = McpClients(port, args.clients)
            with_clients.append(load.run(base, reqs, seconds=args.seconds, engine=engine))
            clients.close()
            clients = None
    finally:
        running.stop()

    def med(figures: list[Figures], key: str) -> float:
        return statistics.median(getattr(f, key) for f in figures)

    print(f"MCP clients: {args.clients} connected, each with its GET /mcp stream open; "
          f"get-session at 16 connections ({engine}), medians of {args.runs} runs")
    print()
    print("| | req/s | p99 ms |")
    print("| --- | ---: | ---: |")
    for name, figures in (("no MCP client", without), (f"{args.clients} MCP clients", with_clients)):
        rate = med(figures, "requests") / med(figures, "seconds")
        print(f"| {name} | {rate:,.0f} | {med(figures, 'p99_ms'):.2f} |")


if __name__ == "__main__":
    main()
