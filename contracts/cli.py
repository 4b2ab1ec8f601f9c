"""``kontext-contract``: check an implementation of the sessions API against its contract.

A thin layer: it parses options, calls :func:`contracts.run_contract`, prints the
report and writes JUnit and the drift report. Exit 0 when every rule holds, 1 when one
fails (a contradicted assumption fails only when assumptions are enforced), 2 for a
usage or connection error, or a target that answers no route of the API.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
from collections.abc import Sequence
from datetime import timedelta

from kontext_mock.contracts.assumptions import MODES
from kontext_mock.contracts.errors import ContractError
from kontext_mock.contracts.junit import write_junit
from kontext_mock.contracts.options import MODE, Options, Target
from kontext_mock.contracts.pacing import parse_rate
from kontext_mock.contracts.rules import LAYERS, catalog
from kontext_mock.version import VersionAction

__all__ = ["build_parser", "main"]

EPILOG = """\
exit status: 0 every documented rule holds (and, enforced, every assumption), 1 a rule
fails, 2 usage or connection error, or a target that answers no route of the API.
environment: KONTEXT_BASE_URL, KONTEXT_TOKEN, KONTEXT_CLIENT_ID, KONTEXT_CLIENT_SECRET,
KONTEXT_APPLICATION_ID, KONTEXT_MOCK_ADMIN_TOKEN and KONTEXT_MCP_TOKEN stand in for the options of the same
name (keep secrets out of the command line in CI).

examples:
  kontext-contract --base-url http://127.0.0.1:8080 --token dev-token
  kontext-contract --base-url https://api.kontext.security --client-id "$ID" \\
      --client-secret "$SECRET" --application-id "$APP" --rate-limit 120/min \\
      --drift-report drift.json --junit out.xml
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"kontext-contract: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _rate(text: str) -> str:
    try:
        parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _duration(text: str) -> timedelta:
    from kontext_mock.core.durations import DurationError, parse_duration

    try:
        return parse_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``kontext-contract``."""
    env = os.environ.get
    p = _Parser(
        prog="kontext-contract",
        description=textwrap.fill(MODE, 88) + "\n\n" + textwrap.fill(
            "It checks an implementation of the Kontext sessions API against its contract "
            "(openapi.yaml): schema conformance, semantic properties, and in a destructive "
            "run the stateful ones.", 88),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action=VersionAction)
    target = p.add_argument_group("target")
    target.add_argument("--base-url", default=env("KONTEXT_BASE_URL"), metavar="URL",
                        help="the origin, e.g. http://127.0.0.1:8080 (a trailing /api/v1 is "
                        "dropped, with a note: the kit adds it to every path)")
    target.add_argument("--token", default=env("KONTEXT_TOKEN"), help="a bearer token")
    target.add_argument("--client-id", default=env("KONTEXT_CLIENT_ID"),
                        help="OAuth client id (a token is fetched from {base}/oauth2/token "
                             "and fetched again after a 401)")
    target.add_argument("--client-secret", default=env("KONTEXT_CLIENT_SECRET"),
                        help="OAuth client secret")
    target.add_argument("--application-id", default=env("KONTEXT_APPLICATION_ID"),
                        metavar="UUID", help="an application with sessions to read (against "
                        "a mock with a control plane the kit creates its own)")
    target.add_argument("--mock-admin-token", default=env("KONTEXT_MOCK_ADMIN_TOKEN"),
                        metavar="TOKEN", help="the admin token of a mock's control plane, when "
                        "the mock has one (env KONTEXT_MOCK_ADMIN_TOKEN)")
    target.add_argument("--mcp-token", default=env("KONTEXT_MCP_TOKEN"), metavar="TOKEN",
                        help="a gateway token for --mcp (against a mock the kit gets its own "
                             "through the application's OAuth; elsewhere, without one, it "
                             "tries the token exchange)")
    run = p.add_argument_group("run")
    run.add_argument("--spec", default=None, metavar="PATH",
                     help="the contract (default: the packaged openapi.yaml)")
    run.add_argument("--max-examples", type=_positive, default=25, metavar="N",
                     help="examples per property and per operation (default 25)")
    run.add_argument("--seed", type=int, default=None, help="seed of every random choice")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--destructive", action="store_true", default=None,
                      help="may change state: the stateful layer runs (revoke-all, agent "
                           "sessions); the default against a kontext-mock")
    mode.add_argument("--read-only", dest="destructive", action="store_false",
                      help="send nothing that changes state, even to a kontext-mock; the "
                           "default against anything else")
    run.add_argument("--rate-limit", type=_rate, default=None, metavar="N/min",
                     help="send at most N requests a minute (every layer together); "
                          "Retry-After is always honoured")
    run.add_argument("--budget", type=_count, default=None, metavar="N",
                     help="send at most N requests in the whole run, shared among the layers "
                          "by a plan the output shows (default: 240, or two minutes' worth at "
                          "--rate-limit, against anything but a mock and against a "
                          "rate-limited mock; 0: no budget)")
    run.add_argument("--assumptions", choices=MODES, default=None,
                     help="enforce: a contradicted assumption of openapi.yaml fails the run; "
                          "report: it is drift (default: enforce against a kontext-mock, "
                          "report against anything else)")
    run.add_argument("--idle-after", type=_duration, default=None,
                     metavar="DURATION", help="the idle threshold of derivedStatus "
                     "(an assumption; default: a mock's own, else 5m)")
    run.add_argument("--mcp", action="store_true",
                     help="also run the mcp layer: an MCP client (the official MCP Python SDK, "
                          "pip install 'kontext-mock[mcp]') connects to {base}/mcp and the kit "
                          "checks what its session becomes (it opens sessions on the target)")
    run.add_argument("--layer", dest="layers", action="append", choices=LAYERS,
                     help="run only this layer (repeatable; default all)")
    run.add_argument("--skip", action="append", default=[], metavar="RULE",
                     help="do not check this rule (repeatable)")
    run.add_argument("--foreign-session-id", action="append", default=[], metavar="UUID",
                     help="a session of another application, for foreign-session-404")
    run.add_argument("--timeout", type=float, default=15.0, metavar="SECONDS",
                     help="seconds to wait for one answer (default 15)")
    run.add_argument("--no-restore", dest="restore", action="store_false",
                     help="leave a mock's state as the destructive run left it")
    out = p.add_argument_group("output")
    out.add_argument("--junit", default=None, metavar="PATH", help="write a JUnit XML report")
    out.add_argument("--drift-report", default=None, metavar="PATH",
                     help="write the drift report (JSON): each assumption confirmed, "
                          "contradicted or unobserved, with evidence, and what the target sent "
                          "that the spec does not know")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    out.add_argument("--list-rules", action="store_true", help="list the rules and exit")
    out.add_argument("--list-assumptions", action="store_true",
                     help="list the assumptions of the spec (--spec), what checks each, and exit")
    return p


def _quiet_hypothesis_storage() -> None:
    """Keep hypothesis' caches out of the caller's directory (a CI checkout): a user cache
    directory, unless HYPOTHESIS_STORAGE_DIRECTORY says where."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    from hypothesis.configuration import set_hypothesis_home_dir

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    set_hypothesis_home_dir(os.path.join(base, "kontext-contract", "hypothesis"))


