"""Password-reset mail (keystead/mail.py): delivered by SMTP to a local aiosmtpd server, logged
only on a development issuer without SMTP, and never with the SMTP password."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes
from email.message import Message
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from keystead import mail
from keystead.core.passwords import hash_password
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.deps import AppState
from tests.conftest import ISSUER
from tests.http.management_helpers import module_app, module_http

pytestmark = pytest.mark.asyncio(loop_scope="module")

SMTP_USER = "keystead"
SMTP_PASSWORD = "smtp-secret-" + "s" * 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SMTP_PORT = _free_port()
app = module_app(
    smtp_host="127.0.0.1",
    smtp_port=SMTP_PORT,
    smtp_username=SMTP_USER,
    smtp_password=SMTP_PASSWORD,
    smtp_from="Keystead <accounts@keystead.test>",
    smtp_starttls=False,  # the local test server speaks plain SMTP
)
http = module_http()


class Inbox:
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


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=SMTP_PORT,
        authenticator=box.authenticate,
        auth_require_tls=False,  # plain SMTP on loopback, for the test only
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def user(app: Any) -> User:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        return await state.repos(session).users.create(
            User(user_id="", email="mia@example.com", password_hash=hash_password("old pass")),
            connection=DATABASE_CONNECTION,
        )


async def change_password(http: httpx.AsyncClient, email: str) -> None:
    r = await http.post(
        "/dbconnections/change_password",
        json={"email": email, "connection": DATABASE_CONNECTION},
    )
    assert r.status_code == 200
    await mail.wait_for_pending_mail()


def mail_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "keystead.mail"]


def our_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Everything Keystead logged (not the test's SMTP server or HTTP client)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("keystead"))


async def test_the_reset_link_arrives_by_smtp(
    http: httpx.AsyncClient, inbox: Inbox, user: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    inbox.messages.clear()
    await change_password(http, "MIA@example.com")
    (recipients, message), *others = inbox.messages
    assert others == []
    assert recipients == ["mia@example.com"]
    assert message["To"] == "mia@example.com"
    assert message["From"] == "Keystead <accounts@keystead.test>"
    assert message["Subject"] == "Reset your password"
    body = message.get_payload(decode=True).decode()
    link = re.search(r"(\S+/u/reset-password\?ticket=(\S+))", body)
    assert link is not None and link.group(1).startswith(ISSUER)
    assert (SMTP_USER, SMTP_PASSWORD) in inbox.logins
    # The link works: the reset page opens its form.
    page = await http.get("/u/reset-password", params={"ticket": unquote(link.group(2))})
    assert page.status_code == 200 and 'name="password"' in page.text
    # The log says it was sent; it holds neither the link nor the SMTP password.
    text = our_logs(caplog)
    assert "password-reset mail sent to mia@example.com" in mail_lines(caplog)
    assert link.group(2) not in text and SMTP_PASSWORD not in text


async def test_an_unknown_address_gets_no_mail(http: httpx.AsyncClient, inbox: Inbox) -> None:
    inbox.messages.clear()
    await change_password(http, "nobody@example.com")
    assert inbox.messages == []


async def test_a_failing_mail_server_is_logged_without_the_link(
    http: httpx.AsyncClient, app: Any, user: User, caplog: pytest.LogCaptureFixture
) -> None:
    state: AppState = app.state.keystead
    original = state.settings
    state.settings = replace(original, smtp_port=_free_port())  # nothing listens there
    try:
        caplog.set_level(logging.DEBUG)
        await change_password(http, "mia@example.com")
    finally:
        state.settings = original
    (line,) = [m for m in mail_lines(caplog) if "failed" in m]
    assert line.startswith("password-reset mail to mia@example.com failed: ")
    text = our_logs(caplog)
    assert "ticket=" not in text and SMTP_PASSWORD not in text


async def test_without_smtp_links_are_logged_only_on_a_development_issuer(
    http: httpx.AsyncClient, app: Any, user: User, caplog: pytest.LogCaptureFixture
) -> None:
    state: AppState = app.state.keystead
    original = state.settings
    caplog.set_level(logging.DEBUG)
    try:
        state.settings = replace(original, smtp_host="")  # issuer keystead.test: development
        await change_password(http, "mia@example.com")
        (dev,) = mail_lines(caplog)
        assert dev.startswith("would send to mia@example.com: password reset link ")
        caplog.clear()
        # The issuer is the request's too, so only the mail settings can say "production".
        await mail.send_reset_mail(
            replace(original, smtp_host="", issuer="https://id.example.com/"),
            "mia@example.com",
            "https://id.example.com/u/reset-password?ticket=secret-ticket",
        )
    finally:
        state.settings = original
    (prod,) = mail_lines(caplog)
    assert "not sent" in prod and "secret-ticket" not in prod
