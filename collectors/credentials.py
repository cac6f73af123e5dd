"""Named WinRM credentials: ``credential: corp`` in the inventory means the account stored as
``ACTIVATION_CRED_CORP_USERNAME`` with ``ACTIVATION_CRED_CORP_PASSWORD``, or for Kerberos a keytab
(``ACTIVATION_CRED_CORP_KEYTAB``) or an existing ticket cache (``ACTIVATION_CRED_CORP_CCACHE``), in the
environment or in a git-ignored secrets file (``KEY=value`` lines, readable by its owner only).

This module and ``config.settings`` are the only readers of the environment. A password is held as
a ``SecretStr``; nothing here prints, logs or stores it, and ``redact`` scrubs it from any text that
might leave the process (failure reasons, log lines).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from config import secrets as secrets_file

ENV_PREFIX = "ACTIVATION_CRED_"
MASK = "[secure]"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
NAME_RULE = "use letters, digits, '-' and '_'"


class CredentialError(Exception):
    """A credential name is invalid or the secrets file cannot be used; one line, never the secret."""


@dataclass(frozen=True, slots=True)
class Credential:
    """A named account; ``repr`` and ``str`` never show the password.

    ``password`` serves every sign-in method; ``keytab`` (a file path) and ``ccache`` (a ccache name
    such as ``FILE:/var/lib/am/krb5cc``) serve Kerberos only.
    """

    name: str
    username: str
    password: SecretStr | None
    keytab: str | None = None
    ccache: str | None = None

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in (("keytab", self.keytab), ("ccache", self.ccache)) if v)
        return f"Credential(name={self.name!r}, username={self.username!r}, password={MASK}{extra})"

    def secret(self) -> str:
        """The password, or an empty string for a keytab or ccache credential."""
        return self.password.get_secret_value() if self.password is not None else ""

    __str__ = __repr__


def env_names(name: str) -> tuple[str, str]:
    """The environment variable names holding credential ``name``'s username and password."""
    key = _key(name)
    return f"{ENV_PREFIX}{key}_USERNAME", f"{ENV_PREFIX}{key}_PASSWORD"


def kerberos_env_names(name: str) -> tuple[str, str]:
    """The environment variable names of credential ``name``'s keytab path and ccache name."""
    key = _key(name)
    return f"{ENV_PREFIX}{key}_KEYTAB", f"{ENV_PREFIX}{key}_CCACHE"


def valid_name(name: str) -> bool:
    """Whether ``name`` can name a credential: letters, digits, '-' and '_', starting with a letter or digit."""
    return _NAME_RE.fullmatch(name) is not None


def _key(name: str) -> str:
    if not valid_name(name):
        raise CredentialError(f"credential name {name!r}: {NAME_RULE}")
    return name.upper().replace("-", "_")


def load_credentials(
    names: Iterable[str],
    *,
    environ: Mapping[str, str] | None = None,
    secrets_file: Path | None = None,
) -> dict[str, Credential]:
    """The credentials among ``names`` that are configured; the environment overrides the file.

    A credential is configured by a username with a password, or by a keytab (with the username as
    its principal, or the keytab's first one), or by a ccache alone. A name that is not configured is
    simply absent: hosts using it fail with class ``auth``. Raises ``CredentialError`` when the
    secrets file is readable by group or others.
    """
    values = dict(read_secrets_file(secrets_file)) if secrets_file else {}
    values.update(os.environ if environ is None else environ)
    found: dict[str, Credential] = {}
    for name in sorted(set(names)):
        credential = _credential(name, values)
        if credential is not None:
            found[name] = credential
    return found


def _credential(name: str, values: Mapping[str, str]) -> Credential | None:
    user_key, password_key = env_names(name)
    keytab_key, ccache_key = kerberos_env_names(name)
    username = values.get(user_key, "")
    password = SecretStr(values[password_key]) if username and password_key in values else None
    keytab, ccache = values.get(keytab_key) or None, values.get(ccache_key) or None
    if password is None and keytab is None and ccache is None:
        return None
    return Credential(name, username, password, keytab=keytab, ccache=ccache)


def missing_reason(name: str) -> str:
    user_key, password_key = env_names(name)
    keytab_key, _ = kerberos_env_names(name)
    return f"credential {name!r} is not configured (set {user_key} and {password_key}, or {keytab_key})"


def read_secrets_file(path: Path) -> dict[str, str]:
    """``KEY=value`` pairs of a secrets file (``config.secrets``); a shared one raises ``CredentialError``."""
    try:
        return secrets_file.read_secrets_file(path)
    except secrets_file.SecretsFileError as exc:
        raise CredentialError(str(exc)) from None


def redact(text: str, credentials: Iterable[Credential]) -> str:
    """``text`` with every configured password replaced by ``[secure]``."""
    for credential in credentials:
        secret = credential.secret()
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Scrubs configured passwords from every log record, whatever its origin, tracebacks included."""

    def __init__(self, credentials: Iterable[Credential]) -> None:
        super().__init__()
        self.credentials = list(credentials)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._scrub(record)
        except Exception:  # a malformed record must not make the logging call itself raise
            record.msg, record.args, record.exc_info, record.exc_text = "(unprintable log record)", None, None, None
        return True

    def _scrub(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        clean = redact(message, self.credentials)
        if clean != message:
            record.msg, record.args = clean, None
        # A traceback carries exception messages (and their causes) that getMessage() never sees:
        # format it here, scrub it, and leave the formatter only the scrubbed text.
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.credentials)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.credentials)


_FORMATTER = logging.Formatter()


def log_to_stderr(credentials: Iterable[Credential]) -> None:
    """Send this process's log records to stderr through the redacting filter (collector and workers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(credentials))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("collectors").setLevel(logging.INFO)
