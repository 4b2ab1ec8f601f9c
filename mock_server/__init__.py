"""kontext-mock: a stateful mock of the Kontext sessions API.

The public Python API: build a :class:`KontextMock`, drive its clock and state, and
serve its WSGI app (``mock.app``) or run it with :func:`serve`.
"""

from .clock import Clock, ClockError, VirtualClock
from .config import MockConfig
from .durations import DurationError, format_instant, parse_duration, parse_instant
from .errors import ApiError
from .events import Event, EventBus
from .mock import KontextMock
from .model import derived_status
from .spec import Spec, load_spec

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
