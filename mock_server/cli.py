"""``kontext-mock``: serve the mock, or drive a running one through its control plane.

A thin layer: it parses options and calls the library (:class:`KontextMock` to serve,
:class:`~kontext_mock.clients.control.ControlClient` for the control commands,
:func:`~kontext_mock.recording.record` to record a real account into a scenario).

A command that talks to a running mock loads only the control client: the mock, Flask,
Faker and the schema validators are imported by ``serve`` (and ``record``) when they run.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from kontext_mock.clients.control import DEFAULT_URL, ControlClient, ControlError
from kontext_mock.config import (
    DEFAULT_STATUS_MIX,
    FLUSH_INTERVAL,
    ConfigError,
    MockConfig,
    read_duration,
    read_fields,
)
from kontext_mock.core.durations import DurationError, format_instant, parse_duration, parse_instant
from kontext_mock.version import VersionAction

if TYPE_CHECKING:
    from collections.abc import Callable

    from kontext_mock.mock import KontextMock

    _Sub = argparse._SubParsersAction[argparse.ArgumentParser]
    _Builder = Callable[[_Sub, str, str, argparse.ArgumentParser], None]

__all__ = ["main"]


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"KONTEXT_MOCK_{name}", default)


SERVE_DESCRIPTION = """\
Serve the mock over HTTP: the sessions API (/api/v1/..., /oauth2/token), its control
plane (/_mock/..., driven by the other kontext-mock commands) and a dashboard
(/_mock/ui/). It starts from seeded fake data, a scenario (--scenario) or a state file
(--state-file), and prints where it listens, a credential for each organization and a
curl to try per application.
"""

SERVE_EPILOG = """\
examples:
  kontext-mock serve                                # seeded data on http://127.0.0.1:8080
  kontext-mock serve --port 0 --frozen --now 2026-01-01T12:00:00Z
  kontext-mock serve --scenario mixed               # a shipped scenario, or ./team.yaml
  kontext-mock serve --state-file mock-state.json   # keep the state across restarts
  kontext-mock serve --host 0.0.0.0 --admin-token "$ADMIN"   # reachable from elsewhere

Every MockConfig field can also be set by an environment variable KONTEXT_MOCK_<FIELD>
(e.g. KONTEXT_MOCK_IDLE_AFTER=2m); an option wins over it.
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line of ``kontext-mock`` (with ``only``, the other commands' options are
    left out: they are not parsed, and building them costs time every command pays)."""
    parser = argparse.ArgumentParser(
        prog="kontext-mock",
        description="A stateful mock of the Kontext sessions API.",
    )
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = _command(
        sub, "serve", help="run the mock server",
        description=SERVE_DESCRIPTION, epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
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
    serve.add_argument("--oauth-dev-user", default=None, metavar="USER",
                       help="the user /oauth2/auth approves at once, with no page to click"
                            " (default dev-user; docs/mcp.md)")
    serve.add_argument("--oauth-redirect-uri", action="append", default=None, metavar="URI",
                       dest="oauth_redirect_uris",
                       help="also trust this redirect URI for every application's public client"
                            " (repeatable); loopback http ones are always trusted")
    serve.add_argument("--mcp-require-client-session-id", action="store_true", default=None,
                       help="refuse an MCP initialize whose clientInfo has no sessionId, as the"
                            " real gateway does (off by default: stock MCP SDK clients send none)")
    _control_commands(sub, only)
    if only in (None, "record"):
        _record_command(sub)
    else:
        sub.add_parser("record", help=RECORD_HELP, add_help=False)
    return parser


RECORD_HELP = "record what a credential can read into a scenario file (read-only)"


def _record_command(sub: _Sub) -> None:
    env = os.environ.get
    rec = _command(
        sub, "record", help=RECORD_HELP,
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


_DEFAULTS = MockConfig()
_MIX = ",".join(f"{state}={weight:g}" for state, weight in DEFAULT_STATUS_MIX.items())

CLOCK_EPILOG = """\
actions:
  show               the mock's now, and whether its clock runs (the default)
  advance DURATION   move it forward by 90 (seconds), PT10M or 1h30m, playing what
                     happens on the way; never backwards (set it back with set -5m)
  set INSTANT        set it to an ISO 8601 instant (2026-01-01T12:00:00Z), to now, or
                     relative to the mock's now: -3m, +1h30m, -PT10M
  freeze             stop it: it moves only when told to
  unfreeze           let it run again

