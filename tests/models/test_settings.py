"""Settings: defaults, precedence, and one clear line for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_default_database_is_embedded_sqlite_under_data() -> None:
    settings = load_settings(environ={}, config_file=ROOT / "config" / "activation-monitor.example.toml")
    assert settings.database_url.startswith("sqlite:///data/")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "am.toml"
    config.write_text('concurrency = 8\ndb_url = "sqlite:///from-file.db"\n')
    settings = load_settings(config_file=config, environ={"ACTIVATION_CONCURRENCY": "16"})
    assert (settings.concurrency, settings.db_url) == (16, "sqlite:///from-file.db")


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"ACTIVATION_TIMEOUT_S": "-5"}, "timeout_s"),
        ({"ACTIVATION_DB_URL": "mysql://db/am"}, "db_url"),
        ({"ACTIVATION_DB_URL": "::not a url::"}, "db_url"),
        ({"ACTIVATION_CONCURRENCY": "many"}, "concurrency"),
        ({"ACTIVATION_LANGUAGE": "fr"}, "language"),
        ({"ACTIVATION_DNS_SERVER": "127.0.0.1:99999"}, "dns_server"),
    ],
)
def test_a_bad_value_names_its_key_in_one_line(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)
    message = str(caught.value)
    assert message.startswith(key) and "\n" not in message


def test_unknown_key_in_the_file(tmp_path: Path) -> None:
    config = tmp_path / "am.toml"
    config.write_text("concurency = 8\n")
    with pytest.raises(ConfigError, match="concurency: unknown setting"):
        load_settings(config_file=config, environ={})


def test_a_password_in_the_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "am.toml"
    config.write_text('auth_password = "hunter2"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config, environ={})
    assert "hunter2" not in str(caught.value)


def test_passwords_never_show_in_repr() -> None:
    settings = load_settings(environ={"ACTIVATION_AUTH_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`ACTIVATION_{name.upper()}`" not in readme]
    assert missing == []
