"""The saved reply samples stay parseable and Windows-shaped; the simulator stays independent."""

from __future__ import annotations

# ruff: noqa: S314 - the samples are our own files
import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.simulator.conftest import NS

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "data" / "wsman"


@pytest.mark.parametrize("path", sorted(p for p in SAMPLES.glob("*.xml") if "truncated" not in p.name), ids=str)
def test_samples_are_soap_envelopes(path: Path):
    root = ET.fromstring(path.read_bytes())
    assert root.tag == f"{{{NS['s']}}}Envelope"
    assert root.find("s:Header/{http://schemas.xmlsoap.org/ws/2004/08/addressing}RelatesTo", NS) is not None


def test_fault_sample_carries_the_wsman_code():
    root = ET.fromstring((SAMPLES / "fault_cannot_process_filter.xml").read_bytes())
    assert root.find("s:Body/s:Fault/s:Detail/f:WSManFault", NS).get("Code") == "2150858778"
    assert root.findtext("s:Body/s:Fault/s:Code/s:Subcode/s:Value", namespaces=NS) == "n:CannotProcessFilter"


def test_truncated_sample_does_not_parse():
    with pytest.raises(ET.ParseError):
        ET.fromstring((SAMPLES / "enumerate_truncated.xml").read_bytes())


def test_simulator_imports_nothing_from_collectors_or_models():
    for path in (ROOT / "simulator").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] in {"collectors", "models"} for n in names), path
