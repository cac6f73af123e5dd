"""Settings: defaults, precedence, and one clear line for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ConfigError, Settings, load_settings, parse_host_port

ROOT = Path(__file__).resolve().parents[2]
EMPTY = ROOT / "config" / "activation-monitor.example.toml"


def test_default_database_is_embedded_sqlite_under_data() -> None:
    settings = load_settings(environ={}, config_file=ROOT / "config" / "activation-monitor.example.toml")
    assert settings.database_url == f"sqlite:///{ROOT}/data/activation-monitor.db"


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
        load_settings(environ=environ, config_file=EMPTY)
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
    environ = {
        "ACTIVATION_AUTH_PASSWORD": "hunter2-hunter2",
        "ACTIVATION_DB_URL": "postgresql+psycopg://am:S3cretPw@db/am",
    }
    settings = load_settings(environ=environ, config_file=EMPTY)
    for text in (repr(settings), str(settings), settings.safe_database_url):
        assert "hunter2" not in text and "S3cretPw" not in text


@pytest.mark.parametrize("url", ["mysql://am:S3cretPw@db/am", "postgresql://am:S3cretPw@db:notaport/am"])
def test_a_bad_database_url_is_reported_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"ACTIVATION_DB_URL": url}, config_file=EMPTY)
    assert str(caught.value).startswith("db_url") and "S3cretPw" not in str(caught.value)


def test_an_empty_variable_means_unset(tmp_path: Path) -> None:
    environ = {"ACTIVATION_SPOOL_DIR": "", "ACTIVATION_CA_BUNDLE": "", "ACTIVATION_INVENTORY_PATH": " "}
    (tmp_path / "empty.toml").write_text("")
    settings = load_settings(environ=environ, config_file=tmp_path / "empty.toml")
    assert (settings.spool_dir, settings.ca_bundle, settings.inventory_path) == (None, None, None)


def test_an_empty_sign_in_password_fails_closed() -> None:
    with pytest.raises(ConfigError, match="auth_password"):
        load_settings(environ={"ACTIVATION_AUTH_PASSWORD": ""}, config_file=EMPTY)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.53:5353", ("10.0.0.53", 5353)),
        ("dns.corp", ("dns.corp", 53)),
        ("::1", ("::1", 53)),
        ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
    ],
)
def test_dns_server_forms(value: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(value, default_port=53) == expected


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`ACTIVATION_{name.upper()}`" not in readme]
    assert missing == []
