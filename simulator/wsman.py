"""WS-Management request dispatch: WS-Enumeration over WMI and the WinRS shell operations.

``WsmanService.handle`` takes a decrypted request envelope and a host context and returns the
HTTP status and reply envelope. It keeps the server-side state Windows keeps: enumeration
contexts (Pull until ``EndOfSequence``, ``Release``) and open shells with their commands. Every
error a client can provoke becomes a WS-Man fault, never an exception.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from simulator import cim, shell, soap, wql
from simulator.cim import HostContext
from simulator.soap import Action, Fault, Page, Request

MAX_CONTEXTS = 20000
CONTEXT_TTL_S = 300.0
MAX_SHELLS = 5000
MAX_ELEMENTS_CAP = 32000


@dataclass
class _Enumeration:
    host: str
    items: deque[str]
    created: float = field(default_factory=time.monotonic)


@dataclass
class _Shell:
    host: str
    outputs: dict[str, shell.Output] = field(default_factory=dict)


class WsmanService:
    """The WS-Man endpoint logic shared by every simulated host of one server."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.enumerations: OrderedDict[str, _Enumeration] = OrderedDict()
        self.shells: OrderedDict[str, _Shell] = OrderedDict()

    def handle(self, data: bytes, ctx: HostContext) -> tuple[int, bytes]:
        """Answer one request envelope: ``(200, reply)`` or ``(500|400, fault)``."""
        try:
            request = soap.parse_request(data)
        except soap.RequestError as exc:
            fault = Fault("s:Sender", "w:SchemaValidationError", f"The SOAP XML in the message does not match the "
                          f"corresponding XML schema definition ({exc}).", 2150858817)  # fmt: skip
            return 400, soap.fault_envelope(fault, "", ctx.host.computer_name)
        handler = self._handlers().get(request.action)
        result = handler(request, ctx) if handler else _unsupported(request)
        if isinstance(result, Fault):
            return 500, soap.fault_envelope(result, request.message_id, _machine(request, ctx), ctx.host.computer_name)
        return 200, soap.envelope(request.action + "Response", request.message_id, result)

    def _handlers(self) -> dict[str, Callable[[Request, HostContext], str | Fault]]:
        return {
            Action.ENUMERATE: self.enumerate,
            Action.PULL: self.pull,
            Action.RELEASE: self.release,
            Action.CREATE: self.create_shell,
            Action.COMMAND: self.command,
            Action.RECEIVE: self.receive,
            Action.SIGNAL: self.signal,
            Action.DELETE: self.delete_shell,
        }

    # --- enumeration -------------------------------------------------------------------------

    def enumerate(self, request: Request, ctx: HostContext) -> str | Fault:
        if not request.resource_uri.lower().startswith(soap.WMI_CIMV2.lower()):
            return _unreachable(request.resource_uri)
        selected = self._select(request, ctx)
        if isinstance(selected, Fault):
            return selected
        items, properties = selected
        rendered = deque(soap.render_instance(inst, properties) for inst in items)
        context = self._new_context(ctx.host.name, rendered)
        optimized = soap.body_child(request, "n:Enumerate/w:OptimizeEnumeration") is not None
        if not optimized:
            return soap.enumerate_response(Page(), context, optimized=False)
        page = self._page(context, _max_elements(request, "n:Enumerate/w:MaxElements"), request.max_envelope_size)
        return soap.enumerate_response(page, context, optimized=True)

    def _select(self, request: Request, ctx: HostContext) -> tuple[list[cim.Instance], tuple[str, ...]] | Fault:
        uri_class = request.resource_uri[len(soap.WMI_CIMV2) :]
        node = soap.body_child(request, "n:Enumerate/w:Filter")
        if node is None:
            node = soap.body_child(request, "n:Enumerate/n:Filter")
        if node is None:
            found = cim.instances(uri_class, ctx) if uri_class != "*" else None
            return (found, ()) if found is not None else _unreachable(request.resource_uri)
        if node.get("Dialect", soap.WQL_DIALECT) != soap.WQL_DIALECT:
            return Fault("s:Sender", "n:FilterDialectRequestedUnavailable", "The requested filtering dialect is not "
                         "supported.", soap.FILTER_DIALECT_UNAVAILABLE)  # fmt: skip
        return _run_wql(node.text or "", uri_class, ctx)

    def _new_context(self, host: str, items: deque[str]) -> str:
        self._expire()
        context = f"uuid:{str(uuid.uuid4()).upper()}"
        self.enumerations[context] = _Enumeration(host, items, self.clock())
        while len(self.enumerations) > MAX_CONTEXTS:
            self.enumerations.popitem(last=False)
        return context

    def _expire(self) -> None:
        limit = self.clock() - CONTEXT_TTL_S
        while self.enumerations:
            oldest = next(iter(self.enumerations.values()))
            if oldest.created >= limit:
                return
            self.enumerations.popitem(last=False)

    def _page(self, context: str, max_elements: int, envelope_size: int) -> Page:
        state = self.enumerations[context]
        taken: list[str] = []
        budget = max(envelope_size - 4096, 1024)
        while state.items and len(taken) < max_elements:
            if taken and len(state.items[0]) > budget:
                break
            budget -= len(state.items[0])
            taken.append(state.items.popleft())
        ended = not state.items
        if ended:
            self.enumerations.pop(context, None)
        return Page(tuple(taken), None if ended else context, ended)

    def pull(self, request: Request, ctx: HostContext) -> str | Fault:
        context = _body_text(request, "n:Pull/n:EnumerationContext")
        state = self.enumerations.get(context)
        if state is None or state.host != ctx.host.name:
            return _invalid_context()
        page = self._page(context, _max_elements(request, "n:Pull/n:MaxElements"), request.max_envelope_size)
        return soap.pull_response(page)

    def release(self, request: Request, ctx: HostContext) -> str | Fault:
        context = _body_text(request, "n:Release/n:EnumerationContext")
        state = self.enumerations.get(context)
        if state is None or state.host != ctx.host.name:
            return _invalid_context()
        del self.enumerations[context]
        return ""

    # --- shells ------------------------------------------------------------------------------

    def create_shell(self, request: Request, ctx: HostContext) -> str | Fault:
        if request.resource_uri != soap.SHELL_URI:
            return _unreachable(request.resource_uri)
        shell_id = str(uuid.uuid4()).upper()
        self.shells[shell_id] = _Shell(ctx.host.name)
        while len(self.shells) > MAX_SHELLS:
            self.shells.popitem(last=False)
        return soap.shell_created(shell_id, f"http://{ctx.host.computer_name.lower()}:5985/wsman")

    def _shell(self, request: Request, ctx: HostContext) -> _Shell | Fault:
        found = self.shells.get(request.selectors.get("ShellId", ""))
        if found is None or found.host != ctx.host.name:
            reason = (
                "The WS-Management service cannot process the request because the request contained invalid "
                "selectors for the resource. "
            )
            return Fault("s:Sender", "w:InvalidSelectors", reason, soap.INVALID_SELECTORS,
                         detail=soap.UNEXPECTED_SELECTORS)  # fmt: skip
        return found

    def command(self, request: Request, ctx: HostContext) -> str | Fault:
        found = self._shell(request, ctx)
        if isinstance(found, Fault):
            return found
        line = _body_text(request, "rsp:CommandLine/rsp:Command")
        args = _body_text(request, "rsp:CommandLine/rsp:Arguments")
        command_id = str(uuid.uuid4()).upper()
        found.outputs[command_id] = shell.run(line, args, ctx)
        return soap.command_response(command_id)

    def receive(self, request: Request, ctx: HostContext) -> str | Fault:
        found = self._shell(request, ctx)
        if isinstance(found, Fault):
            return found
        node = soap.body_child(request, "rsp:Receive/rsp:DesiredStream")
        command_id = "" if node is None else node.get("CommandId", "")
        output = found.outputs.get(command_id)
        if output is None:
            return _unknown_command()
        streams = [(name, _b64(data)) for name, data in (("stdout", output.stdout), ("stderr", output.stderr)) if data]
        return soap.receive_response(command_id, streams, output.exit_code)

    def signal(self, request: Request, ctx: HostContext) -> str | Fault:
        found = self._shell(request, ctx)
        if isinstance(found, Fault):
            return found
        node = soap.body_child(request, "rsp:Signal")
        found.outputs.pop("" if node is None else node.get("CommandId", ""), None)
        return "<rsp:SignalResponse/>"

    def delete_shell(self, request: Request, ctx: HostContext) -> str | Fault:
        found = self._shell(request, ctx)
        if isinstance(found, Fault):
            return found
        self.shells.pop(request.selectors.get("ShellId", ""), None)
        return ""


