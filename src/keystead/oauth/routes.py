"""Route table of the Authentication API (served at the origin's root, contract §0.1)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from keystead.oauth import (
    authorize,
    change_password,
    dbconnections,
    discovery,
    logout,
    revoke,
    token,
    userinfo,
)

routes: list[BaseRoute] = [
    Route(
        "/.well-known/openid-configuration",
        discovery.openid_configuration,
        methods=["GET", "OPTIONS"],
    ),
    Route(
        "/.well-known/oauth-authorization-server",
        discovery.openid_configuration,
        methods=["GET", "OPTIONS"],
    ),
    Route("/.well-known/jwks.json", discovery.jwks, methods=["GET", "OPTIONS"]),
    Route("/healthz", discovery.healthz, methods=["GET"]),
    Route("/readyz", discovery.readyz, methods=["GET"]),
    Route("/userinfo", userinfo.userinfo, methods=["GET", "POST", "OPTIONS"]),
    Route("/authorize", authorize.authorize, methods=["GET", "POST"]),
    Route("/v2/logout", logout.v2_logout, methods=["GET"]),
    Route("/oidc/logout", logout.oidc_logout, methods=["GET", "POST"]),
    Route("/oauth/token", token.token, methods=["POST", "OPTIONS"]),
    Route("/oauth/revoke", revoke.revoke, methods=["POST", "OPTIONS"]),
    Route("/dbconnections/signup", dbconnections.signup, methods=["POST"]),
    Route("/dbconnections/change_password", change_password.change_password, methods=["POST"]),
]
