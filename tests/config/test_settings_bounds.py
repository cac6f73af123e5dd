"""Every number a setting holds is finite and bounded, and every address is parsed and stored normalised.

A value out of bounds (``inf``, ``1e308``, NaN, a year-long connect timeout) or an address the collector
cannot use stops start-up with one line naming the key, instead of failing every host later.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from annotated_types import Le, Lt

from config.settings import ConfigError, Settings, load_settings

DAY_S = 24 * 3600
# The largest value each bounded setting may take: the oracle the settings' own bounds are checked against.
MAXIMUM: dict[str, float] = {
    "concurrency": 4096,
    "timeout_s": DAY_S,
    "connect_timeout_s": DAY_S,
    "run_timeout_s": 7 * DAY_S,
    "max_reply_bytes": 1024**3,
    "grace_warning_days": 180,
    "stale_after_hours": 366 * 24,
    "poll_interval_s": 31 * DAY_S,
    "refresh_s": DAY_S,
    "auth_session_hours": 366 * 24,
}


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.toml"
    path.write_text("", encoding="utf-8")
    return path


def refused(key: str, config: Path, **kwargs: object) -> str:
    environ = kwargs.pop("environ", {})
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=config, environ=environ, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(f"{key} (ACTIVATION_{key.upper()}): "), message
    assert "\n" not in message and "\r" not in message
    return message


def numeric_fields() -> list[str]:
    return [
        name
        for name, field in Settings.model_fields.items()
        if field.annotation in (int, float) or field.annotation in (int | None, float | None)
    ]


def upper_bound(name: str) -> float | None:
    for item in Settings.model_fields[name].metadata:
        if isinstance(item, Le):
            return float(item.le)  # type: ignore[arg-type]
        if isinstance(item, Lt):
            return float(item.lt)  # type: ignore[arg-type]
    return None


# --- numbers ---------------------------------------------------------------------------------------


def test_every_number_setting_has_an_upper_bound() -> None:
    assert {name: upper_bound(name) for name in numeric_fields() if upper_bound(name) is None} == {}


@pytest.mark.parametrize("name", sorted(MAXIMUM))
def test_each_bound_is_no_larger_than_sensible(name: str) -> None:
    bound = upper_bound(name)
    assert bound is not None and bound <= MAXIMUM[name]


@pytest.mark.parametrize("name", sorted(MAXIMUM))
def test_the_largest_sensible_value_is_accepted_and_one_more_refused(name: str, empty: Path) -> None:
    largest = MAXIMUM[name]
    text = str(int(largest)) if Settings.model_fields[name].annotation is int else repr(float(largest))
    assert getattr(load_settings(config_file=empty, environ={f"ACTIVATION_{name.upper()}": text}), name) == largest
    refused(name, empty, environ={f"ACTIVATION_{name.upper()}": str(int(largest) + 1)})


@pytest.mark.parametrize("name", ["timeout_s", "connect_timeout_s", "run_timeout_s", "stale_after_hours"])
@pytest.mark.parametrize("text", ["inf", "-inf", "Infinity", "nan", "NaN", "1e308", "1.7976931348623157e308"])
def test_a_float_setting_refuses_infinity_nan_and_huge(name: str, text: str, empty: Path) -> None:
    refused(name, empty, environ={f"ACTIVATION_{name.upper()}": text})


@pytest.mark.parametrize("name", ["timeout_s", "run_timeout_s", "auth_session_hours"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e308])
def test_a_keyword_value_is_bounded_like_the_environment(name: str, value: float, empty: Path) -> None:
    # What `poll --timeout inf` passes through.
    refused(name, empty, **{name: value})


@pytest.mark.parametrize("line", ["timeout_s = inf", "run_timeout_s = nan", "stale_after_hours = -inf"])
def test_toml_infinity_and_nan_are_refused(line: str, tmp_path: Path) -> None:
    path = tmp_path / "am.toml"
    path.write_text(line + "\n", encoding="utf-8")
    refused(line.split(" ")[0], path)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("max_reply_bytes", "1" * 30),
        ("max_reply_bytes", str(2**63)),
        ("grace_warning_days", "181"),
        ("grace_warning_days", "99999999"),
        ("poll_interval_s", str(2**40)),
        ("refresh_s", str(10**12)),
        ("concurrency", "1" * 5000),
    ],
)
def test_an_integer_setting_refuses_huge(name: str, text: str, empty: Path) -> None:
    refused(name, empty, environ={f"ACTIVATION_{name.upper()}": text})


def test_a_huge_value_is_shown_shortened(empty: Path) -> None:
    message = refused("concurrency", empty, environ={"ACTIVATION_CONCURRENCY": "1" * 5000})
    assert len(message) < 300


# --- addresses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("10.0.0.53", "10.0.0.53"),
        ("10.0.0.53:53", "10.0.0.53"),
        (" 10.0.0.53:5353 ", "10.0.0.53:5353"),
        ("10.0.0.53:0053", "10.0.0.53"),
        ("[10.0.0.53]:5353", "10.0.0.53:5353"),
        ("::1", "[::1]"),
        ("[::1]:53", "[::1]"),
        ("[2001:DB8:0::53]:5353", "[2001:db8::53]:5353"),
    ],
)
def test_dns_server_is_stored_normalised(text: str, stored: str, empty: Path) -> None:
    settings = load_settings(config_file=empty, environ={"ACTIVATION_DNS_SERVER": text})
    assert settings.dns_server == stored
    # normalised means a fixed point: reading the stored value back gives it again
    assert load_settings(config_file=empty, environ={"ACTIVATION_DNS_SERVER": stored}).dns_server == stored


@pytest.mark.parametrize(
    "text",
    [
        "a b:53",
        "dns server",
        "dns.corp",  # the resolver is asked by address: it cannot look up its own name
        "dns.corp:53",
        "999.1.1.1:53",
        "10.0.0.1:0",
        "10.0.0.1:65536",
        "10.0.0.1:5a",
        "10.0.0.1:-53",
        "10.0.0.1:53:53",
        "a:b:c",
        "[::1",
        "[::1]:",
        "[::1]x",
        "[dns.corp]:53",
        "fe80::1%eth0",
        ":53",
        "10.0.0.1\x00:53",
        "10.0.0.1\n:53",
        "١٠.٠.٠.١:53",
        "10.0.0.1:٥٣",
    ],
)
def test_a_malformed_dns_server_is_refused(text: str, empty: Path) -> None:
    refused("dns_server", empty, environ={"ACTIVATION_DNS_SERVER": text})


def test_a_blank_dns_server_in_the_file_means_the_system_resolver(tmp_path: Path) -> None:
    path = tmp_path / "am.toml"
    path.write_text('dns_server = "  "\n', encoding="utf-8")
    assert load_settings(config_file=path, environ={}).dns_server is None


@pytest.mark.parametrize("name", ["data_dir", "inventory_path", "ca_bundle", "secrets_file", "spool_dir"])
def test_a_path_with_a_nul_character_is_refused(name: str, tmp_path: Path) -> None:
    path = tmp_path / "am.toml"
    path.write_text(f'{name} = "data\\u0000dir"\n', encoding="utf-8")
    refused(name, path)
