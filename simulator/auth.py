"""Authentication as a Windows WinRM listener does it: Basic, NTLM (via pyspnego) and MS-WSMV encryption.

Owns per-connection NTLM state (``NtlmConnection``), Basic credential checks, the
``WWW-Authenticate`` headers of a 401, and the ``multipart/encrypted`` framing pywinrm uses for
NTLM message encryption (``Encrypted Boundary``, 4-byte little-endian signature length, sealed
payload). pyspnego's NTLM acceptor reads users from the file named by ``NTLM_USER_FILE``; a
process-wide ``NtlmUserFile`` keeps that file for every running simulator.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import os
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import spnego
import spnego.exceptions

BOUNDARY: Final = b"--Encrypted Boundary"
PROTOCOL: Final = b"application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE: Final = (
    'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
)
CHALLENGE_HEADERS: Final = (("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", 'Basic realm="WSMAN"'))


class AuthError(Exception):
    """The client's credentials or token were rejected."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """The one account a simulator accepts (its ``repr`` never shows the password)."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=[secure])"

    def matches_basic(self, header_value: str) -> bool:
        try:
            decoded = base64.b64decode(header_value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return _same_user(user, self.username) and hmac.compare_digest(password.encode(), self.password.encode())

    def matches_principal(self, principal: str | None) -> bool:
        return principal is not None and _same_user(principal, self.username)


def _same_user(given: str, expected: str) -> bool:
    """``DOMAIN\\user``, ``user@domain`` and ``user`` all name the local account ``user``."""
    plain = given.rsplit("\\", 1)[-1].split("@", 1)[0]
    return plain.lower() == expected.rsplit("\\", 1)[-1].lower()


class NtlmUserFile:
    """The process-wide ``NTLM_USER_FILE`` holding every running simulator's account."""

    _lock = threading.Lock()
    _users: Final[dict[int, Credentials]] = {}
    _tokens = itertools.count(1)
    _path: Path | None = None
    _previous: str | None = None

    @classmethod
    def register(cls, creds: Credentials) -> int:
        if ":" in creds.username or ":" in creds.password or "\n" in creds.password:
            raise ValueError("NTLM accounts cannot contain ':' or newlines")
        with cls._lock:
            for other in cls._users.values():
                if _same_user(other.username, creds.username) and other.password != creds.password:
                    raise ValueError(
                        f"another simulator in this process already serves {creds.username!r} "
                        "with a different password; NTLM accounts must be unique per process"
                    )
            token = next(cls._tokens)
            cls._users[token] = creds
            cls._write()
            return token

    @classmethod
    def unregister(cls, token: int) -> None:
        with cls._lock:
            cls._users.pop(token, None)
            if cls._users:
                cls._write()
            else:
                cls._remove()

    @classmethod
    def _write(cls) -> None:
        if cls._path is None:
            handle, name = tempfile.mkstemp(prefix="simulator-ntlm-", suffix=".txt")
            os.close(handle)
            cls._path = Path(name)
            cls._previous = os.environ.get("NTLM_USER_FILE")
            os.environ["NTLM_USER_FILE"] = name
        lines = []
        for creds in cls._users.values():
            user = creds.username.rsplit("\\", 1)[-1]
            lines += [f":{user}:{creds.password}", f".:{user}:{creds.password}"]
            if "\\" in creds.username:
                lines.append(f"{creds.username.split(chr(92))[0]}:{user}:{creds.password}")
        cls._path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cls._path.chmod(0o600)

    @classmethod
    def _remove(cls) -> None:
        if cls._path is not None:
            cls._path.unlink(missing_ok=True)
            cls._path = None
            if cls._previous is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = cls._previous


class NtlmConnection:
    """NTLM acceptor state of one TCP connection (NTLM authenticates connections, not requests)."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self.context: spnego.ContextProxy | None = None
        self.authenticated = False

    def step(self, token: bytes) -> bytes | None:
        """Feed one client token; returns the challenge to send, or None once authenticated."""
        if token.startswith(b"NTLMSSP\x00\x01") or self.context is None:
            self.context = spnego.server(protocol="ntlm")
            self.authenticated = False
        try:
            out = self.context.step(token)
        except spnego.exceptions.SpnegoError as exc:
            self.context = None
            raise AuthError(str(exc)) from exc
        if not self.context.complete:
            return out
        if not self.creds.matches_principal(self.context.client_principal):
            self.context = None
            raise AuthError("unknown account")
        self.authenticated = True
        return None

    def unwrap(self, body: bytes) -> bytes:
        """Decrypt a ``multipart/encrypted`` request body."""
        if self.context is None or not self.authenticated:
            raise AuthError("no security context for an encrypted message")
        return b"".join(self._unwrap_part(header, payload) for header, payload in _encrypted_parts(body))

    def _unwrap_part(self, header: bytes, payload: bytes) -> bytes:
        assert self.context is not None
        if len(payload) < 4:
            raise AuthError("encrypted payload too short")
        sig_len = struct.unpack("<i", payload[:4])[0]
        signature, sealed = payload[4 : 4 + sig_len], payload[4 + sig_len :]
        try:
            data = self.context.unwrap(signature + sealed).data
        except spnego.exceptions.SpnegoError as exc:
            raise AuthError(f"cannot decrypt: {exc}") from exc
        if b"Length=" in header and int(header.split(b"Length=")[1].split(b"\r\n")[0]) != len(data):
            raise AuthError("encrypted length mismatch")
        return data

    def wrap(self, message: bytes) -> bytes:
        """Encrypt a reply in the MS-WSMV ``multipart/encrypted`` framing."""
        assert self.context is not None
        wrapped = self.context.wrap(message, encrypt=True).data
        signature, sealed = wrapped[:16], wrapped[16:]
        return (
            BOUNDARY + b"\r\n\tContent-Type: " + PROTOCOL + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(message)).encode() + b"\r\n"
            + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<i", len(signature)) + signature + sealed + BOUNDARY + b"--\r\n"
        )  # fmt: skip


def _encrypted_parts(body: bytes) -> list[tuple[bytes, bytes]]:
    parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
    if len(parts) < 2:
        raise AuthError("not a multipart/encrypted body")
    pairs = []
    for i in range(0, len(parts) - 1, 2):
        payload = parts[i + 1]
        if payload.endswith(BOUNDARY + b"--\r\n"):
            payload = payload[: -len(BOUNDARY + b"--\r\n")]
        prefix = b"\tContent-Type: application/octet-stream\r\n"
        pairs.append((parts[i], payload[len(prefix) :] if payload.startswith(prefix) else payload))
    return pairs


def parse_authorization(value: str) -> tuple[str, str]:
    """Split an ``Authorization`` header into (scheme lower-cased, credentials)."""
    scheme, _, rest = value.strip().partition(" ")
    return scheme.lower(), rest.strip()
