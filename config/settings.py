"""The one settings object of Activation Monitor, and the only reader of its environment variables.

Values come, strongest first, from keyword arguments, ``ACTIVATION_*`` environment variables, then a TOML
file (``ACTIVATION_CONFIG`` or ``config/activation-monitor.toml``), then the defaults below. A bad value stops
start-up with a ``ConfigError`` whose message is one line naming the key. Named WinRM credentials are not
settings; ``collectors.credentials`` reads those.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from pydantic_settings.sources.types import Traversable

ENV_PREFIX = "ACTIVATION_"
CONFIG_ENV = "ACTIVATION_CONFIG"
# Defaults are anchored to the project folder, so `streamlit run /opt/am/dashboard.py` from anywhere
# finds the same configuration and database.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "activation-monitor.toml"
SUPPORTED_DB_SCHEMES = ("sqlite", "postgresql")
DAY_S = 24 * 3600
DNS_PORT = 53
SHOWN_CHARS = 80  # a refused value is echoed at most this long


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line naming the key."""


class Settings(BaseSettings):
    """Every setting, with its type, default and meaning (the README's configuration table mirrors it)."""

    # No setting takes infinity or NaN: every number below is finite and has an upper bound.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True, allow_inf_nan=False)

    db_url: str = Field("", repr=False, description="Database URL; empty means a SQLite file in data_dir.")
    data_dir: Path = Field(PROJECT_ROOT / "data", description="Folder for the embedded SQLite database and the spool.")
    inventory_path: Path | None = Field(None, description="Inventory file (CSV or YAML) polled by default.")
    concurrency: int = Field(64, gt=0, le=4096, description="Hosts polled at the same time.")
    timeout_s: float = Field(30.0, gt=0, le=DAY_S, description="Wall-clock deadline for one host, all round trips.")
    connect_timeout_s: float = Field(5.0, gt=0, le=DAY_S, description="TCP connect timeout for one host.")
    run_timeout_s: float = Field(3600.0, gt=0, le=7 * DAY_S, description="Deadline for a whole poll run.")
    max_reply_bytes: int = Field(
        4 * 1024 * 1024, gt=1024, le=1024**3, description="Largest reply accepted from a host."
    )
    dns_server: str | None = Field(None, description="address[:port] of the DNS server for SRV checks.")
    ca_bundle: Path | None = Field(None, description="CA certificates that sign the hosts' HTTPS certificates.")
    insecure_skip_tls_verify: bool = Field(False, description="Skip HTTPS certificate validation (unsafe).")
    allow_ntlm_fallback: bool = Field(
        True, description="`negotiate` hosts use NTLM when no Kerberos ticket can be had for them."
    )
    grace_warning_days: int = Field(
        14, ge=0, le=180, description="Warn when a grace period ends within this many days."
    )
    stale_after_hours: float = Field(
        2.0, gt=0, le=24 * 366, description="A host with no successful poll for this long is stale."
    )
    poll_interval_s: int = Field(3600, gt=0, le=31 * DAY_S, description="Default interval for `poll --watch`.")
    refresh_s: int = Field(
        180, ge=10, le=DAY_S, description="Dashboard auto-refresh and query cache lifetime, seconds."
    )
    language: Literal["en", "zh-TW"] = Field("en", description="Default dashboard language.")
    secrets_file: Path = Field(
        PROJECT_ROOT / ".secrets" / "credentials.env", description="Git-ignored credentials file."
    )
    spool_dir: Path | None = Field(None, description="Spool for results while the database is down.")
    auth_password: SecretStr | None = Field(
        None, min_length=8, description="Dashboard sign-in password (8 characters or more); unset means none."
    )
    auth_session_hours: float = Field(
        12.0, gt=0, le=24 * 366, description="How long a dashboard sign-in lasts in a browser, hours."
    )
    auth_lockout_s: float = Field(
        300.0, gt=0, le=3600, description="First lockout after 5 wrong dashboard passwords, seconds (then doubling)."
    )
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For the dashboard believes."
    )
    collector_name: str | None = Field(None, description="Name recorded on poll runs; defaults to the host name.")

    # Alerts (models.alerts, collectors.alerting). Notification URLs hold tokens: keep them in the secrets file.
    notify_urls: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (), repr=False, description="apprise URLs alerts are sent to, separated by spaces or new lines."
    )
    kms_client_threshold: int = Field(
        25,
        ge=1,
        le=1000,
        description="Alert when a KMS host for Windows clients counts fewer (Windows needs 25; higher warns earlier).",
    )
    kms_server_threshold: int = Field(
        5,
        ge=1,
        le=1000,
        description="Alert when a KMS host for Windows Server counts fewer (Windows needs 5; higher warns earlier).",
    )
    alert_storm_hosts: int = Field(
        20, ge=2, le=1_000_000, description="Hosts newly failing in one evaluation that make one summary message."
    )
    alert_repeat_hours: float = Field(
        24.0, gt=0, le=24 * 366, description="A firing alert not acknowledged is announced again after this long."
    )
    alert_spike_factor: float = Field(
        3.0, gt=1, le=1000, description="An error code spikes at this many times its 7-day daily average."
    )
    alert_spike_min_hosts: int = Field(
        10, ge=1, le=1_000_000, description="Fewest hosts with one error code that can count as a spike."
    )
    alert_quiet_factor: float = Field(
        2.0, ge=1, le=100, description="A collector is quiet after this many of its intervals with no complete run."
    )
    notify_retries: int = Field(3, ge=1, le=10, description="Tries per notification target before it is logged failed.")
    # Job queue (collectors.queue): batches of hosts for `collectors worker` on PostgreSQL.
    queue_batch_size: int = Field(200, ge=1, le=5000, description="Hosts per queued batch job.")
    queue_stall_s: float = Field(
        300.0, ge=10, le=DAY_S, description="A batch whose worker sent no heartbeat this long is retried elsewhere."
    )

    @field_validator("db_url")
    @classmethod
    def _check_db_url(cls, value: str) -> str:
        if value:
            _validate_db_url(value)
        return value

    @field_validator("dns_server")
    @classmethod
    def _check_dns_server(cls, value: str | None) -> str | None:
        return normalise_dns_server(value) if value and value.strip() else None

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _check_trusted_proxies(cls, value: object) -> object:
        entries = value.replace(",", " ").split() if isinstance(value, str) else value
        if not isinstance(entries, list | tuple):
            raise ValueError("expected addresses or CIDR networks, e.g. 10.0.0.5, 10.1.0.0/16")
        return tuple(str(ipaddress.ip_network(str(entry).strip(), strict=False)) for entry in entries)

    @field_validator("notify_urls", mode="before")
    @classmethod
    def _split_notify_urls(cls, value: object) -> object:
        entries = value.split() if isinstance(value, str) else value
        if not isinstance(entries, list | tuple):
            raise ValueError("expected apprise URLs separated by spaces, e.g. json://host/path mailto://...")
        for entry in entries:
            text = entry.get_secret_value() if isinstance(entry, SecretStr) else str(entry)
            if "://" not in text:
                raise ValueError("every notification target is a URL with a scheme, e.g. json://host/path")
        return tuple(entries)

    @field_validator("data_dir", "inventory_path", "ca_bundle", "secrets_file", "spool_dir", mode="before")
    @classmethod
    def _check_path(cls, value: object) -> object:
        if isinstance(value, str | Path) and "\x00" in str(value):
            raise ValueError("a path cannot contain a NUL character")
        return value

    @property
    def safe_database_url(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        return mask_url(self.database_url)

    @property
    def database_url(self) -> str:
        """The effective database URL: ``db_url`` or the embedded SQLite file under ``data_dir``."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'activation-monitor.db').as_posix()}"

    @property
    def spool_path(self) -> Path:
        return self.spool_dir or self.data_dir / "spool"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Strongest first; pydantic-settings adds the defaults last. The environment and the file come from
        # the load_settings() call in progress, or from os.environ when Settings() is built directly.
        origin = _ORIGIN.get() or _Origin.of(None, None)
        return (
            init_settings,
            _EnvironmentSource(settings_cls, origin.environ),
            _ConfigFileSource(settings_cls, origin.config_file, required=origin.config_required),
        )


def _validate_db_url(value: str) -> None:
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        raise ValueError("not a database URL (e.g. sqlite:///data/am.db or postgresql+psycopg://...)") from None
    if url.get_backend_name() not in SUPPORTED_DB_SCHEMES:
        raise ValueError(f"unsupported database {url.get_backend_name()!r}; use sqlite or postgresql")


def mask_url(url: str) -> str:
    """A database URL fit for a message: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


def parse_host_port(value: str, *, default_port: int) -> tuple[str, int]:
    """Split ``host:port``, ``[v6]:port`` or a bare host or IPv6 address; raises ``ValueError``."""
    bracketed = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?", value)
    if bracketed:
        host, port_text = bracketed.group(1), bracketed.group(2) or str(default_port)
    elif value.count(":") > 1:
        host, port_text = value, str(default_port)
    else:
        host, _, port_text = value.partition(":")
        port_text = port_text or str(default_port)
    if not host or not re.fullmatch(r"[0-9]{1,5}", port_text) or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    return host, int(port_text)


def normalise_dns_server(value: str) -> str:
    """A DNS server as ``address``, ``address:port``, ``[v6 address]`` or ``[v6 address]:port``; the port only
    when it is not 53, an IPv6 address always in brackets. Raises ``ValueError``.

    The resolver is asked by address, so a host name is refused: it could only be looked up through DNS.
    """
    try:
        host, port = parse_host_port(value.strip(), default_port=DNS_PORT)
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError("expected an IP address with an optional port: address, address:port or [v6]:port") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise ValueError("an IPv6 address with a zone (%...) is not supported")
    host = f"[{address}]" if address.version == 6 else str(address)
    return host if port == DNS_PORT else f"{host}:{port}"


def load_settings(
    *, config_file: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Read the settings once, at an entry point; raises ``ConfigError`` with one line."""
    origin = _Origin.of(config_file, environ)
    token = _ORIGIN.set(origin)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, origin.config_file)) from None
    finally:
        _ORIGIN.reset(token)


# An empty environment variable means "unset" for these; a blank sign-in password is an error instead.
BLANK_MEANS_UNSET = frozenset({"inventory_path", "dns_server", "ca_bundle", "spool_dir", "collector_name"})


@dataclass(frozen=True)
class _Origin:
    """Where one reading of the settings comes from: an environment and a TOML file."""

    environ: Mapping[str, str]
    config_file: Path
    config_required: bool  # named explicitly, so a missing file is an error

    @classmethod
    def of(cls, config_file: Path | None, environ: Mapping[str, str] | None) -> _Origin:
        env = os.environ if environ is None else environ
        named = env.get(CONFIG_ENV, "")
        return cls(env, config_file or Path(named or DEFAULT_CONFIG_FILE), config_file is not None or bool(named))


_ORIGIN: ContextVar[_Origin | None] = ContextVar("settings_origin", default=None)


class _EnvironmentSource(EnvSettingsSource):
    """``ACTIVATION_<FIELD>`` variables, spelled exactly so, from the given mapping rather than ``os.environ``.

    A blank value is left out for the fields in ``BLANK_MEANS_UNSET``, so the file or the default applies.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ  # read by _load_env_vars, which the base class calls from __init__
        super().__init__(settings_cls, case_sensitive=False, env_prefix=ENV_PREFIX)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        found: dict[str, str | None] = {}
        for name in self.settings_cls.model_fields:
            raw = self._environ.get(_env_name(name))
            if raw is not None and (raw.strip() or name not in BLANK_MEANS_UNSET):
                found[_env_name(name)] = raw
        return parse_env_vars(found, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class _ConfigFileSource(TomlConfigSettingsSource):
    """The TOML file; any problem with it is a one-line ``ConfigError`` naming the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path, *, required: bool) -> None:
        if not path.exists():
            if required:
                raise ConfigError(f"{CONFIG_ENV}: config file {path} does not exist")
        elif not path.is_file():
            raise ConfigError(f"{path}: cannot read config file: not a file")
        super().__init__(settings_cls, toml_file=path)

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        try:
            data = super()._read_file(file_path)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{file_path}: cannot read config file: {exc}") from None
        if "auth_password" in data:
            raise ConfigError(
                f"auth_password: a password does not belong in {file_path}; set {_env_name('auth_password')}"
            )
        return data


def _env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _one_line(exc: ValidationError, path: Path) -> str:
    errors = exc.errors()
    first = errors[0]
    key = ".".join(str(part) for part in first["loc"]) or "settings"
    if first["type"] == "extra_forbidden":
        message = f"{key}: unknown setting (in {path} or {_env_name(key)})"
    else:
        got = first.get("input")
        shown = "" if key == "auth_password" else f", got {_shown(key, got)}"
        message = f"{key} ({_env_name(key)}): {_reason(first['msg'])}{shown}"
    more = len(errors) - 1
    return message + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _shown(key: str, value: Any) -> str:
    """The refused value as written in the message: masked for a database URL, cut when long."""
    try:
        text = repr(mask_url(value) if key == "db_url" and isinstance(value, str) else value)
    except ValueError:  # an integer too long to convert to text
        return "a number too long to show"
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 1]}…"


def _reason(msg: str) -> str:
    text = msg.removeprefix("Value error, ").rstrip(".")
    if len(text) > 2 * SHOWN_CHARS:  # a message that quotes the value
        text = f"{text[: 2 * SHOWN_CHARS - 1]}…"
    return text[:1].lower() + text[1:] if text else "invalid value"
