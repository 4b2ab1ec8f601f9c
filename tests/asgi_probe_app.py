"""The peer the server probes run against (``tests/test_server_probes.py``): an ASGI app
for uvicorn that reads the request's body and answers 200 JSON on any path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

Message = dict[str, Any]


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Message]],
              send: Callable[[Message], Awaitable[None]]) -> None:
    """200 ``{"path", "bytes"}`` once the whole body is read."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    data = orjson.dumps({"path": scope["path"], "bytes": size})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
