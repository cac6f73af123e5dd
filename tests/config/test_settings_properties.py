"""Properties of reading settings: whatever text an environment variable holds, and whatever value a keyword
or the TOML file gives, ``load_settings`` returns settings whose numbers are finite and within their bounds
and whose DNS server is a normalised address, or raises ``ConfigError`` with one printable line naming the
key. No other exception escapes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from annotated_types import Ge, Gt, Le, Lt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import ConfigError, Settings, load_settings, normalise_dns_server

KEYS = sorted(Settings.model_fields)
EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONGEST_MESSAGE = 400

# --- values ------------------------------------------------------------------------------------------

SPECIAL_NUMBERS = [
    "inf", "-inf", "+inf", "Infinity", "-Infinity", "nan", "NaN", "-nan", "1e308", "-1e308", "1e309", "1e-308",
    "5e-324", "0", "-0", "0.0", "-1", "1e3", "0x10", "1_000", "٣", "²", "５", " 5 ", "5.", ".5", "1,5", "true",
    "9" * 5000, "4294967296", str(2**63), str(-(2**63) - 1), "86400", "86401", "604800.0", "604800.5",
]  # fmt: skip

# Environment variables hold text; on POSIX, undecodable bytes arrive as lone surrogates (surrogateescape).
any_text = st.text(st.characters(exclude_categories=()), max_size=60)
long_text = st.integers(min_value=100, max_value=20_000).map(lambda n: "x" * n)
number_text = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS),
    st.floats().map(repr),
    st.floats().map(str),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.integers(min_value=0, max_value=10**7).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
host_text = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded.upper()),
    st.sampled_from(["dns.corp", "localhost", "", " ", "[", "]", "::", ":", "%", "fe80::1%eth0", "1.2.3", "1.2.3.4.5"]),
    st.from_regex(r"[0-9a-fA-F:.\[\]% -]{0,20}", fullmatch=True),
    any_text,
)
port_text = st.one_of(st.integers(min_value=-2, max_value=70_000).map(str), number_text, any_text)
address_text = st.one_of(
    host_text,
    st.tuples(host_text, port_text).map(lambda hp: f"{hp[0]}:{hp[1]}"),
    st.tuples(host_text, port_text).map(lambda hp: f"[{hp[0]}]:{hp[1]}"),
    host_text.map(lambda h: f"[{h}]"),
    st.tuples(host_text, port_text).map(lambda hp: f" {hp[0]}:{hp[1]}\t"),
)
env_value = st.one_of(any_text, number_text, address_text, long_text)

# What a keyword (or a TOML value) can be: typed, not only text.
typed_value = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.floats(),
        st.integers(),
        st.integers(min_value=10**50, max_value=10**60),
        st.integers(min_value=0, max_value=9).map(lambda n: 10 ** (4400 + n)),  # too long for repr()
        env_value,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


# --- the contract ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("settings") / "empty.toml"
    path.write_text("", encoding="utf-8")
    return path


def bounds(name: str) -> tuple[float, float, float, float]:
    """(ge, gt, le, lt) of a number setting; the missing ones are infinite."""
    ge, gt, le, lt = -math.inf, -math.inf, math.inf, math.inf
    for item in Settings.model_fields[name].metadata:
        if isinstance(item, Ge):
            ge = float(item.ge)  # type: ignore[arg-type]
        elif isinstance(item, Gt):
            gt = float(item.gt)  # type: ignore[arg-type]
        elif isinstance(item, Le):
            le = float(item.le)  # type: ignore[arg-type]
        elif isinstance(item, Lt):
            lt = float(item.lt)  # type: ignore[arg-type]
    return ge, gt, le, lt


def check_loaded(key: str, value: object, load: Any) -> None:
    try:
        loaded = load()
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{key} (ACTIVATION_{key.upper()}): "), message
        assert message.isprintable() and len(message) <= LONGEST_MESSAGE, message
        if key == "auth_password" and isinstance(value, str) and len(value) >= 4:
            assert value not in message
        return
    for name, field in Settings.model_fields.items():
        number = getattr(loaded, name)
        if isinstance(number, bool) or not isinstance(number, int | float):
            continue
        ge, gt, le, lt = bounds(name)
        assert math.isfinite(number) and ge <= number <= le and gt < number < lt, (name, number)
        assert math.isfinite(le) or math.isfinite(lt), f"{name} has no upper bound"
        assert field.annotation is not bool
    if loaded.dns_server is not None:
        assert normalise_dns_server(loaded.dns_server) == loaded.dns_server
    for name in ("data_dir", "inventory_path", "ca_bundle", "secrets_file", "spool_dir"):
        assert "\x00" not in str(getattr(loaded, name))


@EXAMPLES
@given(key=st.sampled_from(KEYS), value=env_value)
def test_any_environment_text_loads_bounded_or_is_one_line_naming_the_key(empty: Path, key: str, value: str) -> None:
    check_loaded(key, value, lambda: load_settings(config_file=empty, environ={f"ACTIVATION_{key.upper()}": value}))


@EXAMPLES
@given(key=st.sampled_from(KEYS), value=typed_value)
def test_any_keyword_value_loads_bounded_or_is_one_line_naming_the_key(empty: Path, key: str, value: object) -> None:
    check_loaded(key, value, lambda: load_settings(config_file=empty, environ={}, **{key: value}))


@EXAMPLES
@given(value=address_text)
def test_a_dns_server_is_refused_or_stored_as_a_normalised_address(empty: Path, value: str) -> None:
    check_loaded(
        "dns_server", value, lambda: load_settings(config_file=empty, environ={"ACTIVATION_DNS_SERVER": value})
    )


@EXAMPLES
@given(
    key=st.sampled_from(sorted(k for k in KEYS if Settings.model_fields[k].annotation in (int, float))),
    value=st.one_of(st.floats(), st.integers(min_value=-(2**70), max_value=2**70)),
)
def test_a_number_setting_takes_exactly_the_finite_values_within_its_bounds(
    empty: Path, key: str, value: float
) -> None:
    ge, gt, le, lt = bounds(key)
    within = math.isfinite(value) and ge <= value <= le and gt < value < lt
    if Settings.model_fields[key].annotation is int and isinstance(value, float):
        within = within and value.is_integer()
    try:
        loaded = getattr(load_settings(config_file=empty, environ={}, **{key: value}), key)
    except ConfigError as exc:
        assert not within, f"{key}={value!r} refused: {exc}"
        assert str(exc).startswith(f"{key} (ACTIVATION_{key.upper()}): ")
    else:
        assert within and loaded == value
