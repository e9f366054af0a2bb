"""Settings: KEYSTEAD_* parsing, CLI overrides, issuer default and validation."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from keystead.errors import ConfigError
from keystead.settings import Settings


def test_defaults_give_a_local_http_issuer():
    settings = Settings().with_defaults()
    assert settings.issuer == "http://127.0.0.1:8080/"
    assert settings.management_audience == "http://127.0.0.1:8080/api/v2/"


def test_env_values_are_typed():
    settings = Settings.from_env(
        {
            "KEYSTEAD_HOST": "0.0.0.0",
            "KEYSTEAD_PORT": "9000",
            "KEYSTEAD_DEV_TLS": "yes",
            "KEYSTEAD_WORKERS": "4",
            "KEYSTEAD_DATABASE_URL": "postgresql://u@db/keystead",
            "KEYSTEAD_MANAGEMENT_AUDIENCE_ALIASES": " https://a.example/api/v2/, ,https://b/ ",
            "KEYSTEAD_SECRET_KEY": "s3cret",
            "UNRELATED": "ignored",
        }
    )
    assert (settings.host, settings.port, settings.dev_tls, settings.workers) == (
        "0.0.0.0",
        9000,
        True,
        4,
    )
    assert settings.database_url == "postgresql://u@db/keystead"
    assert settings.management_audience_aliases == ("https://a.example/api/v2/", "https://b/")
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("TRUE", True), ("off", False), ("", False)]
)
def test_env_booleans(raw, value):
    assert Settings.from_env({"KEYSTEAD_DEV_TLS": raw}).dev_tls is value


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KEYSTEAD_PORT": "eighty"}, "KEYSTEAD_PORT must be an integer"),
        ({"KEYSTEAD_WORKERS": "2.5"}, "KEYSTEAD_WORKERS must be an integer"),
        ({"KEYSTEAD_DEV_TLS": "maybe"}, "KEYSTEAD_DEV_TLS must be true or false"),
    ],
)
def test_bad_env_values_are_config_errors(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(port=0), "port must be between 1 and 65535"),
        (Settings(port=70000), "port must be between 1 and 65535"),
        (Settings(workers=0), "workers must be at least 1"),
        (Settings(issuer="ftp://example.com/"), "issuer must be an http"),
        (Settings(issuer="not a url"), "issuer must be an http"),
        (Settings(tls_cert="cert.pem"), "must be given together"),
    ],
)
def test_bad_values_are_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        settings.with_defaults()


@pytest.mark.parametrize(
    ("settings", "issuer"),
    [
        (Settings(port=9443, dev_tls=True), "https://127.0.0.1:9443/"),
        (Settings(host="0.0.0.0"), "http://localhost:8080/"),
        (Settings(tls_cert="c.pem", tls_key="k.pem"), "https://127.0.0.1:8080/"),
        (Settings(issuer="https://id.example.com"), "https://id.example.com/"),
        (Settings(issuer="https://id.example.com/tenant/"), "https://id.example.com/tenant/"),
    ],
)
def test_issuer_default_and_trailing_slash(settings, issuer):
    assert settings.with_defaults().issuer == issuer


def test_flags_override_env_and_none_keeps_env():
    env = Settings.from_env({"KEYSTEAD_PORT": "9000", "KEYSTEAD_HOST": "10.0.0.1"})
    merged = env.merged(port=9100, host=None, dev_tls=None).with_defaults()
    assert (merged.host, merged.port, merged.dev_tls) == ("10.0.0.1", 9100, False)
    assert merged.issuer == "http://10.0.0.1:9100/"


def test_with_defaults_is_idempotent():
    once = Settings(issuer="https://id.example.com").with_defaults()
    assert once.with_defaults() == once


def test_readme_documents_every_setting():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| `KEYSTEAD_")]
    documented = {name for line in table for name in re.findall(r"`KEYSTEAD_([A-Z_]+)`", line)}
    assert documented == {f.name.upper() for f in fields(Settings)}
