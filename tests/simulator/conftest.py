"""Fixtures for the simulator's own tests: the plugin's fleets plus pywinrm request builders."""

# ruff: noqa: S314 - replies come from our own simulator; the queries are WQL, not SQL

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import winrm
import xmltodict

from simulator.testing import FleetHandle

WQL = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
CIMV2 = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/"
ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
PULL = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
RELEASE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release"
NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "cim": "http://schemas.dmtf.org/wbem/wscim/1/common",
}


def protocol(fleet: FleetHandle, name: str, transport: str = "ntlm", **kwargs) -> winrm.protocol.Protocol:
    kwargs.setdefault("ca_trust_path", str(fleet.ca_path) if fleet.ca_path else None)
    kwargs.setdefault("proxy", None)
    return winrm.protocol.Protocol(
        fleet.endpoint(name), transport=transport, username=fleet.username, password=fleet.password, **kwargs
    )


def enumerate_request(
    p: winrm.protocol.Protocol,
    resource: str,
    wql: str | None = None,
    *,
    optimize: bool = True,
    max_elements: int | None = 32000,
) -> str:
    body: dict = {}
    if optimize:
        body["w:OptimizeEnumeration"] = None
    if max_elements is not None:
        body["w:MaxElements"] = str(max_elements)
    if wql is not None:
        body["w:Filter"] = {"@Dialect": WQL, "#text": wql}
    envelope = p.build_wsman_header(ENUMERATE, resource)
    envelope["env:Body"] = {"n:Enumerate": body}
    return xmltodict.unparse({"env:Envelope": envelope})


def context_request(p: winrm.protocol.Protocol, action: str, resource: str, context: str, max_elements: int = 1) -> str:
    tag = "n:Pull" if action == PULL else "n:Release"
    body: dict = {"n:EnumerationContext": context}
    if action == PULL:
        body["n:MaxElements"] = str(max_elements)
    envelope = p.build_wsman_header(action, resource)
    envelope["env:Body"] = {tag: body}
    return xmltodict.unparse({"env:Envelope": envelope})


def wql_items(p: winrm.protocol.Protocol, wql: str, max_elements: int = 32000) -> list[ET.Element]:
    """Enumerate (optimized) then Pull until EndOfSequence; returns the item elements."""
    root = ET.fromstring(p.send_message(enumerate_request(p, CIMV2 + "*", wql, max_elements=max_elements)))
    response = root.find("s:Body/n:EnumerateResponse", NS)
    assert response is not None
    items = list(response.find("w:Items", NS) or [])
    ended = response.find("w:EndOfSequence", NS) is not None
    context = response.findtext("n:EnumerationContext", namespaces=NS)
    while not ended:
        pulled = ET.fromstring(p.send_message(context_request(p, PULL, CIMV2 + "*", context, max_elements)))
        pull = pulled.find("s:Body/n:PullResponse", NS)
        items += list(pull.find("n:Items", NS) or [])
        ended = pull.find("n:EndOfSequence", NS) is not None
        context = pull.findtext("n:EnumerationContext", namespaces=NS)
    return items


def props(item: ET.Element) -> dict[str, list[str | None]]:
    """Property name -> values (None for xsi:nil); Datetime children are unwrapped."""
    found: dict[str, list[str | None]] = {}
    for child in item:
        name = child.tag.split("}")[-1]
        if child.get(f"{{{NS['xsi']}}}nil") == "true":
            value = None
        elif len(child):
            value = child[0].text
        else:
            value = child.text or ""
        found.setdefault(name, []).append(value)
    return found


@pytest.fixture
def first_host():
    def pick(fleet: FleetHandle, **conditions) -> str:
        for row in fleet.truth:
            if row["poll_error"] == "" and all(row[k] == v for k, v in conditions.items()):
                return row["name"]
        raise LookupError(conditions)

    return pick
