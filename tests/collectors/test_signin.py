"""Sign-in as Windows expects: schemes taken from the host's 401, credentials only in an offered scheme.

Hosts of one simulated fleet carry different WinRM service settings; the listener records every
request made in a scheme it did not offer, and what that request carried. A pre-emptive NTLM
NEGOTIATE (no secret in it) may meet a host that turns out not to offer Negotiate; a password, an
NTLM response or a Kerberos ticket must never go in a scheme the host did not offer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from collectors.errors import ProtocolError
from collectors.inventory import Target
from collectors.run import poll_host
from collectors.signin import Challenge, parse_challenges
from models.enums import FailureClass
from models.records import HostFailure, HostObservation
from simulator import generator
from simulator.scenario import Scenario, WinrmService
from simulator.testing import FleetHandle, running_fleet
from tests.collectors.helpers import fleet_context

SERVICES = {
    "default": WinrmService(),
    "basic-too": WinrmService(basic=True),
    "basic-only": WinrmService(negotiate=False, kerberos=False, basic=True),
    "ntlm-scheme": WinrmService(negotiate=False, kerberos=False, offer_ntlm_scheme=True),
    "lab": WinrmService(basic=True, allow_unencrypted=True),
}
SECRETS = {"password", "ntlm-response", "kerberos-token"}


def configured(scenario: Scenario, https: bool) -> Scenario:
    hosts = list(scenario.hosts)
    healthy = [i for i, h in enumerate(hosts) if h.fault == "" and h.kms is None]
    for (label, service), index in zip(SERVICES.items(), healthy, strict=False):
        hosts[index] = dataclasses.replace(
            hosts[index], winrm=service, tags=(*hosts[index].tags, f"svc-{label}"), scheme="https" if https else "http"
        )
    return dataclasses.replace(scenario, hosts=tuple(hosts))


@pytest.fixture(scope="module", params=["http", "https"])
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    https = request.param == "https"
    with running_fleet(
        scenario=configured(generator.generate(30, 4), https), workdir=tmp_path_factory.mktemp(request.param)
    ) as f:
        yield f


def target(fleet: FleetHandle, label: str, transport: str) -> Target:
    name = next(h.name for h in fleet.scenario.hosts if f"svc-{label}" in h.tags)
    endpoint = fleet.endpoint(name)
    scheme, port = endpoint.split(":", 1)[0], int(endpoint.rsplit(":", 1)[1].split("/")[0])
    tags = ("allow-basic-http",) if transport == "basic" and scheme == "http" else ()
    return Target(fleet.address(name), port, scheme, transport, tags=tags)  # type: ignore[arg-type]


def poll(fleet: FleetHandle, label: str, transport: str) -> tuple[object, dict]:
    before = dict(fleet.stats["not_offered"])
    result = poll_host(target(fleet, label, transport), fleet_context(fleet))
    after = fleet.stats["not_offered"]
    return result, {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}


def carried(new: dict) -> set[str]:
    return {what for (_, _, what) in new}


@pytest.mark.parametrize("transport", ["negotiate", "ntlm"])
def test_a_windows_listener_is_answered_in_negotiate(fleet, transport):
    result, new = poll(fleet, "default", transport)
    assert isinstance(result, HostObservation), result
    assert new == {}


def test_a_non_windows_ntlm_scheme_is_answered_in_ntlm_after_one_secret_free_negotiate(fleet):
    result, new = poll(fleet, "ntlm-scheme", "ntlm")
    assert isinstance(result, HostObservation), result
    assert carried(new) == {"ntlm-negotiate"} and sum(new.values()) == 1


def test_a_basic_only_host_gets_no_ntlm_response_and_one_clear_reason(fleet):
    result, new = poll(fleet, "basic-only", "negotiate")
    assert isinstance(result, HostFailure) and result.failure_class is FailureClass.AUTH
    assert result.reason.startswith("the host does not offer NTLM (Negotiate) sign-in (it offers Basic)")
    assert not carried(new) & SECRETS


def test_basic_goes_only_to_a_host_that_offers_it(fleet):
    result, new = poll(fleet, "default", "basic")
    assert isinstance(result, HostFailure) and result.failure_class is FailureClass.AUTH
    assert result.reason.startswith("the host does not offer Basic sign-in")
    assert new == {}  # the password never left: the first request carried no credentials


def test_basic_where_offered(fleet):
    result, new = poll(fleet, "basic-too", "basic")
    if target(fleet, "basic-too", "basic").scheme == "https":
        assert isinstance(result, HostObservation), result
    else:  # AllowUnencrypted is false: Windows refuses Basic in clear even with the right password
        assert isinstance(result, HostFailure) and "AllowUnencrypted" in result.reason
    assert new == {}


def test_basic_in_clear_where_the_host_allows_unencrypted_traffic(fleet):
    result, new = poll(fleet, "lab", "basic")
    assert isinstance(result, HostObservation), result
    assert new == {}


# --- the challenge parser ----------------------------------------------------------------------------


def test_one_header_per_scheme_as_windows_sends_them():
    found = parse_challenges(["Negotiate", "Kerberos", 'Basic realm="WSMAN"', "CredSSP"])
    assert [c.scheme for c in found] == ["Negotiate", "Kerberos", "Basic", "CredSSP"]
    assert found[2].params == 'realm="WSMAN"'


def test_schemes_joined_in_one_header_with_commas_inside_quotes():
    found = parse_challenges(['Basic realm="a, b", charset="UTF-8", Negotiate TlRMTVNTUAACAAAA'])
    assert [c.scheme for c in found] == ["Basic", "Negotiate"]
    assert found[0].params == 'realm="a, b", charset="UTF-8"'
    assert found[1].token == b"NTLMSSP\x00\x02\x00\x00\x00"


def test_a_token_that_is_not_base64_is_the_hosts_protocol_fault():
    with pytest.raises(ProtocolError, match="not valid base64"):
        parse_challenges(["Negotiate TlRM!!"])


def test_an_empty_header_offers_nothing():
    assert parse_challenges(["", " "]) == ()
    assert Challenge("Negotiate").key == "negotiate"
