"""``kontext-mock``: serve the mock, or drive a running one through its control plane.

A thin layer: it parses options and calls the library (:class:`KontextMock` to serve,
:class:`~kontext_mock.clients.control.ControlClient` for the control commands,
:func:`~kontext_mock.recording.record` to record a real account into a scenario).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from kontext_mock.clients.control import DEFAULT_URL, ControlClient, ControlError
from kontext_mock.config import ConfigError, MockConfig, read_duration, read_fields
from kontext_mock.core.durations import DurationError, format_instant, parse_duration
from kontext_mock.core.errors import ApiError
from kontext_mock.core.fields import RecordError, parse_time
from kontext_mock.core.scenarios import ScenarioError
from kontext_mock.http import admin
from kontext_mock.http.serve import is_loopback, serve_forever
from kontext_mock.http.ui import PATH as DASHBOARD_PATH
from kontext_mock.mock import KontextMock
from kontext_mock.statefile import FLUSH_INTERVAL, StateFileError, open_state_file

__all__ = ["main"]


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"KONTEXT_MOCK_{name}", default)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``kontext-mock``."""
    parser = argparse.ArgumentParser(
        prog="kontext-mock",
        description="A stateful mock of the Kontext sessions API.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="run the mock server",
        epilog="Every MockConfig field can also be set by an environment variable "
               "KONTEXT_MOCK_<FIELD> (e.g. KONTEXT_MOCK_IDLE_AFTER=2m); an option wins over it.")
    serve.add_argument("--host", default=_env("HOST", "127.0.0.1"),
                       help="address to bind (default 127.0.0.1; env KONTEXT_MOCK_HOST)")
    # A text default goes through `type` too: a bad KONTEXT_MOCK_PORT is a usage error.
    serve.add_argument("--port", type=int, default=_env("PORT", "8080"),
                       help="port (default 8080; 0 picks a free one; env KONTEXT_MOCK_PORT)")
    serve.add_argument("--seed", default=None, help="seed of the fake data (default 1)")
    serve.add_argument("--now", default=None, metavar="INSTANT",
                       help="start a virtual clock at this ISO 8601 instant (default: system time)")
    serve.add_argument("--frozen", action="store_true", default=None,
                       help="the clock moves only when told to (control plane or Python)")
    serve.add_argument("--idle-after", default=None, metavar="DURATION",
                       help="no activity for this long makes a session idle (default 5m)")
    serve.add_argument("--token-ttl", default=None, metavar="DURATION",
                       help="lifetime of /oauth2/token tokens (default 1h)")
    serve.add_argument("--organizations", default=None, metavar="N",
                       help="seeded organizations besides the dev one (default 1)")
    serve.add_argument("--applications", default=None, metavar="N",
                       help="applications per seeded organization (default 2)")
    serve.add_argument("--sessions", default=None, metavar="N",
                       help="sessions per application (default 20)")
    serve.add_argument("--dev-token", default=None, help="the static dev bearer token")
    serve.add_argument("--dev-client-id", default=None, help="the dev OAuth client id")
    serve.add_argument("--dev-client-secret", default=None, help="the dev OAuth client secret")
    serve.add_argument("--strict", action="store_true", default=None,
                       help="validate every response against openapi.yaml (500 on a mismatch)")
    serve.add_argument("--threads", type=int, default=8, help="server threads (default 8)")
    serve.add_argument("--cors-origin", action="append", default=None, metavar="ORIGIN",
                       dest="cors_origins",
                       help="allow browser requests from this exact origin (repeatable, e.g."
                            " http://localhost:3000); CORS is off without it")
    serve.add_argument("--state-file", default=_env("STATE_FILE"), metavar="PATH",
                       help="keep the state (and clock) in this file: loaded at start; every write"
                            " is on disk before it is answered (env KONTEXT_MOCK_STATE_FILE)")
    serve.add_argument("--state-interval", default=f"{FLUSH_INTERVAL:g}s", metavar="DURATION",
                       help="how often changes made without a request (a running clock playing"
                            f" lifecycles) are written (default {FLUSH_INTERVAL:g}s)")
    serve.add_argument("--allow-host", action="append", default=None, metavar="NAME",
                       dest="allowed_hosts",
                       help="also answer requests that name the mock NAME in their Host header"
                            " (repeatable); on loopback only loopback names are answered without it")
    serve.add_argument("--scenario", default=_env("SCENARIO"), metavar="NAME|PATH",
                       help="start from a scenario of fixtures/scenarios (mixed, two-orgs, large"
                            " ...) or a .yaml file (env KONTEXT_MOCK_SCENARIO)")
    serve.add_argument("--admin-token", default=_env("ADMIN_TOKEN"), metavar="TOKEN",
                       help="the control plane's bearer token; generated and printed when the"
                            " mock is bound off loopback without one (env KONTEXT_MOCK_ADMIN_TOKEN)")
    _control_commands(sub)
    _record_command(sub)
    return parser


