"""One trivial app per candidate server, for ``bench/server_trial.py``.

    python bench/trial_apps.py SERVER PORT

Every app answers every request with the same 600-byte JSON body and four headers (what
a get-session answer looks like), so the trial measures what the server itself costs.
SERVER is one of: kontext (the mock's own server), uvicorn, granian-asgi, granian-wsgi,
aiohttp, hypercorn, waitress.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BODY = b'{"session":{"x":"' + b"a" * 580 + b'"}}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY))),
           ("x-request-id", "00000000-0000-4000-8000-000000000001"),
           ("Date", "Mon, 30 Nov 2026 12:00:00 GMT")]
RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in HEADERS]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI app (uvicorn, granian, hypercorn)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": RAW_HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The WSGI app (waitress, granian's WSGI mode)."""
    start_response("200 OK", HEADERS)
    return [BODY]


def serve(server: str, port: int) -> None:
    """Run ``server`` with its trivial app on ``port`` until killed."""
    if server == "kontext":
        import socket

        from kontext_mock.http.serving.exchange import Answer, error_answer
        from kontext_mock.http.serving.server import HttpServer, new_event_loop

        class Trivial:
            def start(self, loop: Any, workers: Any) -> None: ...
            def body_limit(self, head: Any) -> int: return 65536
            def refusal(self, status: int, code: str, message: str,
                        headers: Any = None) -> Answer:
                return error_answer(status, code, message, headers)
            def quick(self, exchange: Any) -> Answer: return Answer(200, list(HEADERS), BODY)
            async def respond(self, exchange: Any) -> Answer: return self.quick(exchange)
            def gone(self, exchange: Any) -> None: ...
            def stop(self) -> None: ...

        sock = socket.create_server(("127.0.0.1", port), backlog=1024)
        sock.setblocking(False)
        new_event_loop().run_until_complete(HttpServer(Trivial(), sock).serve())
    elif server == "uvicorn":
        import uvicorn

        uvicorn.run(asgi, port=port, http="httptools", loop="uvloop", log_level="error",
                    access_log=False, lifespan="off")
    elif server in ("granian-asgi", "granian-wsgi"):
        from granian import Granian
        from granian.constants import Interfaces

        interface = Interfaces.ASGI if server == "granian-asgi" else Interfaces.WSGI
        target = "trial_apps:asgi" if server == "granian-asgi" else "trial_apps:wsgi"
        Granian(target, address="127.0.0.1", port=port, interface=interface, workers=1,
                blocking_threads=1, log_enabled=False).serve()
    elif server == "aiohttp":
        from aiohttp import web

        async def handler(request: Any) -> Any:
            return web.Response(body=BODY, headers=dict(HEADERS[2:]), content_type="application/json")

        async def main() -> None:
            runner = web.ServerRunner(web.Server(handler, access_log=None))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            await asyncio.Event().wait()

        import uvloop

        uvloop.run(main())
    elif server == "hypercorn":
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.loglevel = "ERROR"
        import uvloop

        uvloop.run(hypercorn_serve(asgi, config))  # type: ignore[arg-type]
    elif server == "waitress":
        from waitress import serve as waitress_serve

        waitress_serve(wsgi, host="127.0.0.1", port=port, threads=8, _quiet=True)
    else:
        raise SystemExit(f"unknown server {server!r}")


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
