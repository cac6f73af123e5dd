"""One KDC process of the test realm (tests/krb5kdc.py) and what a client needs to reach it.

``free_port`` finds a loopback port that is free for both TCP and UDP, ``write_krb5_conf`` writes the
client krb5.conf that names only that port, ``KdcProcess`` holds one running ``krb5kdc`` (waits until it
listens, stops it) together with the environment a process needs to use it, and ``environ`` sets such
variables in the test process for a block. Every wait is bounded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DOMAINS = ("corp.example",)  # host names under these (and the names themselves) belong to the realm
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


def free_port() -> int:
    """A loopback port free for both TCP and UDP (a KDC answers on both)."""
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no loopback port free for both TCP and UDP")


def write_krb5_conf(path: Path, *, realm: str, port: int, workdir: Path, timesync: bool = True) -> Path:
    """A client krb5.conf naming only ``realm`` at 127.0.0.1:``port``; no DNS, no reverse lookups."""
    domains = "".join(f"    .{domain} = {realm}\n    {domain} = {realm}\n" for domain in DOMAINS)
    path.write_text(
        "[libdefaults]\n"
        f"    default_realm = {realm}\n"
        "    dns_lookup_kdc = false\n"
        "    dns_lookup_realm = false\n"
        "    dns_canonicalize_hostname = false\n"
        "    rdns = false\n"
        # TCP first for every message (a refused connection fails at once); UDP stays as the fallback.
        "    udp_preference_limit = 1\n"
        # Never the user's own ccache, even when a test forgets to name one.
        f"    default_ccache_name = FILE:{workdir / 'krb5cc_default'}\n"
        f"    default_keytab_name = FILE:{workdir / 'default.keytab'}\n"
        # Nor the machine's client keytab, which MIT would use to refresh an expired ccache on its own.
        f"    default_client_keytab_name = FILE:{workdir / 'client.keytab'}\n"
        f"    kdc_timesync = {1 if timesync else 0}\n"
        "    ticket_lifetime = 10h\n"
        "    renew_lifetime = 7d\n"
        "    forwardable = false\n"
        "\n[realms]\n"
        f"    {realm} = {{\n"
        f"        kdc = 127.0.0.1:{port}\n"
        "    }\n"
        "\n[domain_realm]\n"
        f"{domains}",
        encoding="utf-8",
    )
    return path


@dataclass
class KdcProcess:
    """One running ``krb5kdc`` and the client krb5.conf that reaches it."""

    name: str
    port: int
    krb5_conf: Path
    kdc_conf: Path
    log: Path
    workdir: Path
    offset_s: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def env(self, *, trace: Path | None = None) -> dict[str, str]:
        """The variables a process needs to use this KDC: ``KRB5_CONFIG``, ``KRB5RCACHEDIR`` (acceptors
        keep their replay cache in the work directory, not /var/tmp) and ``KRB5_TRACE`` when asked."""
        values = {"KRB5_CONFIG": str(self.krb5_conf), "KRB5RCACHEDIR": str(self.workdir)}
        if trace is not None:
            values["KRB5_TRACE"] = str(trace)
        return values

    @contextmanager
    def configured(self) -> Iterator[KdcProcess]:
        """This KDC's ``env()`` in the test process for the block (gssapi reads it in-process)."""
        with environ(**self.env()):
            yield self

    def wait_listening(self, out: Path) -> None:
        """Return once the KDC accepts a TCP connection; raise (after stopping it) if it exits or never does."""
        process = self.process
        assert process is not None
        until = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < until:
            if process.poll() is not None:
                text = out.read_text(errors="replace") + (
                    self.log.read_text(errors="replace") if self.log.exists() else ""
                )
                raise RuntimeError(f"krb5kdc exited with {process.returncode}: {text.strip()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"krb5kdc did not listen on 127.0.0.1:{self.port} within {START_TIMEOUT_S:g}s")

    def stop(self) -> None:
        """Terminate the KDC (kill it if it lingers); nothing to do when it is not running."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (or, for None, remove) variables of this process for the block, restoring them after."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
