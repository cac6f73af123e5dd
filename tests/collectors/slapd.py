"""A private OpenLDAP server (Debian's slapd) on 127.0.0.1 for the LDAP inventory tests.

``running_slapd`` writes a slapd.conf with the core, cosine and inetorgperson schemas plus the few
Active Directory attributes the inventory reads, loads the entries offline with slapadd, starts
slapd on a free loopback port and stops it afterwards. Every wait is bounded.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
BASE = "dc=corp,dc=test"
READER_DN = f"cn=reader,{BASE}"

# The Active Directory attributes and class the inventory uses, with their AD OIDs.
AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.619 NAME 'dNSHostName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.363 NAME 'operatingSystem'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.3.30 NAME 'computer' SUP top STRUCTURAL
  MUST cn MAY ( dNSHostName $ operatingSystem $ userAccountControl ) )
"""


@dataclass(frozen=True, slots=True)
class Computer:
    """One computer account as AD stores it."""

    name: str
    dns_host_name: str | None
    operating_system: str
    user_account_control: int


@dataclass(frozen=True, slots=True)
class LdapServer:
    url: str
    base: str
    bind_dn: str
    password: str


def require_slapd() -> None:
    """Skip when slapd is not installed; on CI a missing slapd is a failure, not a skip."""
    if SLAPD.exists() and SLAPADD.exists() and (SCHEMA_DIR / "core.schema").exists():
        return
    reason = f"OpenLDAP slapd is not installed ({SLAPD}); apt-get install slapd ldap-utils"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(workdir: Path) -> str:
    schemas = [SCHEMA_DIR / f"{name}.schema" for name in ("core", "cosine", "inetorgperson")]
    includes = "".join(f"include {path}\n" for path in [*schemas, workdir / "ad.schema"])
    # A hard limit below the number of matches: only a paged search sees every computer.
    return (
        f"{includes}"
        f"pidfile {workdir / 'slapd.pid'}\n"
        f"modulepath {MODULE_DIR}\n"
        "moduleload back_mdb\n"
        "sizelimit size.soft=100 size.hard=100 size.prtotal=unlimited\n"
        "database mdb\n"
        "maxsize 104857600\n"
        f'suffix "{BASE}"\n'
        f'rootdn "cn=admin,{BASE}"\n'
        f"directory {workdir / 'db'}\n"
        "access to attrs=userPassword by anonymous auth by * none\n"
        "access to * by * read\n"
    )


def _ldif(computers: Iterable[Computer], password: str) -> str:
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: corp\ndc: corp\n",
        f"dn: {READER_DN}\nobjectClass: person\ncn: reader\nsn: reader\nuserPassword: {password}\n",
        f"dn: ou=Computers,{BASE}\nobjectClass: organizationalUnit\nou: Computers\n",
    ]
    for computer in computers:
        lines = [f"dn: cn={computer.name},ou=Computers,{BASE}", "objectClass: computer", f"cn: {computer.name}"]
        if computer.dns_host_name:
            lines.append(f"dNSHostName: {computer.dns_host_name}")
        lines.append(f"operatingSystem: {computer.operating_system}")
        lines.append(f"userAccountControl: {computer.user_account_control}")
        entries.append("\n".join(lines) + "\n")
    return "\n".join(entries)


@contextmanager
def running_slapd(workdir: Path, computers: Iterable[Computer], password: str | None = None) -> Iterator[LdapServer]:
    """slapd on 127.0.0.1 serving ``computers`` under ``ou=Computers,dc=corp,dc=test``."""
    require_slapd()
    password = password or secrets.token_urlsafe(12)
    (workdir / "db").mkdir(parents=True, exist_ok=True)
    (workdir / "ad.schema").write_text(AD_SCHEMA, encoding="utf-8")
    conf = workdir / "slapd.conf"
    conf.write_text(_config(workdir), encoding="utf-8")
    (workdir / "data.ldif").write_text(_ldif(computers, password), encoding="utf-8")
    subprocess.run(
        [str(SLAPADD), "-q", "-f", str(conf), "-l", str(workdir / "data.ldif")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    log_path = workdir / "slapd.log"
    with log_path.open("wb") as log_file:
        # -d 0 keeps slapd in the foreground as our child, so it cannot outlive the test.
        process = subprocess.Popen(
            [str(SLAPD), "-f", str(conf), "-h", f"{url}/", "-d", "0"], stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        _wait_listening(process, port, log_path)
        yield LdapServer(url, BASE, READER_DN, password)
    finally:
        _stop(process)
        shutil.rmtree(workdir / "db", ignore_errors=True)


def _wait_listening(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    until = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < until:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited with {process.returncode}: {log_path.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"slapd did not listen on 127.0.0.1:{port} within {START_TIMEOUT_S:g}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
