"""The few commands a simulated host runs through a WinRS shell, answering as cmd.exe/PowerShell would.

``hostname``, ``echo``, ``powershell -encodedcommand`` with ``$env:COMPUTERNAME``, ``hostname`` or a
``Get-CimInstance SoftwareLicensingProduct`` pipeline (text, CSV or JSON output). Anything else
fails with the message and exit code Windows gives. Pure functions from a command line to output.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
from dataclasses import dataclass

from simulator.cim import HostContext, Instance, licensing_products
from simulator.codes import WINDOWS_APP_ID


@dataclass(frozen=True, slots=True)
class Output:
    """What a command wrote and how it ended."""

    stdout: bytes
    stderr: bytes
    exit_code: int


def run(command: str, arguments: str, ctx: HostContext) -> Output:
    """Run one command line on the simulated host."""
    line = f"{command} {arguments}".strip()
    verb = line.split(" ", 1)[0].lower()
    if verb in {"hostname", "hostname.exe"}:
        return Output(f"{ctx.host.computer_name.upper()}\r\n".encode(), b"", 0)
    if verb == "echo":
        return Output((line[5:] + "\r\n").encode(), b"", 0)
    if verb in {"powershell", "powershell.exe"}:
        return _powershell(line, ctx)
    message = (
        f"'{line.split(' ', 1)[0]}' is not recognized as an internal or external command,\r\n"
        "operable program or batch file.\r\n"
    )
    return Output(b"", message.encode(), 1)


def _powershell(line: str, ctx: HostContext) -> Output:
    match = re.search(r"-(?:encodedcommand|enc|e)\s+(\S+)", line, re.IGNORECASE)
    if match is None:
        script = re.sub(r"^\S+\s*(-command\s+)?", "", line, flags=re.IGNORECASE)
    else:
        try:
            script = base64.b64decode(match.group(1)).decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError):
            return _ps_error("Cannot process the command because the value specified with -EncodedCommand is not "
                             "properly encoded.")  # fmt: skip
    return _script(script.strip(), ctx)


def _script(script: str, ctx: HostContext) -> Output:
    lowered = script.lower()
    if lowered in {"$env:computername", "hostname", "[environment]::machinename"}:
        return Output(f"{ctx.host.computer_name.upper()}\r\n".encode(), b"", 0)
    if re.match(r"^(get-ciminstance|gcim|get-wmiobject|gwmi)\b", lowered) and "softwarelicensingproduct" in lowered:
        return Output(_licensing_output(lowered, ctx).encode("utf-8"), b"", 0)
    word = script.split()[0] if script.split() else script
    return _ps_error(
        f"{word} : The term '{word}' is not recognized as the name of a cmdlet, function, script file, or operable "
        "program. Check the spelling of the name, or if a path was included, verify that the path is correct and "
        "try again."
    )


def _ps_error(message: str) -> Output:
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    clixml = (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        f'<S S="Error">{escaped}_x000D__x000A_</S></Objs>'
    )
    return Output(b"", clixml.encode("utf-8"), 1)


_FIELDS = ("Name", "Description", "ID", "PartialProductKey", "ProductKeyChannel", "LicenseStatus",
           "LicenseStatusReason", "GracePeriodRemaining", "KeyManagementServiceMachine",
           "DiscoveredKeyManagementServiceMachineName")  # fmt: skip


def _rows(lowered: str, ctx: HostContext) -> list[dict[str, object]]:
    products: list[Instance] = licensing_products(ctx)
    if "partialproductkey" in lowered:
        products = [p for p in products if (p.get("PartialProductKey") or _none).value is not None]
    if WINDOWS_APP_ID in lowered:
        products = [p for p in products if (p.get("ApplicationID") or _none).value == WINDOWS_APP_ID]
    return [{f: (p.get(f) or _none).value for f in _FIELDS} for p in products]


class _None:
    value = None


_none = _None()


def _licensing_output(lowered: str, ctx: HostContext) -> str:
    rows = _rows(lowered, ctx)
    if "convertto-json" in lowered:
        return json.dumps(rows[0] if len(rows) == 1 else rows, indent=4, ensure_ascii=False) + "\r\n"
    if "convertto-csv" in lowered or "export-csv" in lowered:
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(_FIELDS)
        writer.writerows([["" if r[f] is None else r[f] for f in _FIELDS] for r in rows])
        return buffer.getvalue()
    width = max(len(f) for f in _FIELDS)
    blocks = ["\r\n".join(f"{f.ljust(width)} : {'' if r[f] is None else r[f]}" for f in _FIELDS) for r in rows]
    return "\r\n\r\n" + "\r\n\r\n".join(blocks) + "\r\n\r\n"
