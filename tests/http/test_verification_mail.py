"""The verification mail of POST /api/v2/jobs/verification-email (keystead/email_verification.py)
goes out by SMTP through the reset mail's sender; the mailed link verifies the address, and the
log holds neither the link nor the SMTP password."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from keystead.mail import wait_for_pending_mail
from tests.conftest import ISSUER
from tests.http.helpers import get_user, m2m, make_user, module_http
from tests.http.smtp_helpers import (
    SMTP_PASSWORD,
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
