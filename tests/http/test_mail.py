"""Password-reset mail (keystead/mail.py): delivered by SMTP to a local aiosmtpd server, logged
only on a development issuer without SMTP, and never with the SMTP password."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import pytest_asyncio

from keystead import mail
from keystead.core.passwords import hash_password
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.deps import AppState
from tests.conftest import ISSUER
from tests.http.helpers import module_http
from tests.http.smtp_helpers import (
    SMTP_PASSWORD,
    SMTP_USER,
    Inbox,
    free_port,
    inbox_fixture,
    smtp_app,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SMTP_PORT = free_port()
app = smtp_app(SMTP_PORT)
http = module_http()
inbox = inbox_fixture(SMTP_PORT)


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
    state.settings = replace(original, smtp_port=free_port())  # nothing listens there
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
