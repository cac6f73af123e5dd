"""Where settings come from: keyword arguments, then the environment, then the TOML file, then the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ConfigError, load_settings


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "am.toml"
    path.write_text('concurrency = 8\ncollector_name = "from-file"\ndns_server = "10.0.0.53"\n', encoding="utf-8")
    return path


def test_keyword_beats_environment_beats_file_beats_default(config: Path) -> None:
    environ = {"ACTIVATION_CONCURRENCY": "16", "ACTIVATION_REFRESH_S": "60", "ACTIVATION_TIMEOUT_S": "9"}
    settings = load_settings(config_file=config, environ=environ, timeout_s=3.0)
    assert (settings.timeout_s, settings.refresh_s, settings.concurrency, settings.collector_name) == (
        3.0,
        60,
        16,
        "from-file",
    )
    assert settings.poll_interval_s == 3600


def test_the_given_environment_replaces_the_process_environment(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVATION_CONCURRENCY", "99")
    assert load_settings(config_file=config, environ={}).concurrency == 8
    assert load_settings(config_file=config).concurrency == 99


def test_activation_config_names_the_file(config: Path) -> None:
    assert load_settings(environ={"ACTIVATION_CONFIG": str(config)}).concurrency == 8


@pytest.mark.parametrize("via", ["argument", "environment"])
def test_a_named_file_that_is_missing_is_refused(tmp_path: Path, via: str) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as caught:
        if via == "argument":
            load_settings(config_file=missing, environ={})
        else:
            load_settings(environ={"ACTIVATION_CONFIG": str(missing)})
    assert str(caught.value) == f"ACTIVATION_CONFIG: config file {missing} does not exist"


@pytest.mark.parametrize("content", [b"concurrency = = 8\n", b"\xff\xfe not text\n"], ids=["not TOML", "not UTF-8"])
def test_a_file_that_cannot_be_read_is_named_in_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path, environ={})
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot read config file: ") and "\n" not in message


def test_a_folder_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(config_file=tmp_path, environ={})


def test_a_password_in_the_file_points_to_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "am.toml"
    path.write_text('auth_password = "hunter2-hunter2"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path, environ={"ACTIVATION_AUTH_PASSWORD": "hunter2-hunter2"})
    assert str(caught.value) == f"auth_password: a password does not belong in {path}; set ACTIVATION_AUTH_PASSWORD"


def test_a_blank_variable_leaves_the_file_value_in_place(config: Path) -> None:
    environ = {"ACTIVATION_COLLECTOR_NAME": "", "ACTIVATION_DNS_SERVER": "  "}
    settings = load_settings(config_file=config, environ=environ)
    assert (settings.collector_name, settings.dns_server) == ("from-file", "10.0.0.53")


def test_a_blank_number_is_an_error_not_unset(config: Path) -> None:
    with pytest.raises(ConfigError, match=r"^concurrency \(ACTIVATION_CONCURRENCY\): "):
        load_settings(config_file=config, environ={"ACTIVATION_CONCURRENCY": ""})


def test_only_upper_case_variable_names_count(config: Path) -> None:
    assert load_settings(config_file=config, environ={"activation_concurrency": "16"}).concurrency == 8


def test_other_activation_variables_are_not_settings(config: Path) -> None:
    environ = {"ACTIVATION_CRED_FINANCE_PASSWORD": "S3cretPw", "ACTIVATION_TEST_PG_URL": "postgresql://x/y"}
    assert load_settings(config_file=config, environ=environ).concurrency == 8


@pytest.mark.parametrize("where", ["file", "keyword"])
def test_an_unknown_key_is_refused(tmp_path: Path, where: str) -> None:
    path = tmp_path / "am.toml"
    path.write_text("poll_intervall_s = 60\n" if where == "file" else "", encoding="utf-8")
    overrides = {"poll_intervall_s": 60} if where == "keyword" else {}
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path, environ={}, **overrides)
    assert str(caught.value) == f"poll_intervall_s: unknown setting (in {path} or ACTIVATION_POLL_INTERVALL_S)"


def test_every_problem_is_counted_on_the_one_line(tmp_path: Path) -> None:
    path = tmp_path / "am.toml"
    path.write_text("refresh_s = 1\nbogus = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path, environ={"ACTIVATION_CONCURRENCY": "many"})
    message = str(caught.value)
    assert message.startswith("concurrency (ACTIVATION_CONCURRENCY): ")
    assert message.endswith("(and 2 more problems)") and "\n" not in message


def test_a_database_password_from_the_file_is_not_shown(tmp_path: Path) -> None:
    path = tmp_path / "am.toml"
    path.write_text('db_url = "mysql://am:S3cretPw@db/am"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path, environ={})
    assert str(caught.value).startswith("db_url") and "S3cretPw" not in str(caught.value)


def test_a_short_sign_in_password_is_refused_without_showing_it(config: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config, environ={"ACTIVATION_AUTH_PASSWORD": "hunter2"})
    assert str(caught.value).startswith("auth_password") and "hunter2" not in str(caught.value)
