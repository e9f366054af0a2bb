"""Email verification shared by the Management API and the hosted page (contract §10.9).

    management/tickets.py  POST /tickets/email-verification   issue_link → {"ticket": url}
    management/jobs.py     POST /jobs/verification-email      issue_link → send_verification_mail
    web/verify_email.py    GET  /u/email-verification         result_url_allowed before redirecting

The ticket itself is core/email_tickets.py. The mail goes the way of the reset mail
(keystead/mail.py): SMTP in the background through the same SmtpSender, the log on a
development issuer, and nothing (an error in the log) elsewhere. The link is never logged
outside development.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any, Final

from keystead.core.email_tickets import new_verification_ticket, verification_url
from keystead.core.redirects import logout_url_allowed
from keystead.core.users import User
from keystead.deps import AppState
from keystead.mail import deliver
from keystead.settings import Settings

log = logging.getLogger("keystead.mail")

VERIFY_SUBJECT: Final = "Verify your email address"
VERIFY_BODY: Final = """\
Please confirm that {email} is the address of your account at {site}.

To verify it, open this link within {days} days:

{url}

If you did not create an account, ignore this message.
"""


def issue_link(
    state: AppState,
    user: User,
    *,
    lifetime: int,
    result_url: str | None = None,
    client_id: str | None = None,
) -> str:
    """The verification URL for `user`'s current address; ValueError when it has none."""
    ticket = new_verification_ticket(
        state.keys,
        issuer=state.settings.issuer,
        user=user,
        now=state.clock.now(),
        lifetime=lifetime,
        result_url=result_url,
        client_id=client_id,
    )
    return verification_url(state.settings.issuer, ticket)


async def result_url_allowed(state: AppState, url: str) -> bool:
    """May the page send the browser to `url`? Only to a URL some application registered as a
    callback or logout URL, or the tenant's allowed logout URLs (matched as /v2/logout does),
    so a ticket cannot become an open redirect even if the list changed since it was made."""
    async with state.sessions() as session:
        repos = state.repos(session)
        allowed = _urls(await repos.tenant_settings.get("allowed_logout_urls"))
        for client in await repos.clients.list():
            allowed.extend(client.callbacks)
            allowed.extend(client.allowed_logout_urls)
    return "*" not in url and logout_url_allowed(url, allowed)


def _urls(value: Any) -> list[str]:
    """Tenant settings are stored as given: a list of strings, or a mapping holding one."""
    if isinstance(value, Mapping):
        value = value.get("allowed_logout_urls", value.get("value"))
    return [u for u in value if isinstance(u, str)] if isinstance(value, list) else []


def verification_message(
    settings: Settings, sender: str, to: str, url: str, days: int
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = VERIFY_SUBJECT
    message.set_content(VERIFY_BODY.format(email=to, site=settings.issuer, url=url, days=days))
    return message


async def send_verification_mail(settings: Settings, to: str, url: str, *, days: int) -> None:
    """Deliver the link to `to` as the reset mail is delivered (mail.deliver)."""
    await deliver(
        settings, to, url, lambda sender: verification_message(settings, sender, to, url, days),
        kind="verification", link_name="email verification link",
    )  # fmt: skip
