"""Named WinRM credentials: ``credential: corp`` in the inventory means the account stored as
``ACTIVATION_CRED_CORP_USERNAME`` / ``ACTIVATION_CRED_CORP_PASSWORD``, in the environment or in a
git-ignored secrets file (``KEY=value`` lines, readable by its owner only).

This module and ``config.settings`` are the only readers of the environment. A password is held as
a ``SecretStr``; nothing here prints, logs or stores it, and ``redact`` scrubs it from any text that
might leave the process (failure reasons, log lines).
"""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

ENV_PREFIX = "ACTIVATION_CRED_"
MASK = "[secure]"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class CredentialError(Exception):
    """A credential name is invalid or the secrets file cannot be used; one line, never the secret."""


@dataclass(frozen=True, slots=True)
class Credential:
    """A named account; ``repr`` and ``str`` never show the password."""

    name: str
    username: str
    password: SecretStr

    def __repr__(self) -> str:
        return f"Credential(name={self.name!r}, username={self.username!r}, password={MASK})"

    __str__ = __repr__


def env_names(name: str) -> tuple[str, str]:
    """The environment variable names holding credential ``name``'s username and password."""
    if not _NAME_RE.match(name):
        raise CredentialError(f"credential name {name!r}: use letters, digits, '-' and '_'")
    key = name.upper().replace("-", "_")
    return f"{ENV_PREFIX}{key}_USERNAME", f"{ENV_PREFIX}{key}_PASSWORD"


def load_credentials(
    names: Iterable[str],
    *,
    environ: Mapping[str, str] | None = None,
    secrets_file: Path | None = None,
) -> dict[str, Credential]:
    """The credentials among ``names`` that are configured; the environment overrides the file.

    A name that is not configured is simply absent: hosts using it fail with class ``auth``.
    Raises ``CredentialError`` when the secrets file is readable by group or others.
    """
    values = dict(read_secrets_file(secrets_file)) if secrets_file else {}
    values.update(os.environ if environ is None else environ)
    found: dict[str, Credential] = {}
    for name in sorted(set(names)):
        user_key, password_key = env_names(name)
        if values.get(user_key) and password_key in values:
            found[name] = Credential(name, values[user_key], SecretStr(values[password_key]))
    return found


def missing_reason(name: str) -> str:
    user_key, password_key = env_names(name)
    return f"credential {name!r} is not configured (set {user_key} and {password_key})"


def read_secrets_file(path: Path) -> dict[str, str]:
    """``KEY=value`` pairs of a secrets file; a missing file is empty, a shared one is refused."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialError(f"secrets file {path} is readable by others; run: chmod 600 {path}")
    return dict(_pairs(path.read_text(encoding="utf-8").splitlines()))


def _pairs(lines: Iterable[str]) -> Iterable[tuple[str, str]]:
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#") or "=" not in text:
            continue
        key, _, value = text.removeprefix("export ").partition("=")
        yield key.strip(), _unquote(value.strip())


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def redact(text: str, credentials: Iterable[Credential]) -> str:
    """``text`` with every configured password replaced by ``[secure]``."""
    for credential in credentials:
        secret = credential.password.get_secret_value()
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