def _run_wql(text: str, uri_class: str, ctx: HostContext) -> tuple[list[cim.Instance], tuple[str, ...]] | Fault:
    invalid = "The WS-Management service cannot process the request. The WQL query is invalid. "
    try:
        query = wql.parse(text)
    except wql.WqlError:
        return soap.filter_fault(invalid, text)
    if uri_class != "*" and uri_class.lower() != query.class_name.lower():
        return soap.filter_fault("The WS-Management service cannot process the request. The class in the resource "
                                 "URI does not match the class in the WQL query. ", text)  # fmt: skip
    found = cim.instances(query.class_name, ctx)
    if found is None:
        return soap.filter_fault("The specified class does not exist in the given namespace. ", text)
    try:
        return wql.run(query, found), query.properties
    except wql.WqlError:
        return soap.filter_fault(invalid, text)


def _max_elements(request: Request, path: str) -> int:
    text = _body_text(request, path)
    try:
        return max(1, min(int(text), MAX_ELEMENTS_CAP))
    except ValueError:
        return 1


def _body_text(request: Request, path: str) -> str:
    node = soap.body_child(request, path)
    return (node.text or "").strip() if node is not None else ""


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def _machine(request: Request, ctx: HostContext) -> str:
    """The host as the client addressed it (the authority of ``a:To``), as Windows names it in faults."""
    try:
        host = urlsplit(request.to).hostname
    except ValueError:  # a malformed To is the client's problem, never the fault's
        host = None
    return host or f"{ctx.host.computer_name}.{ctx.host.domain}".lower()


