"""``engine.settings``: every ENGINE_* variable parsed in one place, a bad value refused in one line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine.settings import Settings, SettingsError, settings


def test_defaults_when_unset_or_empty() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"ENGINE_LEASE_TTL": "", "ENGINE_REPLICAS": " "}) == Settings()
    s = Settings()
    assert (s.home, s.nats_url, s.replicas, s.executor_id) == (None, None, None, None)
    assert (s.sync_interval, s.lease_ttl, s.snapshot_every, s.log_level) == (
        "always",
        3.0,
        100,
        logging.WARNING,
    )


def test_values_are_typed() -> None:
    s = Settings.from_env(
        {
            "ENGINE_HOME": "~/data",
            "ENGINE_NATS_URL": "nats://a:4222,nats://b:4222",
            "ENGINE_REPLICAS": "3",
            "ENGINE_SYNC_INTERVAL": "1s",
            "ENGINE_EXECUTOR_ID": "x1",
            "ENGINE_LEASE_TTL": "2.5",
            "ENGINE_SNAPSHOT_EVERY": "7",
            "ENGINE_LOG_FORMAT": "json",
            "ENGINE_LOG_LEVEL": "DEBUG",
            "ENGINE_API_USER": "u",
            "ENGINE_API_PASSWORD": " p w ",
            "ENGINE_API_TOKENS": "a, b,,",
        }
    )
    assert s.home == Path("~/data").expanduser()
    assert s.nats_url == "nats://a:4222,nats://b:4222"
    assert (s.replicas, s.sync_interval, s.executor_id) == (3, "1s", "x1")
    assert (s.lease_ttl, s.snapshot_every, s.log_format, s.log_level) == (2.5, 7, "json", logging.DEBUG)
    assert (s.api_user, s.api_password, s.api_tokens) == ("u", " p w ", frozenset({"a", "b"}))


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ENGINE_REPLICAS", "7", "a number from 1 to 5"),
        ("ENGINE_REPLICAS", "three", "a number from 1 to 5"),
        ("ENGINE_LEASE_TTL", "0.5", "seconds from 1 to 60"),
        ("ENGINE_LEASE_TTL", "soon", "seconds from 1 to 60"),
        ("ENGINE_SNAPSHOT_EVERY", "0", "a number of steps >= 1"),
        ("ENGINE_SYNC_INTERVAL", "sometimes", "always or a duration"),
        ("ENGINE_LOG_FORMAT", "xml", "json or console"),
        ("ENGINE_LOG_LEVEL", "verbose", "debug, info, warning, error or critical"),
        ("ENGINE_DOCKER_VOLUMES", "yes", "true or false"),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_the_fix(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}={value!r}: expected {expected}")
    assert "\n" not in message


def test_settings_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_SNAPSHOT_EVERY", "5")
    assert settings().snapshot_every == 5
    assert settings() is settings()  # parsed once while nothing changes
    monkeypatch.setenv("ENGINE_SNAPSHOT_EVERY", "6")
    assert settings().snapshot_every == 6
    monkeypatch.setenv("ENGINE_SNAPSHOT_EVERY", "none")
    with pytest.raises(SettingsError, match="ENGINE_SNAPSHOT_EVERY='none'"):
        settings()
    monkeypatch.delenv("ENGINE_SNAPSHOT_EVERY")
    assert settings().snapshot_every == 100
