"""Property-based fuzzing of the parsers people and clients feed: durations and instants,
the token endpoint's form and its HTTP Basic header. Any input ends in a value or a
clear, documented error; never an unexpected exception, never a 5xx.

The number of cases per surface is ``KONTEXT_FUZZ_EXAMPLES`` (default 300; the long run
in docs/reliability.md uses 20000).
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import orjson
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kontext_mock import KontextMock
from kontext_mock.core.credentials import parse_basic
from kontext_mock.core.durations import DurationError, parse_duration, parse_instant
from kontext_mock.core.errors import OAuthError

from .conftest import NOW, ValidatingClient

pytestmark = pytest.mark.slow  # fuzzing: hypothesis over the parsers and the token endpoint

EXAMPLES = int(os.environ.get("KONTEXT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CENTURY = timedelta(days=100 * 365)

# -- durations and instants ----------------------------------------------------------------

_DURATION_ALPHABET = "0123456789.PTWDHMSmshd+- \t:eE_nNaIif\u0660\u00b2"
duration_texts = st.one_of(
    st.text(),
    st.text(alphabet=_DURATION_ALPHABET, max_size=24),
    # near-grammatical: number/unit pieces glued in any order
    st.lists(st.tuples(st.sampled_from(["", "0", "1", "1.5", "90", "99999999999999999999", "."]),
                       st.sampled_from(["", "P", "T", "W", "D", "H", "M", "S", "ms", "m", "s",
                                        "h", "d", "-", "+"])),
             max_size=6).map(lambda parts: "".join(a + b for a, b in parts)),
)
duration_numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)


@FUZZ
@given(value=st.one_of(duration_texts, duration_numbers), negative=st.booleans())
def test_parse_duration_returns_a_bounded_duration_or_a_duration_error(
    value: str | int | float, negative: bool
) -> None:
    try:
        delta = parse_duration(value, allow_negative=negative)
    except DurationError as exc:
        error = str(exc)
    else:
        error = None
    if error is not None:
        assert "duration" in error  # says what was wrong
        return
    assert isinstance(delta, timedelta)
    assert abs(delta) <= CENTURY
    assert negative or delta >= timedelta(0)


@FUZZ
@given(number=st.decimals(min_value=0, max_value=10**6, places=3),
       unit=st.sampled_from([("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("ms", 0.001)]))
def test_compact_durations_mean_what_they_say(number: object, unit: tuple[str, float]) -> None:
    text = f"{number}{unit[0]}"
    seconds = float(str(number)) * unit[1]
    if seconds > CENTURY.total_seconds():
        with pytest.raises(DurationError):
            parse_duration(text)
        return
    assert abs(parse_duration(text).total_seconds() - seconds) < 1e-3


instant_texts = st.one_of(
    st.text(max_size=40),
    st.datetimes(timezones=st.sampled_from([UTC, None])).map(lambda d: d.isoformat()),
    st.builds(
        lambda d, sign, h, m, z: d.isoformat() + (z or f"{sign}{h:02d}:{m:02d}"),
        st.datetimes(), st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59),
        st.sampled_from(["", "Z", "z", "+00:00"]),
    ),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                     "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"]),
)


@FUZZ
@given(value=instant_texts)
def test_parse_instant_returns_an_aware_utc_instant_or_a_duration_error(value: str) -> None:
    try:
        instant = parse_instant(value)
    except DurationError as exc:
        error = str(exc)
    else:
        error = None
    if error is not None:
        assert "instant" in error
        return
    assert isinstance(instant, datetime) and instant.utcoffset() == timedelta(0)


# -- the token endpoint ----------------------------------------------------------------------

field_values = st.one_of(
    st.sampled_from(["client_credentials", "dev-client", "dev-secret", "management:all",
                     "management:applications:read management:logs:write", "", " ", "password"]),
    st.text(max_size=40),
)
# Mostly well-formed requests with some fields changed, so that cases get past the
# form's validation to the client authentication and scope checks behind it.
form_pairs = st.builds(
    lambda grant, fields, extra: [("grant_type", grant)] * (grant is not None)
    + [(k, v) for k, v in fields.items()] + extra,
    st.one_of(*[st.just("client_credentials")] * 4, st.none(), field_values),
    st.fixed_dictionaries({}, optional={
        "client_id": st.one_of(st.just("dev-client"), field_values),
        "client_secret": st.one_of(st.just("dev-secret"), field_values),
        "scope": field_values,
        "audience": field_values,
    }),
    st.lists(st.tuples(st.one_of(st.sampled_from(["grant_type", "client_id", "", "x[]"]),
                                 st.text(max_size=10)), field_values), max_size=3),
)


def encode_form(pairs: list[tuple[str, str]], raw_bytes: bytes, mode: str) -> bytes:
    if mode == "raw":
        return raw_bytes
    encoded = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs).encode()
    return encoded + raw_bytes if mode == "form+junk" else encoded


_latin1_header = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=60,
)
authorization = st.one_of(
    st.none(),
    _latin1_header,
    st.builds(lambda b: "Basic " + base64.b64encode(b).decode(), st.binary(max_size=60)),
    st.builds(lambda i, s: "Basic " + base64.b64encode(f"{i}:{s}".encode()).decode(),
              st.sampled_from(["dev-client", "dev%2Dclient", "nobody", ""]) | st.text(max_size=12),
              st.sampled_from(["dev-secret", "dev%2Dsecret", "dev+secret", ""]) | st.text(max_size=12)),
    st.builds(lambda s: "Basic " + s, _latin1_header),
)
_FORM = st.just("application/x-www-form-urlencoded")
content_types = st.one_of(
    _FORM, _FORM, _FORM, _FORM,  # weight: most cases reach the handler
    st.sampled_from(["application/x-www-form-urlencoded",
                     "application/x-www-form-urlencoded; charset=utf-8",
                     "application/x-www-form-urlencoded; charset=latin-1",
                     "application/json", "multipart/form-data; boundary=x", "text/plain", None]),
    _latin1_header,
)
OAUTH_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope"}


@pytest.fixture(scope="module")
def token_client() -> FlaskClient:
    mock = KontextMock(seed=3, now=NOW, frozen=True)
    mock.app.test_client_class = ValidatingClient
    return mock.app.test_client()


@FUZZ
@given(pairs=form_pairs, junk=st.binary(max_size=40),
       mode=st.sampled_from(["form"] * 6 + ["form+junk", "raw"]),
       auth=authorization, content_type=content_types)
def test_the_token_endpoint_answers_every_request_as_rfc_6749_says(
    token_client: FlaskClient, pairs: list[tuple[str, str]], junk: bytes, mode: str,
    auth: str | None, content_type: str | None,
) -> None:
    headers = {"Authorization": auth} if auth is not None else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    # ValidatingClient checks the answer against openapi.yaml (status, headers, body).
    response = token_client.post("/oauth2/token", data=encode_form(pairs, junk, mode),
                                 headers=headers)
    assert response.status_code in (200, 400, 401, 413), response.get_data()
    body = orjson.loads(response.get_data())
    if response.status_code == 200:
        assert body["token_type"] == "Bearer" and body["access_token"]
    elif response.status_code != 413:
        assert body["error"] in OAUTH_ERRORS and body["error_description"]
        assert response.headers["Cache-Control"] == "no-store"


@FUZZ
@given(header=st.one_of(st.none(), _latin1_header, authorization))
def test_parse_basic_returns_credentials_none_or_invalid_client(header: str | None) -> None:
    try:
        parsed = parse_basic(header)
    except OAuthError as exc:
        refused: tuple[int, str] | None = (exc.status, exc.code)
    else:
        refused = None
    if refused is not None:
        assert refused == (401, "invalid_client")
        return
    assert parsed is None or (isinstance(parsed[0], str) and isinstance(parsed[1], str))


@FUZZ
@given(client_id=st.text(max_size=20), secret=st.text(max_size=20))
def test_basic_credentials_survive_the_rfc_6749_encoding(client_id: str, secret: str) -> None:
    # RFC 6749 section 2.3.1: form-urlencode each part, then Basic-encode "id:secret".
    encoded = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    assert parse_basic("Basic " + base64.b64encode(encoded).decode()) == (client_id, secret)
