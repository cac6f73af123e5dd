"""What every ``python -m collectors`` command shares: exit codes, the one-line error, reading settings."""

from __future__ import annotations

import sys
from typing import Any

import typer

from config.settings import ConfigError, Settings, load_settings

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_CONFIG = 2
EXIT_DATABASE = 3


class CliError(Exception):
    """A problem reported as one line on stderr with an exit code."""

    def __init__(self, message: str, code: int = EXIT_CONFIG) -> None:
        super().__init__(message)
        self.code = code


def fail(exc: CliError) -> typer.Exit:
    sys.stderr.write(f"error: {exc}\n")
    return typer.Exit(exc.code)


def settings_from(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise CliError(str(exc)) from None
