"""A private MIT Kerberos realm (Debian's krb5-kdc) on 127.0.0.1 for the Kerberos tests.

``running_kdc`` writes a kdc.conf and a krb5.conf into a work directory, creates the realm's
database with ``kdb5_util``, starts ``krb5kdc -n`` (foreground, so it cannot outlive the tests) on a
free loopback port that answers over TCP and UDP, and stops it afterwards. Principals and keytabs
are made with ``kadmin.local``; ccaches with the real ``kinit``.

Two more kinds of KDC serve the failure tests, both reading the same database: ``skewed(offset)``
starts one whose clock runs ``offset`` seconds off (``krb5kdc -T``, the KDC's own test offset), so
a client or a host on the real clock meets a real ``KRB_AP_ERR_SKEW``; ``expired_ccache`` runs a
KDC two days in the past and ``kinit`` under libfaketime at that same time, which leaves a ccache
whose tickets really expired.
``unreachable_config`` names a realm whose KDC port nobody listens on. Every wait is bounded.
One KDC process, its client krb5.conf and the environment that reaches it are in tests/krb5kdc_process.py.

Principal names are realm-wide and the realm lives for the whole test session: each test module
uses names of its own (``add_user`` refuses one that exists).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from tests.krb5kdc_process import KdcProcess, free_port, write_krb5_conf

KRB5KDC = Path("/usr/sbin/krb5kdc")
KDB5_UTIL = Path("/usr/sbin/kdb5_util")
KADMIN_LOCAL = Path("/usr/sbin/kadmin.local")
KINIT = Path("/usr/bin/kinit")
FAKETIME = Path("/usr/bin/faketime")
REALM = "ACTIVATION.TEST"
PACKAGES = "apt-get install krb5-kdc krb5-admin-server krb5-user libkrb5-dev faketime"
KERBEROS_EXTRA = "pip install -r requirements-kerberos.txt"
# What Active Directory issues: AES with SHA-1 (no SHA-2 or Camellia kinds).
ENCTYPES = "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal"
COMMAND_TIMEOUT_S = 30.0
EXPIRED_OFFSET_S = -2 * 86400  # the past an expired ccache's tickets were issued in


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _skip_or_fail(reason: str) -> None:
    if _on_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def require_kdc() -> None:
    """Skip when MIT Kerberos' KDC and tools are not installed; on CI that is a failure, not a skip."""
    missing = [str(path) for path in (KRB5KDC, KDB5_UTIL, KADMIN_LOCAL, KINIT) if not path.exists()]
    if missing:
        _skip_or_fail(f"MIT Kerberos is not installed ({', '.join(missing)} missing); {PACKAGES}")


def require_faketime() -> None:
    """Skip when libfaketime's ``faketime`` is missing; on CI that is a failure, not a skip."""
    if not FAKETIME.exists():
        _skip_or_fail(f"libfaketime is not installed ({FAKETIME} missing); apt-get install faketime")


def require_kerberos_extra() -> None:
    """Skip when the Python Kerberos extra (gssapi, krb5) is not importable; on CI that is a failure."""
    try:
        import gssapi  # noqa: F401
        import krb5  # noqa: F401
    except ImportError as exc:
        _skip_or_fail(f"the Kerberos extra is not installed ({exc}); {KERBEROS_EXTRA} (needs libkrb5-dev)")


