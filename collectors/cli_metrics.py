"""``python -m collectors metrics``: serve the fleet's numbers to Prometheus at ``http://LISTEN/metrics``.

It reads the settings once (database, stale and grace periods, KMS thresholds), binds the address given by
``--listen`` and serves ``collectors.metrics`` until Ctrl-C or SIGTERM. An address that cannot be used is one
line on stderr and exit code 2; a database that cannot be read is not a reason to stop (the scrape reports it).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated
from wsgiref.simple_server import WSGIServer

import typer

from collectors.cli_base import EXIT_CONFIG, CliError, fail, settings_from
from collectors.credentials import log_to_stderr
from collectors.metrics import (
    DEFAULT_CACHE_S,
    DEFAULT_PORT,
    DatabaseReader,
    FleetCollector,
    ReadOptions,
    password_of,
    registry_for,
    serve,
)
from config.settings import Settings, mask_url, parse_host_port

STOP_POLL_S = 0.5  # how often the main thread looks at the stop event (a wait Windows' Ctrl-C can interrupt)
log = logging.getLogger("collectors.metrics")


def metrics(
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            help=f"Address to serve /metrics on: HOST:PORT, [IPv6]:PORT or HOST (port {DEFAULT_PORT}); "
            "0.0.0.0:PORT or [::]:PORT for every interface.",
        ),
    ] = f"127.0.0.1:{DEFAULT_PORT}",
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: settings).")] = None,
    cache_seconds: Annotated[
        float,
        typer.Option(
            "--cache-seconds", min=0, max=3600, help="Scrapes within this many seconds share one database read."
        ),
    ] = DEFAULT_CACHE_S,
) -> None:
    """Serve fleet health as Prometheus metrics (aggregates only, no per-host series) until stopped."""
    try:
        settings = settings_from(db_url=db)
        host, port = listen_address(listen)
        url = settings.database_url
        reader = DatabaseReader(url, read_options(settings))
        collector = FleetCollector(reader, cache_s=cache_seconds, secret=password_of(url))
        log_to_stderr(())
        server = _bind(collector, host, port, listen)
    except CliError as exc:
        raise fail(exc) from None
    shown = f"[{host}]" if ":" in host else host
    log.info("serving http://%s:%d/metrics from %s", shown, port, mask_url(url))
    try:
        with _stop_on_signals() as stop:
            while not stop.wait(STOP_POLL_S):
                pass
    finally:
        server.shutdown()
        server.server_close()
        reader.close()
    log.info("stopped")


def listen_address(value: str) -> tuple[str, int]:
    """``--listen`` as (host, port): ``127.0.0.1:9464``, ``[::1]:9464``, ``host.example`` ..."""
    try:
        host, port = parse_host_port(value.strip(), default_port=DEFAULT_PORT)
        if any(ch in host for ch in "[]/@ "):
            raise ValueError(value)
    except ValueError:
        raise CliError(
            f"--listen: expected HOST:PORT or [IPv6]:PORT with a port from 1 to 65535, got {value!r}", EXIT_CONFIG
        ) from None
    return host, port


def read_options(settings: Settings) -> ReadOptions:
    return ReadOptions(
        stale_after=timedelta(hours=settings.stale_after_hours),
        grace_warning_days=settings.grace_warning_days,
        client_threshold=settings.kms_client_threshold,
        server_threshold=settings.kms_server_threshold,
    )


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """Ctrl-C and SIGTERM (how systemd and containers stop a service) set the returned event; the server
    then stops taking scrapes and the command exits 0. The previous handlers come back afterwards."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        if not stop.is_set():
            log.info("stopping (%s)", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _bind(collector: FleetCollector, host: str, port: int, listen: str) -> WSGIServer:
    try:
        return serve(registry_for(collector), host, port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CliError(f"--listen {listen}: cannot serve there: {reason}", EXIT_CONFIG) from None
