"""Real notification targets on 127.0.0.1: an HTTP server taking apprise's ``json://`` posts, an SMTP server
(aiosmtpd) taking its ``mailto://`` mail, and a port nothing listens on."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    title: str
    body: str
    kind: str = ""  # apprise's notify type (json) or "" (mail)


class WebhookReceiver:
    """Collects the JSON apprise posts; ``status`` is what it answers (set 500 to make it fail)."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.requests = 0
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                payload: dict[str, Any] = json.loads(self.rfile.read(size))
                receiver.requests += 1
                if receiver.status == 200:
                    receiver.messages.append(Received(payload["title"], payload["message"], payload["type"]))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"

    def titles(self) -> list[str]:
        return [m.title for m in self.messages]


@contextlib.contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


class MailReceiver:
    """Collects the mail apprise sends; ``url`` sends to it without TLS or sign-in."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[Received] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = parsed.get_body(("plain",))
        text = body.get_content() if body is not None else ""  # type: ignore[union-attr]
        self.messages.append(Received(str(parsed["Subject"]), text))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=monitor@corp.example&to=it-team@corp.example"


@contextlib.contextmanager
def mail_receiver() -> Iterator[MailReceiver]:
    port = free_port()
    receiver = MailReceiver(port)
    controller = Controller(receiver, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, read, closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_webhook_url() -> str:
    return f"json://127.0.0.1:{free_port()}/hooks/alerts"
