"""A WS-Management reply reduced to the facts that make up its shape, for comparing the simulator's replies
with replies recorded from real Windows (tests/simulator/test_capture_conformance.py).

The facts are element and attribute names by namespace URI, never by prefix; the SOAP header elements;
``Items`` / ``EnumerationContext`` / ``EndOfSequence``; the fault's Code, Subcode, Reason, Detail and
``WSManFault`` with its ``Code``, ``Machine`` and ``Message`` or ``ProviderFault``. ``facts(reply)`` gives
them all; ``values=False`` keeps only the structure and the values that belong to the shape whatever the
reply answers.
"""

# ruff: noqa: S314 - parsing our simulator's replies and the recorded fixtures

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

WMI_CLASS_NS = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
# Our names for the namespaces, used only to print facts readably; facts compare the URIs.
PREFIXES = {
    "http://www.w3.org/2003/05/soap-envelope": "s",
    "http://schemas.xmlsoap.org/ws/2004/08/addressing": "a",
    "http://schemas.xmlsoap.org/ws/2004/09/enumeration": "n",
    "http://schemas.xmlsoap.org/ws/2004/09/transfer": "x",
    "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd": "w",
    "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd": "p",
    "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault": "f",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell": "rsp",
    "http://www.w3.org/2001/XMLSchema-instance": "xsi",
    "http://schemas.dmtf.org/wbem/wscim/1/common": "cim",
    "http://www.w3.org/XML/1998/namespace": "xml",
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError": "wmierror",
}
UUID = re.compile(r"uuid:[0-9A-Fa-f-]{36}")


def _name(tag: str) -> str:
    uri, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
    if not uri:
        return local
    return f"{PREFIXES[uri]}:{local}" if uri in PREFIXES else f"{{{uri}}}{local}"


def _text(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def _kind_of_id(text: str) -> str:
    return "~empty" if not text else "~uuid" if UUID.fullmatch(text) else "~other"


# Values that belong to the shape whatever the fault (the action follows the subcode's namespace);
# the other values (codes, texts, provider names) are compared only between replies to the same error.
_ALWAYS = {"a:Action", "a:To"}
_IDS = {"a:MessageID", "a:RelatesTo", "n:EnumerationContext"}
_VALUED = {"s:Value", "s:Text", "f:Message", "w:FaultDetail"}


def facts(data: bytes | str, *, values: bool = True) -> set[str]:
    """The facts of one reply; with ``values`` False only its structure and the always-compared values."""
    raw = data.encode() if isinstance(data, str) else data
    declared = dict(item for _, item in ET.iterparse(io.BytesIO(raw), events=("start-ns",)))
    found: set[str] = set()
    _walk(ET.fromstring(raw), "", found, values, declared)
    return found


def _qname(text: str, declared: dict[str, str]) -> str:
    """A QName value (``n:CannotProcessFilter``) by the namespace its prefix names in the document."""
    prefix, colon, local = text.partition(":")
    return _name(f"{{{declared[prefix]}}}{local}") if colon and prefix in declared else text


def _walk(element: ET.Element, parent: str, found: set[str], values: bool, declared: dict[str, str]) -> None:
    name = _name(element.tag)
    path = f"{parent}/{name}"
    if element.tag.startswith("{" + WMI_CLASS_NS):
        _instance(element, f"{parent}/<wmi-instance>", found, values)
        return
    if name == "w:XmlFragment":
        _instance(element, path, found, values)
        return
    found.add(path)
    for attribute, value in element.attrib.items():
        found.add(f"{path}@{_name(attribute)}")
        if values and attribute in ("Code", "provider", "path", "{http://www.w3.org/XML/1998/namespace}lang"):
            found.add(f"{path}@{_name(attribute)}={value}")
    if name in _ALWAYS:
        found.add(f"{path}={_text(element)}")
    elif name in _IDS:
        found.add(f"{path}{_kind_of_id(_text(element))}")
    elif name == "s:Value":
        code = _qname(_text(element), declared)
        found.add(f"{path}~{code.partition(':')[0]}:")  # which specification the code comes from
        if values:
            found.add(f"{path}={code}")
    if values and name in _VALUED - {"s:Value"} and not len(element):
        found.add(f"{path}={_text(element)}")
    for child in element:
        _walk(child, path, found, values, declared)


def _instance(element: ET.Element, path: str, found: set[str], values: bool) -> None:
    """An instance's shape: its attributes and, between replies of one class, the forms its properties
    take (plain, ``xsi:nil``, a ``Datetime`` child and its namespace), never their names or values.

    How many values an array holds is the host's data, so repetition is checked on its own
    (``test_arrays_are_repeated_elements_as_windows_sends_them`` in test_capture_conformance.py).
    """
    found.add(path)
    found.update(f"{path}@{_name(a)}" for a in element.attrib)
    if not values:
        return
    for prop in element:
        where = f"{path}/<property>"
        found.add(where)
        found.update(f"{where}@{_name(a)}" for a in prop.attrib)
        found.update(f"{where}/{_name(child.tag)}" for child in prop)
