"""A local SMTP server (aiosmtpd) for the mail tests, and an app configured to send to it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.http.helpers import module_app

SMTP_USER = "keystead"
SMTP_PASSWORD = "smtp-secret-" + "s" * 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smtp_app(port: int) -> Any:
    """A module-scoped app fixture whose mail goes to the test server on `port`."""
    return module_app(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_from="Keystead <accounts@keystead.test>",
        smtp_starttls=False,  # the local test server speaks plain SMTP
    )


class Inbox:
    """What the server received, and the logins it was offered."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any):
        assert isinstance(data, LoginPassword)
        login = (data.login.decode(), data.password.decode())
        self.logins.append(login)
        return AuthResult(success=login == (SMTP_USER, SMTP_PASSWORD))


def inbox_fixture(port: int) -> Any:
    """A module-scoped `inbox` fixture: the server runs on `port` for the module's tests."""

    @pytest.fixture(scope="module")
    def inbox() -> Iterator[Inbox]:
        box = Inbox()
        controller = Controller(
            box,
            hostname="127.0.0.1",
            port=port,
            authenticator=box.authenticate,
            auth_require_tls=False,  # plain SMTP on loopback, for the test only
        )
        controller.start()
        try:
            yield box
        finally:
            controller.stop()

    return inbox
