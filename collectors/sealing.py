"""Message sealing over HTTP (MS-WSMV 2.2.9.1) and TLS channel bindings (RFC 5929).

Over HTTP, after an NTLM, Kerberos or Negotiate sign-in, every SOAP message travels inside a
``multipart/encrypted`` body wrapped with the sign-in's security context; ``seal`` builds one and
``unseal`` checks and opens the host's. Over HTTPS the sign-in is bound to the host's certificate
(``certificate_hash``).
"""

from __future__ import annotations

import hashlib
import struct
from typing import Final

from collectors.errors import ProtocolError
from collectors.signin import SecurityContext

BOUNDARY: Final = b"--Encrypted Boundary"
OCTET_STREAM: Final = b"\tContent-Type: application/octet-stream\r\n"


def seal(body: bytes, context: SecurityContext, protocol: str) -> tuple[bytes, str]:
    """``body`` sealed with ``context``, and the Content-Type that announces it."""
    header, sealed = context.wrap(body)
    payload = (
        BOUNDARY + b"\r\n\tContent-Type: " + protocol.encode() + b"\r\n"
        b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(body)).encode() + b"\r\n"
        + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
        + struct.pack("<i", len(header)) + header + sealed + BOUNDARY + b"--\r\n"
    )  # fmt: skip
    return payload, f'multipart/encrypted;protocol="{protocol}";boundary="Encrypted Boundary"'


def unseal(body: bytes, context: SecurityContext) -> bytes:
    """The plain text of a ``multipart/encrypted`` body (MS-WSMV 2.2.9.1)."""
    parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
    if len(parts) < 2:
        raise ProtocolError("encrypted reply without its two MIME parts")
    message = b""
    for index in range(0, len(parts) - 1, 2):
        header, payload = parts[index], parts[index + 1]
        length = _declared_length(header)
        payload = payload.removesuffix(BOUNDARY + b"--\r\n").removeprefix(OCTET_STREAM)
        if len(payload) < 4:
            raise ProtocolError("encrypted reply too short")
        size = struct.unpack("<i", payload[:4])[0]
        if not 0 <= size <= len(payload) - 4:
            raise ProtocolError("encrypted reply with a bad signature length")
        plain = context.unwrap(payload[4 : 4 + size], payload[4 + size :])
        if len(plain) != length:
            raise ProtocolError("encrypted reply length does not match its header (tampered or truncated)")
        message += plain
    return message


def _declared_length(header: bytes) -> int:
    _, found, rest = header.partition(b"Length=")
    digits = rest.split(b"\r\n", 1)[0].strip()
    if not found or not digits.isdigit():
        raise ProtocolError("encrypted reply without its original length")
    return int(digits)


def certificate_hash(der: bytes | None) -> bytes | None:
    """RFC 5929 section 4.1: the certificate's hash with its signature's algorithm, SHA-256 at least."""
    if not der:
        return None
    from cryptography import x509  # pyspnego's dependency; loaded only for HTTPS hosts

    try:
        algorithm = x509.load_der_x509_certificate(der).signature_hash_algorithm
    except ValueError as exc:
        raise ProtocolError(f"the host's TLS certificate cannot be read: {exc}") from exc
    name = algorithm.name if algorithm is not None and algorithm.name in ("sha384", "sha512") else "sha256"
    return hashlib.new(name, der).digest()
