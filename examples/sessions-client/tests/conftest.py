"""The client under test, wired to the plugin's mock.

Nothing here knows whether the mock is served over HTTP or in-process: run
``pytest --kontext-transport=inprocess`` and the same tests open no socket.
"""

from __future__ import annotations

import pytest
from sessions_client import SessionsClient


@pytest.fixture
def client(kontext_mock, kontext_clock):
    """A client of the test's mock; it waits on the mock's clock instead of sleeping."""
    return SessionsClient(
        kontext_mock.url,
        token=kontext_mock.token,
        http=kontext_mock.requests_session(),
        sleep=kontext_clock.advance,
    )
