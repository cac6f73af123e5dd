"""Fixtures for the alert tests: real notification targets on 127.0.0.1 (see ``receivers``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alerting.receivers import MailReceiver, WebhookReceiver, mail_receiver, webhook_receiver


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def mailbox() -> Iterator[MailReceiver]:
    with mail_receiver() as receiver:
        yield receiver
