"""Target (b): the ceiling of our stack, a bare Flask app on the mock's own WSGI server.

It answers the benchmark's requests with canned bodies, captured from the mock by
``run.py`` (same bytes, so the same sizes), with no validation, no state, no hooks: what
Flask plus the server cost on their own. Served by ``kontext_mock.http.serve.serve_forever``
with the mock's thread count, exactly as ``kontext-mock serve`` serves the mock.

    python bench/ceiling.py --port 8090 --bodies bench/.work/bodies.json
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

from flask import Flask, Response, request

from kontext_mock.http.serve import serve_forever


def create_app(bodies: dict[str, bytes]) -> Flask:
    """Routes of the sessions API and the token endpoint, each answering its canned body."""
    app = Flask("ceiling")
    json_type = "application/json"

    @app.get("/api/v1/applications/<application_id>/sessions/<session_id>")
    def get_session(application_id: str, session_id: str) -> Response:
        return Response(bodies["get"], mimetype=json_type)

    @app.get("/api/v1/applications/<application_id>/sessions")
    def list_sessions(application_id: str) -> Response:
        # The one decision the ceiling makes: which of the two canned lists to send.
        key = "list100" if request.args.get("limit") == "100" else "list10"
        return Response(bodies[key], mimetype=json_type)

    @app.delete("/api/v1/applications/<application_id>/sessions")
    def revoke_all(application_id: str) -> Response:
        return Response(bodies["revoke"], mimetype=json_type)

    @app.post("/oauth2/token")
    def issue_token() -> Response:
        return Response(bodies["token"], mimetype=json_type)

    @app.get("/api/v1/applications")
    def list_applications() -> Response:
        return Response(bodies["apps"], mimetype=json_type)

    @app.post("/api/v1/agent-sessions")
    def open_agent_session() -> Response:
        return Response(bodies["agent"], status=201, mimetype=json_type)

    @app.post("/api/v1/agent-sessions/<session_id>/heartbeat")
    def heartbeat(session_id: str) -> Response:
        return Response(bodies["heartbeat"], mimetype=json_type)

    @app.post("/api/v1/agent-sessions/<session_id>/disconnect")
    def disconnect(session_id: str) -> Response:
        return Response(bodies["disconnect"], mimetype=json_type)

    return app


def main(argv: list[str] | None = None) -> int:
    """Serve the ceiling app until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--bodies", type=Path, required=True,
                        help="JSON: {name: base64 body} for get, list10, list100, revoke, token, apps,"
                        " agent, heartbeat, disconnect")
    args = parser.parse_args(argv)
    raw = json.loads(args.bodies.read_text())
    bodies = {name: base64.b64decode(value) for name, value in raw.items()}

    def ready(host: str, port: int) -> None:
        print(f"ceiling serving on http://{host}:{port}", flush=True)

    serve_forever(create_app(bodies), args.host, args.port, threads=args.threads, on_ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
