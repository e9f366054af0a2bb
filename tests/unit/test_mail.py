"""keystead/mail.py without a server: what counts as development, the start warning, secrets."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keystead import mail
from keystead.settings import Settings

SMTP_PASSWORD = "smtp-secret-" + "s" * 20


@pytest.mark.parametrize(
    ("issuer", "development"),
    [
        ("http://localhost:8080/", True),
        ("http://127.0.0.1:8080/", True),
        ("http://[::1]:8080/", True),
        ("https://keystead.test/", True),
        ("https://app.localhost/", True),
        ("https://id.example.com/", False),
        ("https://10.0.0.5/", False),
        ("https://localhost.example.com/", False),
    ],
)
def test_is_development(issuer: str, development: bool) -> None:
    assert mail.is_development(Settings(issuer=issuer)) is development


def test_startup_warning_and_secrets() -> None:
    dev = Settings(issuer="http://localhost:8080/")
    prod = Settings(issuer="https://id.example.com/")
    assert "written to the log" in (mail.startup_warning(dev) or "")
    assert "cannot be sent" in (mail.startup_warning(prod) or "")
    configured = replace(prod, smtp_host="smtp.example.com", smtp_password=SMTP_PASSWORD)
    assert mail.startup_warning(configured) is None
    sender = mail.SmtpSender.from_settings(configured)
    assert sender is not None and sender.sender == "no-reply@id.example.com"
    assert SMTP_PASSWORD not in repr(sender) and SMTP_PASSWORD not in repr(configured)
