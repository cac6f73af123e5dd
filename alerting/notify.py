"""Sending messages with apprise: every message to every notification URL, retried, and never raising.

A notification URL (``json://…``, ``mailto://…``, ``msteams://…``, ``slack://…``: any apprise URL) carries its
secrets inside it: passwords, tokens, webhook keys. So a URL is never logged, printed or stored: the outcome of
each try names its target as ``safe_target`` gives it (scheme and host only, and the scheme alone where the
"host" of a URL is itself a token), and what apprise reports of a failure is kept only after every part of the
URL that could be secret is cut out of it. A target that fails is tried ``retries`` times with a short backoff;
then its failure is a result (``Delivery``), and the other targets and messages go on.

apprise and the HTTP libraries under it log what they send, URLs included. A filter on their loggers
(``Redactor``) cuts every secret part of the URLs being sent out of each record before any handler sees it,
whichever thread logs it; nothing else about the process's logging is changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import apprise

from alerting.messages import RESOLVED, Message
from config.secrets import read_secrets_file
from config.settings import Settings

log = logging.getLogger("alerting")
NOTIFY_URLS_KEY = "ACTIVATION_NOTIFY_URLS"
BACKOFF_S = 0.5
ERROR_CHARS = 200
MASK = "***"
# Schemes whose host is a server's name; for the rest (slack://, msteams://, discord://, tgram://...) the part in
# the host's place is a token, and only the scheme is shown.
HOST_SCHEMES = frozenset(
    {
        "http", "https", "json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos", "ntfy", "ntfys",
        "gotify", "gotifys", "mmost", "mmosts", "rocket", "rockets", "matrix", "matrixs", "apprise", "apprises",
        "syslog", "rsyslog", "mqtt", "mqtts", "xmpp", "xmpps", "signal", "signals", "workflow", "workflows",
    }
)  # fmt: skip
HTTP_LOGGERS = ("urllib3", "requests")
NOTIFY_TYPES = {"critical": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING}


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one message went to one target: the target without secrets, the outcome, the tries, and why not."""

    target: str
    ok: bool
    attempts: int
    error: str | None = None


def configured_urls(settings: Settings) -> list[str]:
    """Where messages go by default: the ``notify_urls`` setting, else ``ACTIVATION_NOTIFY_URLS`` in the secrets file.

    The secrets file is read by ``config.secrets``; one that its group or others may read is refused with
    ``SecretsFileError`` (a ``PermissionError``).
    """
    if settings.notify_urls:
        return [url.get_secret_value() for url in settings.notify_urls]
    value = read_secrets_file(settings.secrets_file).get(NOTIFY_URLS_KEY, "")
    return value.split()