class MitKdc:
    """A realm of its own in ``workdir``: a database, a KDC on 127.0.0.1 and kadmin.local access."""

    def __init__(self, workdir: Path, realm: str = REALM) -> None:
        self.workdir = workdir
        self.realm = realm
        self.database = workdir / "principal"
        self.stash = workdir / "stash"
        self.master_password = secrets.token_urlsafe(24)
        self.primary: KdcProcess | None = None
        self._others: dict[int, KdcProcess] = {}
        self._unreachable: KdcProcess | None = None

    # --- the realm ---------------------------------------------------------------------------------

    @property
    def main(self) -> KdcProcess:
        if self.primary is None:
            raise RuntimeError("the KDC has not been started")
        return self.primary

    @property
    def port(self) -> int:
        return self.main.port

    @property
    def krb5_conf(self) -> Path:
        return self.main.krb5_conf

    def principal(self, name: str) -> str:
        """``name`` with this realm appended unless it names one already."""
        return name if "@" in name else f"{name}@{self.realm}"

    def env(self, *, trace: Path | None = None) -> dict[str, str]:
        """The variables a process needs to use this realm (see ``KdcProcess.env``)."""
        return self.main.env(trace=trace)

    def configured(self) -> AbstractContextManager[KdcProcess]:
        """This realm's ``env()`` in the test process for the block."""
        return self.main.configured()

    def start(self) -> MitKdc:
        require_kdc()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "kadm5.acl").write_text("", encoding="utf-8")
        self.primary = self._instance("kdc", offset_s=0)
        self._run(
            [str(KDB5_UTIL), "-r", self.realm, "create", "-s", "-P", self.master_password],
            env=self._admin_env(self.primary),
        )
        self._launch(self.primary)
        return self

    def stop(self) -> None:
        for instance in [*self._others.values(), *filter(None, [self.primary])]:
            instance.stop()
        self._others.clear()

    # --- principals and keytabs --------------------------------------------------------------------

    def kadmin(self, query: str) -> str:
        """Run one ``kadmin.local`` request against the realm's database; its output.

        kadmin.local exits 0 even when the request fails; what it writes to stderr tells.
        """
        result = subprocess.run(
            [str(KADMIN_LOCAL), "-r", self.realm, "-q", query],
            env=self._admin_env(self.main),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        errors = [line for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
        if result.returncode != 0 or errors:
            raise RuntimeError(f"kadmin.local {query.split()[0]} failed: {' / '.join(errors) or result.returncode}")
        return result.stdout.decode(errors="replace")

    def add_user(
        self, name: str, password: str, *, preauth: bool = True, max_life: str = "10h", renew_life: str = "7d"
    ) -> str:
        """A user principal (pre-authentication required by default, as in AD); its full name."""
        if '"' in password or "\\" in password:
            raise ValueError("kadmin.local -q cannot quote a password holding a double quote or a backslash")
        principal = self.principal(name)
        flag = "+requires_preauth" if preauth else "-requires_preauth"
        limits = f'-maxlife "{max_life}" -maxrenewlife "{renew_life}"'
        self.kadmin(f'addprinc -clearpolicy -pw "{password}" {flag} {limits} {principal}')
        return principal

    def add_service(self, spn: str) -> None:
        """A service principal such as ``HTTP/ws0001.corp.example`` with random keys."""
        self.kadmin(f"addprinc -clearpolicy -randkey {self.principal(spn)}")

    def add_services(self, spns: Iterable[str]) -> None:
        """Many service principals in one ``kadmin.local`` session (thousands take seconds, not minutes)."""
        script = "".join(f"addprinc -clearpolicy -randkey {self.principal(spn)}\n" for spn in spns)
        result = subprocess.run(
            [str(KADMIN_LOCAL), "-r", self.realm],
            env=self._admin_env(self.main),
            input=script.encode(),
            capture_output=True,
            timeout=COMMAND_TIMEOUT_S * 10,
            check=False,
        )
        errors = [line for line in result.stderr.decode(errors="replace").splitlines() if "add_principal" in line]
        if result.returncode != 0 or errors:
            raise RuntimeError(f"kadmin.local addprinc failed: {' / '.join(errors[:3]) or result.returncode}")

    def export_keytab(self, principals: Iterable[str], path: Path) -> Path:
        """Append the principals' current keys to ``path`` without changing them (``ktadd -norandkey``)."""
        names = " ".join(self.principal(name) for name in principals)
        self.kadmin(f"ktadd -k {path} -norandkey {names}")
        return path

    # --- ccaches -----------------------------------------------------------------------------------

    def kinit(
        self,
        principal: str,
        password: str | None,
        ccache_path: Path,
        *,
        lifetime: str = "1h",
        renewable: str | None = None,
        keytab: Path | None = None,
        kdc: KdcProcess | None = None,
        faketime: str | None = None,
    ) -> Path:
        """A FILE ccache at ``ccache_path`` holding a TGT got with the real ``kinit``.

        With ``keytab`` the key comes from it instead of ``password``; ``kdc`` picks another KDC of
        this realm; ``faketime`` runs kinit under libfaketime with that offset (``-172800``, ``-2d``).
        """
        target = kdc or self.main
        command = [str(KINIT), "-c", f"FILE:{ccache_path}", "-l", lifetime]
        if renewable is not None:
            command += ["-r", renewable]
        if keytab is not None:
            command += ["-k", "-t", str(keytab)]
        command.append(self.principal(principal))
        if faketime is not None:
            require_faketime()
            command = [str(FAKETIME), "--exclude-monotonic", "-f", faketime, *command]
        env = {**os.environ, **target.env(), "KRB5CCNAME": f"FILE:{ccache_path}"}
        self._run(command, env=env, stdin=None if password is None else f"{password}\n")
        return ccache_path

    def expired_ccache(self, principal: str, password: str, ccache_path: Path, *, lifetime: str = "1h") -> Path:
        """A FILE ccache whose TGT was issued two days ago and expired ``lifetime`` later."""
        require_faketime()
        past = self.skewed(EXPIRED_OFFSET_S)
        return self.kinit(
            principal, password, ccache_path, lifetime=lifetime, kdc=past, faketime=f"{EXPIRED_OFFSET_S:+d}"
        )

    # --- other KDCs of the realm -------------------------------------------------------------------

    def skewed(self, offset_s: int = -600, *, timesync: bool = True) -> KdcProcess:
        """A second KDC of this realm whose clock runs ``offset_s`` seconds off; started once, kept.

        Its krb5.conf keeps MIT's default ``kdc_timesync = 1`` (the client adopts the KDC's clock
        for its own requests); ``timesync=False`` gives one with ``kdc_timesync = 0``.
        """
        if offset_s not in self._others:
            if offset_s == 0:
                raise ValueError("a skewed KDC needs a non-zero offset")
            sign = "ahead" if offset_s > 0 else "behind"
            instance = self._instance(f"kdc-{sign}-{abs(offset_s)}s", offset_s=offset_s)
            self._launch(instance)
            self._others[offset_s] = instance
        instance = self._others[offset_s]
        if timesync:
            return instance
        path = instance.krb5_conf.with_name(f"{instance.krb5_conf.stem}-notimesync.conf")
        write_krb5_conf(path, realm=self.realm, port=instance.port, workdir=self.workdir, timesync=False)
        return replace(instance, krb5_conf=path)

    def unreachable_config(self) -> KdcProcess:
        """A krb5.conf naming this realm at a loopback port where no KDC listens (nothing is started)."""
        if self._unreachable is None:
            port = free_port()
            path = write_krb5_conf(
                self.workdir / "krb5-unreachable.conf", realm=self.realm, port=port, workdir=self.workdir
            )
            self._unreachable = KdcProcess("unreachable", port, path, self.main.kdc_conf, self.main.log, self.workdir)
        return self._unreachable

    # --- plumbing ----------------------------------------------------------------------------------

    def _instance(self, name: str, *, offset_s: int) -> KdcProcess:
        port = free_port()
        kdc_conf = self.workdir / f"{name}.conf"
        log = self.workdir / f"{name}.log"
        kdc_conf.write_text(
            "[kdcdefaults]\n"
            f"    kdc_listen = 127.0.0.1:{port}\n"
            f"    kdc_tcp_listen = 127.0.0.1:{port}\n"
            "\n[realms]\n"
            f"    {self.realm} = {{\n"
            f"        database_name = {self.database}\n"
            f"        key_stash_file = {self.stash}\n"
            f"        acl_file = {self.workdir / 'kadm5.acl'}\n"
            "        max_life = 10h\n"
            "        max_renewable_life = 7d\n"
            "        master_key_type = aes256-cts-hmac-sha1-96\n"
            f"        supported_enctypes = {ENCTYPES}\n"
            "        default_principal_flags = +preauth\n"
            "    }\n"
            "\n[logging]\n"
            f"    kdc = FILE:{log}\n"
            f"    admin_server = FILE:{self.workdir / 'kadmin.log'}\n"
            f"    default = FILE:{self.workdir / 'kadmin.log'}\n",
            encoding="utf-8",
        )
        krb5_conf = write_krb5_conf(
            self.workdir / f"krb5-{name}.conf", realm=self.realm, port=port, workdir=self.workdir
        )
        return KdcProcess(name, port, krb5_conf, kdc_conf, log, self.workdir, offset_s)

    def _admin_env(self, instance: KdcProcess) -> dict[str, str]:
        return {**os.environ, "KRB5_CONFIG": str(instance.krb5_conf), "KRB5_KDC_PROFILE": str(instance.kdc_conf)}

    def _launch(self, instance: KdcProcess) -> None:
        command = [str(KRB5KDC), "-n", "-r", self.realm, "-P", str(self.workdir / f"{instance.name}.pid")]
        if instance.offset_s:
            command += ["-T", str(instance.offset_s)]
        with (self.workdir / f"{instance.name}.out").open("wb") as out:
            instance.process = subprocess.Popen(
                command, env=self._admin_env(instance), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        instance.wait_listening(self.workdir / f"{instance.name}.out")

    def _run(self, command: list[str], *, env: dict[str, str], stdin: str | None = None) -> str:
        result = subprocess.run(
            command,
            env=env,
            input=(stdin or "").encode(),
            capture_output=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        output = (result.stdout + result.stderr).decode(errors="replace")
        if result.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} exited with {result.returncode}: {output.strip()}")
        return output


@contextmanager
def running_kdc(workdir: Path, realm: str = REALM) -> Iterator[MitKdc]:
    """A started realm in ``workdir``, stopped and its database removed afterwards."""
    kdc = MitKdc(workdir, realm)
    try:
        yield kdc.start()
    finally:
        kdc.stop()
        for path in [*workdir.glob("principal*"), workdir / "stash"]:
            path.unlink(missing_ok=True)