Every action prints the clock after it.

examples:
  kontext-mock clock advance 10m
  kontext-mock clock set -3m
"""

SCENARIO_EPILOG = """\
actions:
  list               the scenarios the running mock knows by name, with their descriptions
  load NAME          load one of them (mixed, two-orgs, large, ...), replacing the mock's
                     data (and its clock, when the scenario sets one)
  load FILE.yaml     load a scenario file of yours: its text is sent, the control plane
                     never reads a path; a bad file is reported with its line and field
"""


def _command(sub: _Sub, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand whose usage errors print its own usage (``args.command_parser``)."""
    command = sub.add_parser(name, **kwargs)
    command.set_defaults(command_parser=command)
    return command


def _control_parents() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The options of every control command: ``--url`` (target), and ``--admin-token``
    with it (common)."""
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument("--url", default=_env("URL", DEFAULT_URL),
                        help=f"the running mock (default {DEFAULT_URL}; env KONTEXT_MOCK_URL)")
    common = argparse.ArgumentParser(add_help=False, parents=[target])
    common.add_argument("--admin-token", default=_env("ADMIN_TOKEN"), metavar="TOKEN",
                        help="the mock's admin token, if it has one (env KONTEXT_MOCK_ADMIN_TOKEN)")
    return target, common


def _control_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                      only: str | None = None) -> None:
    """The commands that talk to a running mock's control plane: each one whole, or only
    its name and help when ``only`` names another (building them all costs more than a
    control command's own work)."""
    for name, (summary, build) in _CONTROL_COMMANDS.items():
        if only is None or only == name:
            target, common = _control_parents()
            build(sub, name, summary, target if name == "token" else common)
        else:
            sub.add_parser(name, help=summary, add_help=False)


def _clock_command(sub: _Sub, name: str, summary: str, common: argparse.ArgumentParser) -> None:
    clock = _command(sub, name, parents=[common], help=summary,
                     description="Show or move the running mock's clock.",
                     epilog=CLOCK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    clock.add_argument("action", nargs="?", default="show",
                       choices=["show", "advance", "set", "freeze", "unfreeze"],
                       help="what to do (default show; see actions below)")
    clock.add_argument("value", nargs="?", help="a duration (advance: PT10M, 90, 1h30m) or an"
                                                " instant (set: ISO 8601, now, -3m or +1h30m)")


def _reset_command(sub: _Sub, name: str, summary: str, common: argparse.ArgumentParser) -> None:
    reset = _command(
        sub, name, parents=[common], help=summary,
        description="Replace the running mock's data with freshly seeded data: the seed and counts"
                    " it was last seeded with (--seed changes the seed), placed relative to the"
                    " clock's now. The clock is not moved; faults, the rate limit, lifecycles,"
                    " the journal and the event history are cleared.")
    reset.add_argument("--empty", action="store_true", help="keep only the dev records")
    reset.add_argument("--seed", default=None, metavar="N", help="seed with this seed from now on")


def _seed_command(sub: _Sub, name: str, summary: str, common: argparse.ArgumentParser) -> None:
    seed = _command(
        sub, name, parents=[common], help=summary,
        description="Replace the running mock's data with data seeded from the options given,"
                    " and the defaults below for those not given (not what an earlier seed or"
                    " serve used: reset keeps those). The data is placed relative to the clock's"
                    " now; the clock is not moved; faults, the rate limit, lifecycles, the"
                    " journal and the event history are cleared.")
    seed.add_argument("--seed", default=None, metavar="N",
                      help=f"seed of the fake data (default {_DEFAULTS.seed})")
    seed.add_argument("--organizations", default=None, metavar="N",
                      help=f"organizations besides the dev one (default {_DEFAULTS.organizations})")
    seed.add_argument("--applications", default=None, metavar="N",
                      help=f"applications per seeded organization (default {_DEFAULTS.applications})")
    seed.add_argument("--sessions", default=None, metavar="N",
                      help=f"sessions per application (default {_DEFAULTS.sessions})")
    seed.add_argument("--mix", default=None, metavar="STATE=WEIGHT,...", dest="status_mix",
                      help="shares of the derived states among the seeded sessions, weights of"
                           f" 0 or more (default {_MIX})")


def _revoke_command(sub: _Sub, name: str, summary: str, common: argparse.ArgumentParser) -> None:
    revoke = _command(
        sub, name, parents=[common], help=summary,
        description="Disconnect every connected session of an application (reason revoked), as"
                    " DELETE /api/v1/applications/{id}/sessions does, in any organization;"
                    " prints how many. A second revoke disconnects 0.")
    revoke.add_argument("application_id", metavar="APPLICATION_ID",
                        help="the application's id (the serve banner lists some)")


def _events_command(sub: _Sub, name: str, summary: str, common: argparse.ArgumentParser) -> None:
    events = _command(sub, name, parents=[common], help=summary,
                      description="Print the mock's lifecycle events as they happen (until"
                                  " Ctrl-C, --count or --timeout).")
    events.add_argument("--types", default=None, help="comma-separated, e.g. session.disconnected")
    events.add_argument("--since", type=int, default=None, help="replay events after this id")
    events.add_argument("--count", type=int, default=None, help="stop after this many events")
    events.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    events.add_argument("--json", action="store_true", help="one JSON object per line")


def _scenario_command(sub: _Sub, name: str, summary: str, common: argparse.ArgumentParser) -> None:
    scenario = _command(sub, name, parents=[common], help=summary,
                        description="List the scenarios the running mock knows, or load one.",
                        epilog=SCENARIO_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    scenario.add_argument("action", choices=["list", "load"], help="see actions below")
    scenario.add_argument("name", nargs="?", metavar="NAME|FILE.yaml",
                          help="a scenario the mock knows by name, or a .yaml file here (sent as text)")


def _token_command(sub: _Sub, name: str, summary: str, target: argparse.ArgumentParser) -> None:
    token = _command(
        sub, name, parents=[target], help=summary,
        description="Ask the mock's public token endpoint (POST /oauth2/token, client"
                    " credentials) for a bearer token and print it, for curl or a client:"
                    ' curl -H "Authorization: Bearer $(kontext-mock token)" ...')
    token.add_argument("--client-id", default=_env("DEV_CLIENT_ID", _DEFAULTS.dev_client_id),
                       help="the OAuth client (default: the dev client,"
                            f" {_DEFAULTS.dev_client_id}; env KONTEXT_MOCK_DEV_CLIENT_ID)")
    token.add_argument("--client-secret",
                       default=_env("DEV_CLIENT_SECRET", _DEFAULTS.dev_client_secret),
                       help=f"its secret (default {_DEFAULTS.dev_client_secret};"
                            " env KONTEXT_MOCK_DEV_CLIENT_SECRET)")


def _actions(command: argparse.ArgumentParser) -> _Sub:
    return command.add_subparsers(dest="action", required=True, metavar="ACTION")


def _fault_commands(sub: _Sub, name: str, summary: str, common: argparse.ArgumentParser) -> None:
    faults = _command(
        sub, name, help=summary,
        description="Fault rules delay, fail or drop public API requests (never the control"
                    " plane's) whose method and path match; the first matching rule applies.")
    actions = _actions(faults)
    _command(actions, "list", parents=[common], help="the rules in force, in matching order")
    add = _command(actions, "add", parents=[common], help="add a rule (one of --status,"
                   " --latency or --drop at least)",
                   description="Add a fault rule: matching requests are delayed by --latency,"
                               " then answered --status with the API's error body for it, or"
                               " their connection is dropped (--drop).")
    add.add_argument("--method", default=None, help="an HTTP method, or * (default *)")
    add.add_argument("--path", default=None, metavar="GLOB",
                     help="paths matching this pattern, * matching any text (default /api/v1/*)")
    add.add_argument("--status", type=int, default=None, metavar="CODE",
                     help="answer with this status (400 to 599), e.g. 503")
    add.add_argument("--latency", default=None, metavar="SECONDS|LOW,HIGH",
                     help="wait this long first (or a time drawn from LOW to HIGH)")
    add.add_argument("--drop", action="store_true", default=None,
                     help="close the connection without an answer")
    add.add_argument("--times", type=int, default=None, metavar="N",
                     help="apply to the next N matching requests only (default: all)")
    add.add_argument("--probability", type=float, default=None, metavar="P",
                     help="apply to this share of matching requests, 0 < P <= 1 (default 1)")
    add.add_argument("--seed", type=int, default=None, metavar="N",
                     help="seed of the rule's draws (default: the mock's seed)")
    clear = _command(actions, "clear", parents=[common], help="remove one rule, or all")
    clear.add_argument("fault_id", nargs="?", metavar="ID", help="the rule (fault-1); default all")


def _journal_commands(sub: _Sub, name: str, summary: str, common: argparse.ArgumentParser) -> None:
    journal = _command(
        sub, name, help=summary,
        description="The journal: the last 10,000 requests to the public API (not the control"
                    " plane), credentials redacted, oldest first.")
    actions = _actions(journal)
    show = _command(actions, "show", parents=[common], help="print the entries, oldest first")
    show.add_argument("--method", default=None, help="only this HTTP method")
    show.add_argument("--path", default=None, metavar="GLOB",
                      help="only paths matching this pattern (* matches any text)")
    show.add_argument("--limit", type=int, default=None, metavar="N",
                      help="only the latest N matching entries")
    show.add_argument("--json", action="store_true", help="one JSON object per line, as stored")
    _command(actions, "clear", parents=[common], help="forget every entry")


def _state_commands(sub: _Sub, name: str, summary: str, common: argparse.ArgumentParser) -> None:
    state = _command(
        sub, name, help=summary,
        description="The whole state (records, clock, settings, faults, the rate limit) as one"
                    " JSON document: export it, and import it into this mock or another.")
    actions = _actions(state)
    export = _command(actions, "export", parents=[common], help="write the state to a file")
    export.add_argument("file", nargs="?", default="-", metavar="FILE",
                        help="where to write it (default -: standard output)")
    load = _command(actions, "import", parents=[common],
                    help="replace the state with an exported one")
    load.add_argument("file", metavar="FILE", help="an exported state (-: standard input)")


def _rate_limit_commands(sub: _Sub, name: str, summary: str,
                         common: argparse.ArgumentParser) -> None:
    limit = _command(
        sub, name, help=summary,
        description="The public API's rate limit: requests a minute per credential, counted"
                    " on the mock's clock; the request over it is answered 429 with"
                    " Retry-After. Off by default; the real API allows 120.")
    actions = _actions(limit)
    _command(actions, "show", parents=[common], help="the limit in force")
    set_ = _command(actions, "set", parents=[common], help="limit to N requests a minute")
    set_.add_argument("per_minute", type=int, metavar="N", help="requests a minute (120: production)")
    _command(actions, "off", parents=[common], help="no limit")


#: the control commands, in the order --help lists them: their help, and what builds them
_CONTROL_COMMANDS: dict[str, tuple[str, _Builder]] = {
    "clock": ("show or move the running mock's clock", _clock_command),
    "reset": ("reseed the running mock's data (its current seed and counts); the clock stays",
              _reset_command),
    "seed": ("reseed the running mock with counts and a status mix (defaults for the rest)",
             _seed_command),
    "revoke": ("revoke all sessions of an application", _revoke_command),
    "events": ("tail the lifecycle event stream", _events_command),
    "scenario": ("list or load scenarios", _scenario_command),
    "faults": ("list, add or clear the running mock's fault rules", _fault_commands),
    "journal": ("show or clear what clients sent to the running mock", _journal_commands),
    "state": ("export the running mock's whole state to a file, or import one", _state_commands),
    "rate-limit": ("show, set or turn off the running mock's rate limit", _rate_limit_commands),
    "token": ("get a bearer token from the mock's /oauth2/token", _token_command),
}


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
        elif value.strip().lower() != "now":
            # the mock's range is checked against its own clock, this only reads the text
            text = value.strip()
            if text[:1] in "+-":
                parse_duration(text, allow_negative=True)
            else:
                parse_instant(text)
    except ValueError as exc:
        hint = (f" (the clock moves only forward: clock set {value} sets it back)"
                if action == "advance" and value.strip().startswith("-") else "")
        raise ValueError(f"clock {action} {value}: {exc}{hint}") from None
    return value


def _plural(count: object, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _clock_line(state: dict[str, object]) -> str:
    return f"{state['now']} ({'frozen' if state['frozen'] else 'running'})"


def _summary_line(summary: dict[str, Any]) -> str:
    return (f"{_plural(summary['organizations'], 'organization')},"
            f" {_plural(summary['applications'], 'application')},"
            f" {_plural(summary['sessions'], 'session')};"
            f" clock {_clock_line(summary['clock'])}")


def _load_scenario(client: ControlClient, name: str) -> dict[str, Any]:
    """Load a scenario by name, or a file's text: the control plane never reads paths, so
    its report of a bad file names it ``<inline>``, which becomes the file's path here."""
    if not (name.endswith((".yaml", ".yml")) or os.sep in name or "/" in name):
        return client.load_scenario(name)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ControlError(f"cannot read the scenario file {name}: {reason}") from None
    try:
        return client.load_scenario_text(text)
    except ControlError as exc:
        body = exc.body or {}
        message = str(exc)
        if body.get("file") == "<inline>" and message.startswith("<inline>"):
            message = name + message.removeprefix("<inline>")
        raise ControlError(message, exc.status, exc.body) from None


def _run_clock(client: ControlClient, args: argparse.Namespace,
               parser: argparse.ArgumentParser) -> None:
    if args.action in ("advance", "set"):
        if not args.value:
            parser.error(f"clock {args.action} needs a value")
        _clock_value(args.action, args.value)
    elif args.value:
        parser.error(f"clock {args.action} takes no value (got {args.value!r})")
    state = {
        "show": lambda: client.clock(),
        "advance": lambda: client.advance(args.value),
        "set": lambda: client.set_time(args.value),
        "freeze": client.freeze,
        "unfreeze": client.unfreeze,
    }[args.action]()
    print(_clock_line(state))


def _run_seeding(client: ControlClient, args: argparse.Namespace,
                 parser: argparse.ArgumentParser) -> None:
    if args.command == "reset":
        fields = _options(args, {"seed": "--seed"})
        fields["empty"] = args.empty or None
    else:  # seed: what is not given is the default, not what an earlier seed left
        fields = {"seed": _DEFAULTS.seed, "organizations": _DEFAULTS.organizations,
                  "applications": _DEFAULTS.applications, "sessions": _DEFAULTS.sessions,
                  "status_mix": dict(DEFAULT_STATUS_MIX)} | _options(args, _SEED_OPTIONS)
        fields["statusMix"] = fields.pop("status_mix")
    print(_summary_line(client.reset(**fields)))


def _run_scenario(client: ControlClient, args: argparse.Namespace,
                  parser: argparse.ArgumentParser) -> None:
    if args.action == "list":
        for item in client.scenarios():
            print(f"{item['name']:<20} {item['description']}")
        return
    if not args.name:
        parser.error("scenario load needs a name, or a .yaml file")
    summary = _load_scenario(client, args.name)
    print(f"loaded {args.name}: {_plural(summary['sessions'], 'session')},"
          f" clock {_clock_line(summary['clock'])}")


def _run_events(client: ControlClient, args: argparse.Namespace,
                parser: argparse.ArgumentParser) -> None:
    types = args.types.split(",") if args.types else None
    for event in client.events(types, args.since, args.count, args.timeout):
        if args.json:
            print(orjson.dumps(event).decode(), flush=True)
        else:
            data = event["data"]
            reason = f" ({data['reason']})" if data.get("reason") else ""
            print(f"{event['time']}  {event['type']:<21} {data['sessionId']}{reason}", flush=True)


def _latency(text: str) -> float | list[float]:
    """``0.2`` or ``0.1,0.3`` (a range) as the control plane takes it."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise ValueError(f"--latency {text}: expected seconds (0.2) or a range (0.1,0.3)")
    return values[0] if len(values) == 1 else values


def _fault_line(fault: dict[str, Any]) -> str:
    latency = fault.get("latency")
    effects = []
    if isinstance(latency, list):
        effects.append(f"latency {latency[0]:g} to {latency[1]:g} s")
    elif latency is not None:
        effects.append(f"latency {latency:g} s")
    if fault.get("status") is not None:
        effects.append(f"status {fault['status']}")
    if fault.get("drop"):
        effects.append("drop")
    if fault.get("remaining") is not None:
        effects.append(f"{fault['remaining']} more")
    if fault.get("probability") is not None:
        effects.append(f"probability {fault['probability']:g}")
    return (f"{fault['id']:<9} {fault['method']} {fault['path']}  {', '.join(effects)}"
            f"  ({_plural(fault['hits'], 'hit')})")


def _run_faults(client: ControlClient, args: argparse.Namespace,
                parser: argparse.ArgumentParser) -> None:
    if args.action == "list":
        faults = client.faults()
        for fault in faults:
            print(_fault_line(fault))
        if not faults:
            print("no fault rules")
    elif args.action == "add":
        if args.status is None and args.latency is None and not args.drop:
            parser.error("give one of --status, --latency or --drop")
        fault = client.add_fault(
            method=args.method, path=args.path, status=args.status, drop=args.drop,
            latency=None if args.latency is None else _latency(args.latency),
            times=args.times, probability=args.probability, seed=args.seed)
        print(_fault_line(fault))
    else:
        print(f"removed {_plural(client.clear_faults(args.fault_id), 'fault rule')}")


def _journal_line(entry: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    query = urlencode(entry.get("query") or {}, doseq=True)
    status = entry["status"] if entry.get("status") is not None else entry.get("outcome")
    fault = f"  {entry['fault']}" if entry.get("fault") else ""
    return (f"{entry['time']}  {entry['method']:<6} {entry['path']}{'?' + query if query else ''}"
            f"  {status}  {entry['durationMs']:.1f} ms  {entry.get('requestId') or '-'}{fault}")


def _run_journal(client: ControlClient, args: argparse.Namespace,
                 parser: argparse.ArgumentParser) -> None:
    if args.action == "clear":
        removed = client.clear_journal()
        print(f"removed {removed} {'entry' if removed == 1 else 'entries'}")
        return
    for entry in client.journal(args.method, args.path, args.limit):
        print(orjson.dumps(entry).decode() if args.json else _journal_line(entry))


def _run_state(client: ControlClient, args: argparse.Namespace,
               parser: argparse.ArgumentParser) -> None:
    if args.action == "export":
        document = client.export_state()
        text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
        if args.file == "-":
            sys.stdout.write(text)
            return
        Path(args.file).write_text(text, encoding="utf-8")
        print(f"wrote {args.file}: {_plural(len(document['organizations']), 'organization')},"
              f" {_plural(len(document['applications']), 'application')},"
              f" {_plural(len(document['sessions']), 'session')};"
              f" clock {_clock_line(document['clock'])}")
        return
    source = "standard input" if args.file == "-" else args.file
    raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_bytes()
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{source} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{source} is not an exported state (a JSON object)")
    print(_summary_line(client.import_state(document)))


def _run_rate_limit(client: ControlClient, args: argparse.Namespace,
                    parser: argparse.ArgumentParser) -> None:
    if args.action == "show":
        limit = client.rate_limit()
    else:
        limit = client.set_rate_limit(args.per_minute if args.action == "set" else None)
    print("off: no rate limit" if limit is None else
          f"{_plural(limit, 'request')} a minute per credential")


def _run_revoke(client: ControlClient, args: argparse.Namespace,
                parser: argparse.ArgumentParser) -> None:
    print(f"disconnected {_plural(client.revoke(args.application_id), 'session')}")


_CONTROL = {
    "clock": _run_clock, "reset": _run_seeding, "seed": _run_seeding, "revoke": _run_revoke,
    "events": _run_events, "scenario": _run_scenario, "faults": _run_faults,
    "journal": _run_journal, "state": _run_state, "rate-limit": _run_rate_limit,
}


def run_control(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run one control command against the mock at ``args.url``; 1 when the mock refuses,
    2 when it cannot be reached (``parser``, the command's own, reports usage errors)."""
    client = ControlClient(args.url, args.admin_token)
    try:
        _CONTROL[args.command](client, args, parser)
    except ValueError as exc:  # ConfigError among them: an option the mock could not use
        parser.error(str(exc))
    except OSError as exc:  # a state file that cannot be read or written
        print(f"kontext-mock: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ControlError as exc:
        kind = "bad scenario: " if (exc.body or {}).get("error") == "invalid_scenario" else ""
        print(f"kontext-mock: {kind}{exc}", file=sys.stderr)
        return 1 if exc.status is not None else 2
    except KeyboardInterrupt:
        return 0
    return 0


def run_token(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Print a bearer token from the mock's ``/oauth2/token``; 1 when it refuses the
    credentials, 2 when it cannot be reached."""
    from kontext_mock.clients.api import ApiClient
    from kontext_mock.clients.errors import ClientError, TargetUnavailableError

    client = ApiClient(args.url, client_id=args.client_id, client_secret=args.client_secret)
    try:
        print(client.fetch_token())
    except TargetUnavailableError as exc:
        print(f"kontext-mock: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"kontext-mock: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
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
    "oauth_dev_user": "--oauth-dev-user", "oauth_redirect_uris": "--oauth-redirect-uri",
    "mcp_require_client_session_id": "--mcp-require-client-session-id",
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
    from kontext_mock.http.ui import PATH as DASHBOARD_PATH

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
    words = sys.argv[1:] if argv is None else list(argv)
    command = next((w for w in words if not w.startswith("-")), None)
    top = build_parser(command if command in (*_CONTROL_COMMANDS, "serve", "record") else None)
    args, extras = top.parse_known_args(words)
    parser: argparse.ArgumentParser = args.command_parser  # its usage errors print its usage
    if extras:
        if (args.command == "clock" and args.action in ("advance", "set") and args.value is None
                and len(extras) == 1 and extras[0][:1] == "-" and extras[0][:2] != "--"):
            # a time relative to the mock's now (-3m), which argparse takes for an option
            args.value = extras[0]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if args.command == "record":
        return run_record(args, parser)
    if args.command == "token":
        return run_token(args, parser)
    if args.command != "serve":
        return run_control(args, parser)
    # What serving needs, loaded only now (the mock, Flask, Faker, the spec's validators)
    from kontext_mock.core.errors import ApiError
    from kontext_mock.core.loopback import is_loopback
    from kontext_mock.http import admin
    from kontext_mock.http.serve import serve_forever
    from kontext_mock.mock import KontextMock

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
        from kontext_mock.core.scenarios import ScenarioError

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
        from kontext_mock.statefile import StateFileError, open_state_file

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
