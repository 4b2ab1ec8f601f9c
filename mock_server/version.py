"""The package's version, as its installed metadata says (``--version`` of both commands).

Read only when asked: ``importlib.metadata`` costs more to import than a control command
spends on the rest of its work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["DISTRIBUTION", "VersionAction", "version"]

#: the distribution whose version is shown
DISTRIBUTION = "kontext-mock"


def version() -> str:
    """The installed version of kontext-mock (``0.1.0``)."""
    from importlib.metadata import version as installed

    return installed(DISTRIBUTION)


class VersionAction(argparse.Action):
    """``--version``: print ``<prog> <version>`` to stdout and exit 0."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: Any = argparse.SUPPRESS,
                 help: str = "print the version and exit") -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"{parser.prog} {version()}", file=sys.stdout)
        parser.exit()
