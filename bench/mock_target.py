"""Target (a): the mock, served as ``kontext-mock serve`` serves it, plus fresh applications.

Revoke-all only does work on an application that still has connected sessions, so the
revoke workload needs a freshly seeded application per request. This launcher builds the
mock from the CLI's own options (``kontext_mock.cli``), adds ``--fresh-apps`` applications
to the dev organization (each with ``--fresh-sessions`` seeded sessions, the default
status mix), writes their ids to ``--fresh-ids``, and serves with ``serve_forever`` and
the CLI's thread count.

    python bench/mock_target.py --fresh-apps 3000 --fresh-ids ids.txt -- --port 8080 --sessions 150
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import uuid
from pathlib import Path

from kontext_mock.cli import banner, build_parser, config_from_args
from kontext_mock.core.fakedata import SessionFaker
from kontext_mock.core.records import Application
from kontext_mock.http.serve import serve_forever
from kontext_mock.mock import KontextMock


def add_fresh_applications(mock: KontextMock, count: int, sessions: int = 20,
                           seed: int = 11) -> list[str]:
    """Add ``count`` applications to the dev organization, each with ``sessions`` seeded
    sessions (copies of one seeded set, with new ids: Faker per session would take
    minutes), and return their ids."""
    rng = random.Random(seed)
    faker = SessionFaker(seed, mock.config.idle_after)
    model = Application("template", mock.config.dev_organization_id, "template")
    template = faker.sessions(model, sessions, mock.config.status_mix, mock.now())
    ids = []
    for n in range(count):
        app_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        mock.store.add_application(
            Application(app_id, mock.config.dev_organization_id, f"Bench Application {n}")
        )
        sessions = []
        for original in template:
            session = copy.copy(original)
            session.id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            session.application_id = app_id
            session.changed()
            sessions.append(session)
        mock.store.add_sessions(sessions)
        ids.append(app_id)
    return ids


def main(argv: list[str] | None = None) -> int:
    """Build the mock as the CLI does, add fresh applications, serve until SIGTERM."""
    own = argparse.ArgumentParser(description=__doc__)
    own.add_argument("--fresh-apps", type=int, default=0)
    own.add_argument("--fresh-sessions", type=int, default=20)
    own.add_argument("--fresh-ids", type=Path)
    own.add_argument("serve_args", nargs=argparse.REMAINDER)
    args = own.parse_args(argv)
    rest = [a for a in args.serve_args if a != "--"]
    serve_args = build_parser().parse_args(["serve", *rest])
    mock = KontextMock(config_from_args(serve_args))
    if args.fresh_apps:
        ids = add_fresh_applications(mock, args.fresh_apps, args.fresh_sessions)
        if args.fresh_ids:
            args.fresh_ids.write_text("\n".join(ids) + "\n")

    def ready(host: str, port: int) -> None:
        print(banner(mock, host, port), flush=True)

    serve_forever(mock.app, serve_args.host, serve_args.port, threads=serve_args.threads,
                  on_ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
