from __future__ import annotations

import http.client
import importlib
import inspect
import socket
import ssl
import xml.etree.ElementTree as ET

import pytest
import requests.exceptions as rq
import spnego.exceptions as sp
import urllib3.exceptions as u3
import winrm.exceptions as wr

from collectors.errors import (
    EXPLANATION,
    MAPPING,
    AuthError,
    PollError,
    classify_exception,
    map_transport_errors,
    mapped_class,
)
from models.enums import FailureClass


def optional_module(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# Warnings are not raised on our path; every other exception type of these modules is (gssapi and
# krb5 only where the Kerberos extra is installed).
MODULES = (rq, u3, wr, sp, ssl, socket, http.client, *filter(None, map(optional_module, ("gssapi.raw.misc", "krb5"))))


def raisable_types():
    for module in MODULES:
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and not issubclass(obj, Warning)
                and not name.startswith("_")
            ):
                yield pytest.param(obj, id=f"{module.__name__}.{name}")


# pyspnego aliases GSSError and WinError to Exception when gssapi / Windows are absent (as here).
@pytest.mark.parametrize("exc_type", [p for p in raisable_types() if p.values[0] is not Exception])
def test_every_exception_type_on_the_path_maps_to_a_class(exc_type):
    # A mapping entry more specific than the catch-all Exception/BaseException must exist.
    found = next((base for base in exc_type.__mro__ if base in MAPPING), None)
    assert found is not None, f"{exc_type} has no failure class"
    assert mapped_class(exc_type) in set(FailureClass)


def test_every_failure_class_has_an_explanation_and_a_mapping():
    assert set(EXPLANATION) == set(FailureClass)
    assert set(MAPPING.values()) == set(FailureClass)


def wrapped(outer: type[BaseException], inner: BaseException) -> BaseException:
    err = u3.MaxRetryError(None, "http://h:5985/wsman", reason=inner)  # type: ignore[arg-type]
    return outer(err)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            wrapped(
                rq.ConnectionError, u3.NameResolutionError("h", None, socket.gaierror(-2, "Name or service not known"))
            ),
            FailureClass.DNS,
        ),  # type: ignore[arg-type]
        (wrapped(rq.ConnectionError, u3.NewConnectionError(None, "refused")), FailureClass.REFUSED),  # type: ignore[arg-type]
        (
            wrapped(rq.ConnectionError, u3.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))),
            FailureClass.REFUSED,
        ),
        (
            wrapped(rq.SSLError, u3.SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed"))),
            FailureClass.TLS,
        ),
        (rq.ConnectTimeout("timed out"), FailureClass.TIMEOUT),
        (rq.ReadTimeout("read timed out"), FailureClass.TIMEOUT),
        (wr.InvalidCredentialsError("rejected"), FailureClass.AUTH),
        (wr.WinRMTransportError("http", 500, "oops"), FailureClass.PROTOCOL),
        (wr.WSManFaultError(500, "m", "r", "Access is denied.", wsman_fault_code=5), FailureClass.AUTH),
        (wr.WSManFaultError(500, "m", "r", "bad filter", wsman_fault_code=2150858778), FailureClass.PROTOCOL),
        (ET.ParseError("no element found"), FailureClass.PROTOCOL),
        (PermissionError("Access denied: Server did not respond with NTLM challenge token"), FailureClass.AUTH),
        (rq.ChunkedEncodingError(u3.ProtocolError("Response ended prematurely")), FailureClass.PROTOCOL),
    ],
)
def test_exception_chains_map_to_the_most_telling_class(exc, expected):
    assert classify_exception(exc) is expected


def test_boundary_raises_poll_error_from_the_cause():
    with pytest.raises(AuthError) as info, map_transport_errors():
        raise wr.InvalidCredentialsError("the specified credentials were rejected by the server")
    assert isinstance(info.value.__cause__, wr.InvalidCredentialsError)
    assert "\n" not in info.value.reason


def test_boundary_lets_bugs_through():
    with pytest.raises(TypeError), map_transport_errors():
        raise TypeError("a bug, not a host fault")


def test_poll_error_reason_is_one_line():
    assert PollError("a\nb   c").reason == "a b c"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (5, FailureClass.AUTH),
        (0x80070005, FailureClass.AUTH),
        (2150858778, FailureClass.PROTOCOL),
        (None, FailureClass.PROTOCOL),
    ],
)
def test_access_denied_in_either_form_is_an_auth_failure(code, expected):
    # WinRM reports a missing right as WSManFault Code 5, or as the HRESULT 0x80070005 with w:InternalError.
    fault = wr.WSManFaultError(500, "fault", "<s:Envelope/>", "Access is denied.", "s:Sender", None, code, None)
    assert classify_exception(fault) is expected