def _record_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    env = os.environ.get
    rec = sub.add_parser(
        "record", help="record what a credential can read into a scenario file (read-only)",
        description="Read every application a credential can see (or the ones named) and "
                    "their sessions, from any implementation of the sessions API, into a "
                    "scenario file that serve --scenario and the pytest marker load. "
                    "Anonymized unless --no-anonymize; no token or secret is written.")
    rec.add_argument("--base-url", default=env("KONTEXT_BASE_URL"), metavar="URL",
                     help="the origin (a trailing /api/v1 is dropped: the paths carry it; "
                          "env KONTEXT_BASE_URL)")
    rec.add_argument("--token", default=env("KONTEXT_TOKEN"), help="a bearer token (env KONTEXT_TOKEN)")
    rec.add_argument("--client-id", default=env("KONTEXT_CLIENT_ID"),
                     help="OAuth client id, with --client-secret (env KONTEXT_CLIENT_ID)")
    rec.add_argument("--client-secret", default=env("KONTEXT_CLIENT_SECRET"),
                     help="OAuth client secret (env KONTEXT_CLIENT_SECRET)")
    rec.add_argument("--application-id", action="append", default=[], metavar="UUID",
                     help="record this application (repeatable; default: every one listed)")
    rec.add_argument("--out", required=True, metavar="FILE.yaml", help="the scenario file to write")
    rec.add_argument("--no-anonymize", dest="anonymize", action="store_false",
                     help="keep hostnames, user agents, session names and ids as they are")
    rec.add_argument("--rate-limit", default=None, metavar="N/min",
                     help="send at most N requests a minute (Retry-After is always honoured)")


def _control_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The commands that talk to a running mock's control plane."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=_env("URL", DEFAULT_URL),
                        help=f"the running mock (default {DEFAULT_URL}; env KONTEXT_MOCK_URL)")
    common.add_argument("--admin-token", default=_env("ADMIN_TOKEN"), metavar="TOKEN",
                        help="the mock's admin token, if it has one (env KONTEXT_MOCK_ADMIN_TOKEN)")
    clock = sub.add_parser("clock", parents=[common], help="show or move the running mock's clock")
    clock.add_argument("action", nargs="?", default="show",
                       choices=["show", "advance", "set", "freeze", "unfreeze"])
    clock.add_argument("value", nargs="?", help="a duration (advance: PT10M, 90, 1h30m) or an"
                                                " instant (set: ISO 8601, now, or +1h30m)")
    reset = sub.add_parser(
        "reset", parents=[common],
        help="reseed the running mock's data (its current seed and counts); the clock stays",
        description="Replace the running mock's data with freshly seeded data: the seed and counts"
                    " it was last seeded with (--seed changes the seed), placed relative to the"
                    " clock's now. The clock is not moved; faults, the rate limit, lifecycles,"
                    " the journal and the event history are cleared.")
    reset.add_argument("--empty", action="store_true", help="keep only the dev records")
    reset.add_argument("--seed", default=None, metavar="N", help="seed with this seed from now on")
    seed = sub.add_parser("seed", parents=[common],
                          help="reseed the running mock with counts and a status mix")
    seed.add_argument("--seed", default=None, metavar="N")
    seed.add_argument("--organizations", default=None, metavar="N")
    seed.add_argument("--applications", default=None, metavar="N")
    seed.add_argument("--sessions", default=None, metavar="N", help="sessions per application")
    seed.add_argument("--mix", default=None, metavar="STATE=WEIGHT,...", dest="status_mix",
                      help="e.g. active=0.5,idle=0.2,expired=0.1,disconnected=0.2")
    revoke = sub.add_parser("revoke", parents=[common],
                            help="revoke all sessions of an application")
    revoke.add_argument("application_id")
    events = sub.add_parser("events", parents=[common], help="tail the lifecycle event stream")
    events.add_argument("--types", default=None, help="comma-separated, e.g. session.disconnected")
    events.add_argument("--since", type=int, default=None, help="replay events after this id")
    events.add_argument("--count", type=int, default=None, help="stop after this many events")
    events.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    scenario = sub.add_parser("scenario", parents=[common], help="list or load scenarios")
    scenario.add_argument("action", choices=["list", "load"])
    scenario.add_argument("name", nargs="?", metavar="NAME|FILE.yaml",
                          help="a scenario the mock knows by name, or a .yaml file here (sent as text)")


