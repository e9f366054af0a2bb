"""Route table of the hosted pages."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from keystead.web import login, mfa, mfa_enrol, reset, signup, verify_email
from keystead.web.pages import STATIC, STATIC_PATH

routes: list[BaseRoute] = [
    Route("/u/login", login.login_page, methods=["GET"]),
    Route("/u/login", login.login_submit, methods=["POST"]),
    Route("/u/mfa-challenge", mfa.mfa_submit, methods=["POST"]),
    Route("/u/mfa-enroll", mfa_enrol.mfa_enrol_submit, methods=["POST"]),
    Route("/u/signup", signup.signup_page, methods=["GET"]),
    Route("/u/signup", signup.signup_submit, methods=["POST"]),
    Mount(STATIC_PATH, StaticFiles(directory=STATIC), name="static"),
    Route("/u/reset-password", reset.reset_page, methods=["GET"]),
    Route("/u/reset-password", reset.reset_submit, methods=["POST"]),
    Route("/u/reset-password/{ticket}", reset.reset_page, methods=["GET"]),
    Route("/u/reset-password/{ticket}", reset.reset_submit, methods=["POST"]),
    Route("/u/email-verification", verify_email.verify_email_page, methods=["GET"]),
]
