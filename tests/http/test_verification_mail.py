"""The verification mail of POST /api/v2/jobs/verification-email (keystead/email_verification.py)
goes out by SMTP through the reset mail's sender; the mailed link verifies the address, and the
log holds neither the link nor the SMTP password."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from aiosmtpd.controller import Controller

from keystead.mail import wait_for_pending_mail
from tests.conftest import ISSUER
from tests.http.management_helpers import get_user, m2m, make_user, module_app, module_http
from tests.http.test_mail import SMTP_PASSWORD, SMTP_USER, Inbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


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


async def test_the_verification_link_arrives_by_smtp_and_works(
    http: httpx.AsyncClient, app: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = await make_user(app, email="lin@example.com")
    r = await http.post(
        "/api/v2/jobs/verification-email",
        json={"user_id": user.user_id},
        headers=m2m(app, "update:users"),
    )
    assert r.status_code == 201, r.text
    await wait_for_pending_mail()
    (recipients, message), *others = inbox.messages
    assert others == [] and recipients == ["lin@example.com"]
    assert message["From"] == "Keystead <accounts@keystead.test>"
    assert message["Subject"] == "Verify your email address"
    body = message.get_payload(decode=True).decode()
    link = re.search(r"(\S+/u/email-verification\?ticket=(\S+))", body)
    assert link is not None and link.group(1).startswith(ISSUER)
    page = await http.get("/u/email-verification", params={"ticket": unquote(link.group(2))})
    assert page.status_code == 200 and "Email verified" in page.text
    stored = await get_user(app, user.user_id)
    assert stored is not None and stored.email_verified
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("keystead"))
    assert "verification mail sent to lin@example.com" in ours
    assert link.group(2) not in ours and SMTP_PASSWORD not in ours