def _options(args: argparse.Namespace, options: Mapping[str, str]) -> dict[str, Any]:
    """The configuration fields given as options (field -> option), read by the
    configuration's own rules; :class:`ConfigError` names the option."""
    given = {field: getattr(args, field) for field in options}
    return read_fields({k: v for k, v in given.items() if v is not None}, sources=options)


def _clock_value(action: str, value: str) -> str:
    """``value`` if the mock could read it (a duration to advance by, an instant to set)."""
    try:
        if action == "advance":
            read_duration(value)
        else:  # the mock's range is checked against its own clock, this only reads the text
            parse_time(value, datetime.now(UTC))
    except (ValueError, RecordError) as exc:
        raise ValueError(f"clock {action} {value}: {exc}") from None
    return value


def _plural(count: object, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _clock_line(state: dict[str, object]) -> str:
    return f"{state['now']} ({'frozen' if state['frozen'] else 'running'})"


def _load_scenario(client: ControlClient, name: str) -> dict[str, Any]:
    """Load a scenario by name, or a file's text: the control plane never reads paths."""
    if not (name.endswith((".yaml", ".yml")) or os.sep in name or "/" in name):
        return client.load_scenario(name)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ControlError(f"cannot read the scenario file {name}: {reason}") from None
    return client.load_scenario_text(text)


def run_control(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run one control command against the mock at ``args.url``; 1 when the mock refuses."""
    client = ControlClient(args.url, args.admin_token)
    try:
        if args.command == "clock":
            if args.action in ("advance", "set"):
                if not args.value:
                    parser.error(f"clock {args.action} needs a value")
                _clock_value(args.action, args.value)
            state = {
                "show": lambda: client.clock(),
                "advance": lambda: client.advance(args.value),
                "set": lambda: client.set_time(args.value),
                "freeze": client.freeze,
                "unfreeze": client.unfreeze,
            }[args.action]()
            print(_clock_line(state))
        elif args.command in ("reset", "seed"):
            if args.command == "reset":
                fields = _options(args, {"seed": "--seed"})
                fields["empty"] = args.empty or None
            else:
                fields = _options(args, _SEED_OPTIONS)
                fields["statusMix"] = fields.pop("status_mix", None)
            summary = client.reset(**fields)
            print(f"{_plural(summary['organizations'], 'organization')},"
                  f" {_plural(summary['applications'], 'application')},"
                  f" {_plural(summary['sessions'], 'session')};"
                  f" clock {_clock_line(summary['clock'])}")
        elif args.command == "revoke":
            print(f"disconnected {_plural(client.revoke(args.application_id), 'session')}")
        elif args.command == "events":
            types = args.types.split(",") if args.types else None
            for event in client.events(types, args.since, args.count, args.timeout):
                if args.json:
                    print(orjson.dumps(event).decode(), flush=True)
                else:
                    data = event["data"]
                    reason = f" ({data['reason']})" if data.get("reason") else ""
                    print(f"{event['time']}  {event['type']:<21} {data['sessionId']}{reason}",
                          flush=True)
        elif args.action == "list":
            for item in client.scenarios():
                print(f"{item['name']:<20} {item['description']}")
        else:
            if not args.name:
                parser.error("scenario load needs a name, or a .yaml file")
            summary = _load_scenario(client, args.name)
            print(f"loaded {args.name}: {_plural(summary['sessions'], 'session')},"
                  f" clock {_clock_line(summary['clock'])}")
    except ValueError as exc:  # ConfigError among them: an option the mock could not use
        parser.error(str(exc))
    except ControlError as exc:
        print(f"kontext-mock: {exc}", file=sys.stderr)
        return 1 if exc.status is not None else 2
    except KeyboardInterrupt:
        return 0
    return 0


def run_record(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Record a real account into a scenario file; 2 when it cannot be read."""
    from kontext_mock.recording import RecordingError, record

    if not args.base_url:
        parser.error("record needs --base-url (or KONTEXT_BASE_URL)")
    if not args.out.endswith((".yaml", ".yml")):
        parser.error(f"--out must be a .yaml file, not {args.out!r}")
    try:
        recording = record(
            args.base_url, token=args.token, client_id=args.client_id,
            client_secret=args.client_secret, application_ids=args.application_id,
            anonymize=args.anonymize, rate_limit=args.rate_limit,
            progress=lambda line: print(f"kontext-mock: {line}", file=sys.stderr, flush=True),
        )
        path = recording.write(args.out)
    except RecordingError as exc:
        print(f"kontext-mock: cannot record: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a bad --rate-limit
        parser.error(str(exc))
    except OSError as exc:
        print(f"kontext-mock: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"recorded {len(recording.applications)} application(s), {recording.sessions} "
          f"session(s) into {path}{' (anonymized)' if recording.anonymized else ''}")
    if recording.ignored:
        print("fields the scenario does not keep: " + ", ".join(
            f"{k} ({n} sessions)" for k, n in sorted(recording.ignored.items())))
    for note in recording.notes:
        print(f"note: {note}")
    return 0


#: the ``serve`` options that set a MockConfig field (field -> option)
_SERVE_OPTIONS = {
    "seed": "--seed", "now": "--now", "frozen": "--frozen", "idle_after": "--idle-after",
    "token_ttl": "--token-ttl", "organizations": "--organizations",
    "applications": "--applications", "sessions": "--sessions", "dev_token": "--dev-token",
    "dev_client_id": "--dev-client-id", "dev_client_secret": "--dev-client-secret",
    "strict": "--strict", "host": "--host", "admin_token": "--admin-token",
    "cors_origins": "--cors-origin", "allowed_hosts": "--allow-host",
}
#: the ``seed`` command's options, read by the same rules
_SEED_OPTIONS = {
    "seed": "--seed", "organizations": "--organizations", "applications": "--applications",
    "sessions": "--sessions", "status_mix": "--mix",
}


def config_from_args(args: argparse.Namespace) -> MockConfig:
    """The mock's configuration: defaults, then environment, then options; every value
    read by the configuration's rules (:class:`ConfigError` names the option or variable)."""
    return MockConfig.from_env(**_options(args, _SERVE_OPTIONS))


#: how many applications the banner lists (each with a curl); the rest are counted
BANNER_APPLICATIONS = 8


def banner(mock: KontextMock, host: str, port: int, admin_token: str | None = None) -> str:
    """What ``serve`` prints on start: where it is, each organization with a credential
    that reads it and its applications, a ready curl per application; a generated
    ``admin_token`` comes second, where it is not missed. An organization no credential
    reaches gets a curl that makes one (a client with a static token) first."""
    c = mock.config
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1") else host
    base = f"http://{shown}:{port}"
    clock = f"{format_instant(mock.now())} ({'frozen' if mock.clock.frozen else 'running'})"
    admin = (
        f"  admin token:   {admin_token}\n"
        f"                 generated for this run: the control plane (/_mock) and the dashboard\n"
        f"                 need it, as Authorization: Bearer {admin_token}\n"
    ) if admin_token else ""
    control_auth = c.admin_token or admin_token
    orgs_text: list[str] = []
    curls: list[str] = []
    left = 0
    for org in mock.accounts.reach():
        apps = org.applications
        room = max(0, BANNER_APPLICATIONS - len(curls))
        if not apps or not room:
            left += len(apps)
            continue
        dev = " (dev)" if org.id == c.dev_organization_id else ""
        lines = [f"  organization:  {org.name}{dev}  {org.id}"]
        token = org.tokens[0] if org.tokens else None
        if token is None:
            token = f"token-{org.id[:8]}"
            body = orjson.dumps({
                "clientId": f"client-{org.id[:8]}", "clientSecret": f"secret-{org.id[:8]}",
                "organizationId": org.id, "token": token}).decode()
            auth = f' -H "Authorization: Bearer {control_auth}"' if control_auth else ""
            curls.append(
                f"    curl -s -X POST{auth} -H 'Content-Type: application/json' \\\n"
                f"      -d '{body}' {base}/_mock/clients\n")
            lines.append(f"    no credential yet: the curl below that POSTs /_mock/clients makes"
                         f" one, token {token}")
        else:
            lines.append(f"    token:       {token}")
        lines.extend(f"    client:      {client_id} / {secret}"
                     for client_id, secret in org.clients[:1])
        for app_id, name in apps[:room]:
            mark = " (dev)" if app_id == c.dev_application_id else ""
            lines.append(f"    application: {app_id}  {name}{mark}")
            curls.append(
                f'    curl -s -H "Authorization: Bearer {token}" \\\n'
                f'      "{base}/api/v1/applications/{app_id}/sessions?limit=5"\n')
        left += len(apps) - min(room, len(apps))
        orgs_text.append("\n".join(lines) + "\n")
    more = (f"  ... and {left} more applications: {base}/_mock/applications\n" if left else "")
    return (
        f"kontext-mock serving on {base}  (bound to {host}:{port})\n"
        f"{admin}"
        f"  clock:         {clock}\n"
        f"  dashboard:     {base}{DASHBOARD_PATH}\n"
        f"  A credential reads only its own organization's applications (others answer 404).\n"
        f"{''.join(orgs_text)}"
        f"{more}"
        f"  try:\n"
        f"{''.join(curls)}"
        f"  Ctrl-C to stop.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kontext-mock``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "record":
        return run_record(args, parser)
    if args.command != "serve":
        return run_control(args, parser)
    if args.admin_token is not None and not args.admin_token.strip():
        parser.error("--admin-token is empty; give a token, or leave the option out")
    generated = None
    if not is_loopback(args.host) and not args.admin_token:
        # Reachable from other machines: the control plane must not be open.
        args.admin_token = generated = admin.generate_token()
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))
    if not is_loopback(args.host):
        print(f"kontext-mock: warning: bound to {args.host}, reachable from other machines",
              file=sys.stderr)
    mock = KontextMock(config)
    if args.scenario:
        try:
            mock.load_scenario(args.scenario)
        except ScenarioError as exc:
            print(f"kontext-mock: bad scenario: {exc}", file=sys.stderr)
            return 2
        except ApiError as exc:
            print(f"kontext-mock: {exc.message}", file=sys.stderr)
            return 2
        if args.idle_after:  # the command line wins over a recorded scenario's threshold
            mock.config = mock.config.with_changes(idle_after=config.idle_after)
    state = None
    if args.state_file:
        try:
            state = open_state_file(
                mock, args.state_file,
                flush_interval=parse_duration(args.state_interval).total_seconds(),
            )
        except DurationError as exc:
            parser.error(str(exc))
        except StateFileError as exc:
            print(f"kontext-mock: {exc}", file=sys.stderr)
            return 2

    def ready(host: str, port: int) -> None:
        if state is not None:
            verb = "loaded from" if state.loaded else "created"
            print(f"kontext-mock: state file {verb} {state.path}", flush=True)
        print(banner(mock, host, port, admin_token=generated), flush=True)

    try:
        serve_forever(mock.app, args.host, args.port, threads=args.threads, on_ready=ready)
    except OSError as exc:
        hint = (f" (another program is using port {args.port}: pick another with --port,"
                " or --port 0 for a free one)" if exc.errno == errno.EADDRINUSE else "")
        print(f"kontext-mock: cannot serve on {args.host}:{args.port}: {exc}{hint}",
              file=sys.stderr)
        return 2
    finally:
        if state is not None:
            state.close()  # the last save: SIGTERM and Ctrl-C lose nothing
    print("kontext-mock: stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