def safe_target(url: str) -> str:
    """``url`` as it may be shown and stored: ``scheme://host`` or, where the host is a token, ``scheme://``."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname if scheme in HOST_SCHEMES else None
    except ValueError:
        return "(unreadable URL)"
    if not scheme:
        return "(unreadable URL)"
    if host and ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if host else f"{scheme}://"


def secret_parts(url: str) -> list[str]:
    """Every part of ``url`` that may be a secret, longest first: the URL, its user and password, path segments,
    query values, and the host where it stands for a token."""
    parts = [url]
    try:
        split = urlsplit(url)
        parts += [split.username or "", split.password or "", split.fragment, split.path]
        parts += split.path.split("/") + [value for _, value in parse_qsl(split.query)]
        if split.scheme.lower() not in HOST_SCHEMES:  # the host as written: ``hostname`` is lowercased
            host = split.netloc.rpartition("@")[2]
            parts += [split.hostname or "", host, host.rpartition(":")[0]]
    except ValueError:
        pass
    return sorted({p for p in parts if len(p) >= 3}, key=len, reverse=True)


def target_keys(urls: Sequence[str]) -> list[str]:
    """A name for each URL that may be stored: its ``safe_target`` with the port it names, and ``#2``, ``#3``...
    added to the second and later URLs that share one (what ``models.alerts`` records as the targets a message
    is owed to)."""
    seen: Counter[str] = Counter()
    keys = []
    for url in urls:
        target = safe_target(url)
        try:
            port = urlsplit(url.strip()).port
        except ValueError:
            port = None
        if port is not None and not target.endswith("://"):
            target = f"{target}:{port}"
        seen[target] += 1
        keys.append(target if seen[target] == 1 else f"{target} #{seen[target]}")
    return keys


def scrub(text: str, url: str) -> str:
    """``text`` with every possibly secret part of ``url`` replaced, on one line, cut to a sane length."""
    for part in secret_parts(url):
        text = text.replace(part, MASK)
    line = " ".join(text.split())
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"


class Redactor(logging.Filter):
    """Cuts the secret parts of every URL being sent out of the records of the loggers it is installed on.

    ``sending(url)`` registers a URL's secret parts for as long as it is being sent; a record is rewritten as
    its message with each registered part replaced by ``***`` (its traceback likewise), then let through.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._parts: Counter[str] = Counter()

    @contextmanager
    def sending(self, url: str) -> Iterator[None]:
        parts = secret_parts(url)
        with self._lock:
            self._parts.update(parts)
        try:
            yield
        finally:
            with self._lock:
                self._parts.subtract(parts)
                self._parts = +self._parts  # drop the parts no URL being sent holds

    def redact(self, text: str) -> str:
        with self._lock:
            parts = sorted(self._parts, key=len, reverse=True)
        for part in parts:
            text = text.replace(part, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._parts:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is kept as its bare template
            message = str(record.msg)
        record.msg, record.args = self.redact(message), None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


REDACTOR = Redactor()
_install_lock = threading.Lock()
_installed: set[str] = set()


def install_redactor() -> None:
    """Put ``REDACTOR`` on apprise's logger and on every logger of the HTTP libraries (a filter on a logger sees
    only that logger's own records, so each module's logger gets it), once per logger."""
    names = {apprise.LOGGER_NAME, *HTTP_LOGGERS}
    names |= {name for name in logging.root.manager.loggerDict if name.startswith(tuple(f"{n}." for n in HTTP_LOGGERS))}
    with _install_lock:
        for name in sorted(names - _installed):
            logging.getLogger(name).addFilter(REDACTOR)
            _installed.add(name)


class _Captured(logging.Handler):
    """apprise's warnings during one try (already redacted), kept as the reason a delivery failed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _apprise_log(url: str) -> Iterator[_Captured]:
    """While ``url`` is being sent: its secrets cut out of every log record, and apprise's warnings captured."""
    install_redactor()
    handler = _Captured()
    logger = logging.getLogger(apprise.LOGGER_NAME)
    with REDACTOR.sending(url):
        logger.addHandler(handler)
        try:
            yield handler
        finally:
            logger.removeHandler(handler)


def deliver(
    url: str,
    message: Message,
    *,
    retries: int,
    backoff_s: float = BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Send ``message`` to one URL, trying up to ``retries`` times; never raises."""
    target = safe_target(url)
    try:
        service = apprise.Apprise()
        with _apprise_log(url):
            usable = service.add(url)
    except Exception:  # a URL apprise chokes on is a failed target, not a failed evaluation
        usable = False
    if not usable:
        return Delivery(target, False, 0, "not a notification URL apprise can use")
    error = "not delivered"
    tries = max(1, retries)
    for attempt in range(1, tries + 1):
        with _apprise_log(url) as captured:
            try:
                if service.notify(body=message.body, title=message.title, notify_type=_notify_type(message),
                                  body_format=apprise.NotifyFormat.TEXT):  # fmt: skip
                    return Delivery(target, True, attempt)
                error = scrub(captured.messages[-1], url) if captured.messages else "not delivered"
            except Exception as exc:
                error = f"{type(exc).__name__}: {scrub(str(exc), url)}"
        if attempt < tries:
            sleep(backoff_s * 2 ** (attempt - 1))
    return Delivery(target, False, tries, error)


def send_all(
    jobs: Sequence[tuple[Message, Sequence[str]]],
    *,
    retries: int,
    backoff_s: float = BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> list[tuple[Delivery, ...]]:
    """Send each message to its URLs (one job each); a target that fails does not stop the others.

    A target that failed every try of one message gets one try for each later message, so a dead webhook
    costs one backoff per evaluation rather than one per message.
    """
    down: dict[str, int] = {}  # URL -> messages it did not take
    outcomes: list[tuple[Delivery, ...]] = []
    for message, urls in jobs:
        deliveries = []
        for url in urls:
            tries = 1 if url in down else retries
            delivery = deliver(url, message, retries=tries, backoff_s=backoff_s, sleep=sleep)
            if not delivery.ok:
                if url not in down:
                    log.warning("notification to %s failed after %d tries: %s", delivery.target, tries, delivery.error)
                down[url] = down.get(url, 0) + 1
            deliveries.append(delivery)
        outcomes.append(tuple(deliveries))
    for url, missed in down.items():
        if missed > 1:
            log.warning("%d messages to %s not delivered in this evaluation", missed, safe_target(url))
    return outcomes


def _notify_type(message: Message) -> apprise.NotifyType:
    if message.announces == RESOLVED:
        return apprise.NotifyType.SUCCESS
    return NOTIFY_TYPES.get(message.severity, apprise.NotifyType.INFO)