def _unsupported(request: Request) -> Fault:
    return Fault("s:Sender", "a:ActionNotSupported", f"The action is not supported by the service: {request.action}",
                 soap.ACTION_NOT_SUPPORTED)  # fmt: skip


def _unreachable(uri: str) -> Fault:
    return Fault("s:Sender", "w:DestinationUnreachable", "The WS-Management service cannot process the request. "
                 f"The resource URI is not valid or the class does not exist: {uri}", soap.DESTINATION_UNREACHABLE,
                 "The specified class does not exist in the given namespace. ")  # fmt: skip


def _unknown_command() -> Fault:
    return Fault("s:Sender", "w:InvalidSelectors", "The WS-Management service cannot process the request because the "
                 "request contained invalid selectors for the resource. ", soap.INVALID_SELECTORS,
                 detail=soap.UNEXPECTED_SELECTORS, message="The Windows Remote Shell received a request to perform an "
                 "operation on a command identifier that does not exist. Either the command has completed execution "
                 "or the client specified an invalid command identifier. ")  # fmt: skip


def _invalid_context() -> Fault:
    return Fault("s:Sender", "n:InvalidEnumerationContext", "The enumeration context supplied in the message is not "
                 "valid.", soap.INVALID_CONTEXT)  # fmt: skip
