"""One set of configuration rules: every field has one reader, and a typo is refused with
the same message whichever way it came in (environment, ``kontext-mock serve``, the
pytest marker, option and ini key, ``KontextMock(**overrides)``)."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pytest

from kontext_mock import KontextMock, MockConfig
from kontext_mock.cli import main
from kontext_mock.config import FIELD_READERS, ConfigError, read_field
from kontext_mock.core.ratelimit import PRODUCTION_PER_MINUTE
from kontext_mock.fixtures import settings
from kontext_mock.fixtures.plugin import _OPTIONS

pytest_plugins = ["pytester"]

# (field, the typo as text, as a Python value, the one message it gets)
TYPOS = [
    ("strict", "ture", "ture", "strict='ture': expected true or false (or 1/0, yes/no, on/off)"),
    ("idle_after", "soon", "soon", "idle_after='soon': not a duration: 'soon' (use seconds like 90,"
                                   " ISO 8601 like PT10M, or 1h30m)"),
    ("sessions", "-1", -1, "sessions=-1: expected a count of 0 or more"),
]
IDS = [typo[0] for typo in TYPOS]


def option(key: str) -> str:
    return "--" + key.replace("_", "-")


# -- every path, the same message ------------------------------------------------------------


@pytest.mark.parametrize(("key", "text", "value", "message"), TYPOS, ids=IDS)
def test_the_environment_refuses_a_typo_naming_the_variable(
    key: str, text: str, value: object, message: str,
) -> None:
    variable = f"KONTEXT_MOCK_{key.upper()}"
    with pytest.raises(ConfigError) as refused:
        MockConfig.from_env({variable: text})
    assert str(refused.value) == f"{variable}: {message}"


@pytest.mark.parametrize(("key", "text", "value", "message"), TYPOS, ids=IDS)
def test_a_keyword_override_is_refused_with_the_same_message(
    key: str, text: str, value: object, message: str,
) -> None:
    with pytest.raises(ConfigError) as refused:
        KontextMock(**{key: value})
    assert str(refused.value) == message


@pytest.mark.parametrize(("key", "text", "value", "message"), TYPOS, ids=IDS)
def test_serve_exits_2_with_the_same_message_from_the_environment(
    key: str, text: str, value: object, message: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(f"KONTEXT_MOCK_{key.upper()}", text)
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "0"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.endswith(f"kontext-mock serve: error: KONTEXT_MOCK_{key.upper()}: {message}\n")
    assert "Traceback" not in err


@pytest.mark.parametrize(("key", "text", "value", "message"),
                         [t for t in TYPOS if t[0] != "strict"], ids=IDS[1:])  # --strict is a flag
def test_serve_exits_2_with_the_same_message_from_an_option(
    key: str, text: str, value: object, message: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "0", option(key), text])
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(f"kontext-mock serve: error: {option(key)}: {message}\n")


def test_the_marker_refuses_each_typo_with_the_same_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_it="import pytest\n" + "".join(
        f"\n@pytest.mark.kontext({key}={value!r})\ndef test_{key}(kontext_mock):\n    pass\n"
        for key, _, value, _ in TYPOS))

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(errors=len(TYPOS))
    for key, _, _, message in TYPOS:
        assert f"@pytest.mark.kontext on test_{key}: {message}" in result.stdout.str()


@pytest.mark.parametrize(("key", "text", "value", "message"), TYPOS, ids=IDS)
def test_the_plugins_option_and_ini_key_refuse_a_typo_with_the_same_message(
    pytester: pytest.Pytester, key: str, text: str, value: object, message: str,
) -> None:
    pytester.makepyfile(test_it="def test_nothing():\n    pass\n")

    by_option = pytester.runpytest("-p", "no:cacheprovider", f"--kontext-{option(key)[2:]}={text}")
    pytester.makeini(f"[pytest]\nkontext_{key} = {text}\n")
    by_ini = pytester.runpytest("-p", "no:cacheprovider")

    assert by_option.ret == by_ini.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--kontext-{option(key)[2:]}: {message}" in by_option.stderr.str()
    assert f"ini kontext_{key}: {message}" in by_ini.stderr.str()


# -- the rules themselves ---------------------------------------------------------------------


def test_every_field_has_a_reader_and_every_marker_key_an_option() -> None:
    assert set(FIELD_READERS) == {f.name for f in fields(MockConfig)}
    assert set(_OPTIONS) == set(settings.KEYS)


def test_text_from_the_environment_reads_as_the_fields_hold_it() -> None:
    config = MockConfig.from_env({
        "KONTEXT_MOCK_STRICT": "yes", "KONTEXT_MOCK_FROZEN": "0", "KONTEXT_MOCK_SEED": "7",
        "KONTEXT_MOCK_NOW": "2026-01-01T12:00:00Z", "KONTEXT_MOCK_IDLE_AFTER": "PT2M",
        "KONTEXT_MOCK_STATUS_MIX": "active=1, idle=0.5", "KONTEXT_MOCK_EVENT_STREAM_MAX": "30s",
        "KONTEXT_MOCK_DEV_SCOPES": "management:all sessions:read",
        "KONTEXT_MOCK_ALLOWED_HOSTS": "kontext.lan mock.lan",
    })
    assert (config.strict, config.frozen, config.seed) == (True, False, 7)
    assert config.now == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert (config.idle_after, config.event_stream_max) == (timedelta(minutes=2), timedelta(seconds=30))
    assert config.status_mix == {"active": 1.0, "idle": 0.5}
    assert config.dev_scopes == frozenset({"management:all", "sessions:read"})
    assert config.allowed_hosts == ("kontext.lan", "mock.lan")


def test_an_option_wins_over_the_environment_and_python_values_pass_through() -> None:
    config = MockConfig.from_env({"KONTEXT_MOCK_SEED": "7"}, seed=9, idle_after=timedelta(minutes=3))
    assert (config.seed, config.idle_after) == (9, timedelta(minutes=3))


@pytest.mark.parametrize(("key", "value", "message"), [
    ("seed", True, "seed=True: expected a whole number"),
    ("seed", "7.5", "seed=7.5: expected a whole number"),
    ("status_mix", "active", "status_mix='active': expected weights of active, idle, expired,"
                             " disconnected like active=0.5,idle=0.5"),
    ("status_mix", {"busy": 1}, "status_mix={'busy': 1}: unknown state busy"),
    ("status_mix", {"idle": -1}, "status_mix={'idle': -1}: idle: expected a weight from 0 to 1000"),
    ("now", "yesterday", "now='yesterday': not an ISO 8601 instant: 'yesterday'"),
    ("token_ttl", timedelta(minutes=-1), "token_ttl=datetime.timedelta(days=-1, seconds=86340):"
                                         " a duration must not be negative"),
    ("cors_origins", "*", "cors_origins='*': not an origin: '*'"),
    ("dev_token", "", "dev_token='': expected text that is not empty"),
    ("max_body_bytes", 0, "max_body_bytes=0: expected a whole number of 1 or more"),
    ("colour", "red", "unknown key colour (known: seed, organizations,"),
])
def test_each_kind_of_mistake_has_its_own_message(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        read_field(key, value)
    assert str(refused.value).startswith(message)
    assert refused.value.key == key


def test_the_rate_limit_of_the_real_api_is_the_cores_one_figure() -> None:
    assert settings.parse({"rate_limit": True}) == {"rate_limit": PRODUCTION_PER_MINUTE}
    assert settings.parse({"rate_limit": "on"}) == {"rate_limit": PRODUCTION_PER_MINUTE}
    assert settings.parse({"rate_limit": "off"}) == {"rate_limit": None}
    assert settings.parse({"rate_limit": "30"}) == {"rate_limit": 30}


def test_the_gateways_settings_are_options_of_serve() -> None:
    from kontext_mock.cli import build_parser, config_from_args

    args = build_parser().parse_args([
        "serve", "--oauth-dev-user", "alice", "--mcp-require-client-session-id",
        "--oauth-redirect-uri", "https://app.example/callback",
        "--oauth-redirect-uri", "https://other.example/cb",
    ])
    config = config_from_args(args)
    assert config.oauth_dev_user == "alice"
    assert config.mcp_require_client_session_id is True
    assert config.oauth_redirect_uris == ("https://app.example/callback", "https://other.example/cb")
    plain = config_from_args(build_parser().parse_args(["serve"]))
    assert (plain.oauth_dev_user, plain.mcp_require_client_session_id, plain.oauth_redirect_uris) == (
        "dev-user", False, ())
