"""kontext-mock: a stateful mock of the Kontext sessions API, a contract-testing kit
(``kontext_mock.contracts``) and a pytest plugin (``kontext_mock.fixtures``).

The public Python API: build a :class:`KontextMock`, drive its clock and state, and
serve its WSGI app (``mock.app``) or run it with ``kontext_mock.http.serve``. Names are
imported on first use, so that importing the plugin or the kit (both inside this
package) does not load the mock.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kontext_mock.config import MockConfig
    from kontext_mock.core.clock import Clock, ClockError, VirtualClock
    from kontext_mock.core.durations import (
        DurationError,
        format_instant,
        parse_duration,
        parse_instant,
    )
    from kontext_mock.core.errors import ApiError
    from kontext_mock.core.events import Event, EventBus
    from kontext_mock.core.records import derived_status
    from kontext_mock.http.spec import Spec, load_spec
    from kontext_mock.mock import KontextMock

__all__ = [
    "ApiError",
    "Clock",
    "ClockError",
    "DurationError",
    "Event",
    "EventBus",
    "KontextMock",
    "MockConfig",
    "Spec",
    "VirtualClock",
    "derived_status",
    "format_instant",
    "load_spec",
    "parse_duration",
    "parse_instant",
]

_HOMES = {
    "ApiError": "core.errors",
    "Clock": "core.clock",
    "ClockError": "core.clock",
    "DurationError": "core.durations",
    "Event": "core.events",
    "EventBus": "core.events",
    "KontextMock": "mock",
    "MockConfig": "config",
    "Spec": "http.spec",
    "VirtualClock": "core.clock",
    "derived_status": "core.records",
    "format_instant": "core.durations",
    "load_spec": "http.spec",
    "parse_duration": "core.durations",
    "parse_instant": "core.durations",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