def list_rules() -> str:
    """Every rule, by layer."""
    lines = []
    rules = catalog()
    for layer in LAYERS:
        lines.append(f"{layer}:")
        for r in rules.values():
            if r.layer == layer:
                note = f" (assumes {', '.join(r.assumes)})" if r.assumes else ""
                lines.append(f"  {r.name:<36} {r.summary}{note}")
    return "\n".join(lines)


def list_assumptions(spec: str | None) -> str:
    """Every assumption of the spec: its id, what it assumes, and what checks it."""
    from kontext_mock.contracts.assumptions import read_assumptions
    from kontext_mock.contracts.drift import checked_by
    from kontext_mock.contracts.openapi import ApiSpec

    assumptions = read_assumptions(ApiSpec.load(spec).raw)
    checkers = checked_by(assumptions.values(), catalog().values())
    lines = []
    for a in assumptions.values():
        lines.append(a.id)
        lines.append(f"  assumes:    {a.assumes}")
        if a.unobservable:
            lines.append(f"  unobservable: {a.unobservable}")
        for i, name in enumerate(checkers[a.id]):
            lines.append(f"  {'checked by:' if i == 0 else '':<11} {name}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kontext-contract``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_rules:
        print(list_rules())
        return 0
    if args.list_assumptions:
        try:
            print(list_assumptions(args.spec))
        except (ContractError, ValueError) as exc:
            print(f"kontext-contract: error: {exc}", file=sys.stderr)
            return 2
        return 0
    if not args.base_url:
        parser.error("--base-url is required (or KONTEXT_BASE_URL)")

    _quiet_hypothesis_storage()
    from kontext_mock.contracts.drift import write_drift_report
    from kontext_mock.contracts.runner import run_contract

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    target = Target(
        base_url=args.base_url, token=args.token, client_id=args.client_id,
        client_secret=args.client_secret, application_id=args.application_id,
        mock_admin_token=args.mock_admin_token, mcp_token=args.mcp_token,
    )
    options = Options(
        spec=args.spec, max_examples=args.max_examples, seed=args.seed,
        destructive=args.destructive, rate_limit=args.rate_limit, idle_after=args.idle_after,
        budget=args.budget, assumptions=args.assumptions,
        layers=tuple(args.layers or LAYERS), skip=frozenset(args.skip),
        foreign_session_ids=tuple(args.foreign_session_id), timeout=args.timeout,
        restore=args.restore, mcp=args.mcp, progress=progress,
    )
    try:
        report = run_contract(target, options)
    except ContractError as exc:
        print(f"kontext-contract: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kontext-contract: interrupted", file=sys.stderr)
        return 2
    except Exception:  # a bug of the kit: no verdict (2), and what a bug report needs
        print("kontext-contract: internal error (no verdict on the contract); please report:",
              file=sys.stderr)
        traceback.print_exc()
        return 2
    print(report.render(), flush=True)
    for option, write, what in ((args.junit, write_junit, "JUnit report"),
                                (args.drift_report, write_drift_report, "drift report")):
        if not option:
            continue
        try:
            path = write(report, option)
        except OSError as exc:
            print(f"kontext-contract: error: cannot write {option}: {exc.strerror}",
                  file=sys.stderr)
            return 2
        print(f"{what}: {path}")
    return report.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
