"""``KontextMock``: the mock behind the HTTP API, the CLI and the pytest plugin.

Everything it does is :class:`~kontext_mock.core.engine.MockEngine`'s, part by part
(the clock, tokens, sessions, accounts, whole states); this class adds what a user
constructs it with (a configuration and keyword overrides) and its HTTP face, the Flask
(WSGI) application ``app``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kontext_mock.config import MockConfig, read_fields
from kontext_mock.core.engine import MockEngine
from kontext_mock.core.state import MockSnapshot

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["KontextMock", "MockSnapshot"]


class KontextMock(MockEngine):
    """A stateful mock of the Kontext sessions API, driven from Python or over HTTP.

    >>> mock = KontextMock(seed=7, now="2026-01-01T12:00:00Z", frozen=True)
    >>> app_id = mock.config.dev_application_id
    >>> before = len(mock.list_sessions(app_id))
    >>> _ = mock.advance("PT10M")   # sessions go idle, tokens expire
    """

    def __init__(self, config: MockConfig | None = None, **overrides: Any) -> None:
        # Read by the configuration's rules, so that KontextMock(strict="ture") is refused
        # with the message the CLI, the environment and the pytest marker give.
        base = config or MockConfig()
        overrides = read_fields(overrides)
        super().__init__(base.with_changes(**overrides) if overrides else base)
        self._app: Flask | None = None

    @property
    def app(self) -> Flask:
        """The Flask (WSGI) application serving this mock, built on first use."""
        if self._app is None:
            from kontext_mock.http.app import create_app

            self._app = create_app(self)
        return self._app
