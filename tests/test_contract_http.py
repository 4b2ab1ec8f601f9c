"""The kit's HTTP discipline: rate limit, Retry-After, token refresh, redaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from kontext_mock import KontextMock, MockConfig, contracts
from kontext_mock.contracts import Options, Target, run_contract
from kontext_mock.contracts.http import ApiClient
from kontext_mock.contracts.pacing import RateLimiter, parse_rate, retry_after_seconds
from kontext_mock.http.serve import start

pytestmark = pytest.mark.slow  # the kit's HTTP client against served mocks

DEV_APP = MockConfig().dev_application_id


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_rate_limiter_never_lets_more_than_n_requests_into_a_window() -> None:
    t = FakeTime()
    limiter = RateLimiter(3, 60.0, clock=t.clock, sleep=t.sleep)
    sent = []
    for _ in range(7):
        limiter.acquire()
        sent.append(t.now)
        t.now += 1.0
    assert sent[:3] == [0.0, 1.0, 2.0]
    assert sent[3] == 60.0 and sent[6] == 120.0
    for i, at in enumerate(sent):
        assert sum(at - 60.0 < other <= at for other in sent[: i + 1]) <= 3


@pytest.mark.parametrize(("text", "expected"), [
    ("120/min", (120, 60.0)), ("2/s", (2, 1.0)), ("100", (100, 60.0)), ("5/h", (5, 3600.0)),
])
def test_rates_are_read_as_n_per_window(text: str, expected: tuple[int, float]) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["0/min", "fast", "10/week", "-1"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="bad rate"):
        parse_rate(text)


def test_retry_after_is_read_as_seconds_and_capped() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("3600") == 60.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


WsgiApp = Callable[..., Iterable[bytes]]


def rate_limited_at_times(app: WsgiApp, every: int, times: int, hits: list[int]) -> WsgiApp:
    """Answer 429 with ``Retry-After: 1`` to every ``every``-th API request, ``times`` times."""
    count = [0]

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"].startswith("/api/v1/"):
            count[0] += 1
            if count[0] % every == 0 and len(hits) < times:
                hits.append(count[0])
                start_response("429 TOO MANY REQUESTS", [
                    ("Content-Type", "application/json"), ("Retry-After", "1"),
                    ("x-request-id", f"rl-{count[0]}")])
                return [b'{"error":"rate_limited","message":"slow down"}']
        return app(environ, start_response)

    return wrapped


@pytest.mark.slow
def test_the_kit_waits_out_retry_after_and_never_judges_a_429() -> None:
    hits: list[int] = []
    server = start(rate_limited_at_times(KontextMock(seed=7).app, 25, 2, hits), "127.0.0.1", 0)
    started = time.monotonic()
    try:
        report = run_contract(Target(server.url, token="dev-token", application_id=DEV_APP),
                              Options(max_examples=5, seed=9, destructive=False))
    finally:
        server.stop()
    assert len(hits) == 2
    assert time.monotonic() - started >= 2.0
    assert report.ok, report.render()
    # a mock that answers 429 is rate limited: the rest of the run keeps to a budget
    assert report.budget is not None and report.plan
    assert any("answered 429" in note for note in report.notes), report.notes


class CountingLimiter(RateLimiter):
    acquired = 0

    def acquire(self) -> None:
        CountingLimiter.acquired += 1


def test_every_request_of_every_layer_goes_through_the_rate_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(contracts.runner.RateLimiter, "from_text",
                        classmethod(lambda cls, text: CountingLimiter(1000)))
    CountingLimiter.acquired = 0
    server = start(KontextMock(seed=7).app, "127.0.0.1", 0)
    try:
        report = run_contract(Target(server.url, token="dev-token", application_id=DEV_APP),
                              Options(max_examples=3, seed=2, rate_limit="1000/min",
                                      destructive=False))
    finally:
        server.stop()
    assert report.ok
    assert report.requests > 50
    assert CountingLimiter.acquired == report.requests


def test_client_credentials_are_refreshed_when_the_token_expires_mid_run() -> None:
    # Tokens from /oauth2/token live 1 s on the mock's (running) clock.
    server = start(KontextMock(seed=7, token_ttl=1).app, "127.0.0.1", 0)
    try:
        report = run_contract(
            Target(server.url, client_id="dev-client", client_secret="dev-secret",
                   application_id=DEV_APP),
            Options(max_examples=10, seed=4, destructive=False))
    finally:
        server.stop()
    assert report.ok, report.render()
    assert any("fetched again" in note for note in report.notes), report.notes
    assert "dev-secret" not in report.render()


def test_secrets_are_redacted_in_curl_lines() -> None:
    server = start(KontextMock(seed=7).app, "127.0.0.1", 0)
    try:
        client = ApiClient(server.url, client_id="dev-client", client_secret="dev-secret")
        ex = client.get(f"/api/v1/applications/{DEV_APP}/sessions", params={"limit": 1})
        token = client.token()
    finally:
        server.stop()
    curl = ex.curl()
    assert curl.startswith("curl -sS ") and "limit=1" in curl
    assert "Authorization: Bearer [REDACTED]" in curl
    assert token not in curl and token not in ex.describe()
