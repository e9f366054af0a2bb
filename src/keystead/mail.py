"""Outgoing mail: the password-reset link (contract §7.3), by SMTP (stdlib smtplib).

    KEYSTEAD_SMTP_HOST set      the mail is sent from a worker thread, in the background: the
                                answer to the request neither waits for the mail server nor
                                tells by its timing whether the address has an account
    unset, development issuer   (localhost, 127.0.0.1, ::1, *.localhost, *.test) the link goes
                                to the `keystead.mail` log, for a developer to click
    unset, anywhere else        nothing is sent and nothing secret is logged; an error says so

A reset link is a live credential: it is never logged outside development, and the SMTP
password never at all (smtplib's exceptions do not carry it; Settings hides it from repr).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Final
from urllib.parse import urlsplit

from keystead.settings import Settings

log = logging.getLogger("keystead.mail")

TIMEOUT: Final = 20.0  # seconds for each SMTP step
IMPLICIT_TLS_PORT: Final = 465
RESET_SUBJECT: Final = "Reset your password"
RESET_BODY: Final = """\
Someone asked to reset the password of your account at {site}.

To choose a new password, open this link within the hour:

{url}

If it was not you, ignore this message: your password stays as it is.
"""
_DEV_SUFFIXES: Final = (".localhost", ".test")  # RFC 6761: never on the public internet
_PENDING: set[asyncio.Task[None]] = set()  # background sends, kept referenced until done


@dataclass(frozen=True)
class SmtpSender:
    host: str
    port: int
    sender: str
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpSender | None:
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from or f"no-reply@{issuer_host(settings)}",
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )

    def send(self, message: EmailMessage) -> None:
        """Blocking: run it in a worker thread."""
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.port == IMPLICIT_TLS_PORT:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
        with smtp:
            if self.starttls and self.port != IMPLICIT_TLS_PORT:
                smtp.starttls(context=context)  # raises unless the server offers it
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(message)


def issuer_host(settings: Settings) -> str:
    return (urlsplit(settings.issuer).hostname or "localhost").lower()


def is_development(settings: Settings) -> bool:
    """An issuer nobody outside this machine (or a test) can reach."""
    host = issuer_host(settings)
    if host == "localhost" or host.endswith(_DEV_SUFFIXES):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def startup_warning(settings: Settings) -> str | None:
    """What `serve` prints loudly at start about mail, if anything."""
    if settings.smtp_host:
        return None
    if is_development(settings):
        return (
            "KEYSTEAD_SMTP_HOST is not set: password-reset links are written to the log "
            "(keystead.mail), not mailed. Fine for local development only."
        )
    return (
        "KEYSTEAD_SMTP_HOST is not set: password-reset mail cannot be sent, "
        "so users cannot reset their passwords."
    )


def reset_message(settings: Settings, sender: str, to: str, url: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = RESET_SUBJECT
    message.set_content(RESET_BODY.format(site=settings.issuer, url=url))
    return message


async def send_reset_mail(settings: Settings, to: str, url: str) -> None:
    """Deliver the reset link to `to` as configured (see the module docstring)."""
    await deliver(
        settings, to, url, lambda sender: reset_message(settings, sender, to, url),
        kind="password-reset", link_name="password reset link",
    )  # fmt: skip


async def deliver(
    settings: Settings,
    to: str,
    link: str,
    compose: Callable[[str], EmailMessage],
    *,
    kind: str,
    link_name: str,
) -> None:
    """Send the message `compose(sender address)` in the background when SMTP is configured;
    log the link instead on a development issuer; else log that nothing was sent. Never raises
    for a mail failure, which is logged without the link (it is a live credential)."""
    sender = SmtpSender.from_settings(settings)
    if sender is not None:
        task = asyncio.create_task(_send(sender, compose(sender.sender), to, kind))
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)
    elif is_development(settings):
        log.info("would send to %s: %s %s", to, link_name, link)
    else:
        log.error("no mail server (KEYSTEAD_SMTP_HOST): %s mail to %s not sent", kind, to)


async def _send(sender: SmtpSender, message: EmailMessage, to: str, kind: str) -> None:
    try:
        await asyncio.to_thread(sender.send, message)
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        # The exception's text, never the message (it holds the link) or the password.
        log.error("%s mail to %s failed: %s: %s", kind, to, type(exc).__name__, exc)
    else:
        log.info("%s mail sent to %s", kind, to)


async def wait_for_pending_mail() -> None:
    """Let background sends finish (shutdown, tests)."""
    if _PENDING:
        await asyncio.gather(*list(_PENDING), return_exceptions=True)
