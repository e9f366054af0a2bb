"""Tenant file parsing: every error names file, entry and field; substitution; defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from keystead.core.tenant import (
    TenantSpec,
    expand_env,
    parse_tenant,
    url_error,
)
from keystead.errors import ConfigError

DEMO = Path(__file__).parents[2] / "examples" / "demo-tenant.yaml"
SPA = {"client_id": "spa1", "name": "SPA", "app_type": "spa"}
M2M = {"client_id": "m2m1", "name": "M2M", "app_type": "non_interactive", "client_secret": "s3"}
API = {"identifier": "https://api.example.com/", "scopes": [{"value": "read:x"}]}
USER = {"email": "a@example.com", "password": "long enough password"}


def parse(doc: object, environ: dict[str, str] | None = None) -> TenantSpec:
    return parse_tenant(yaml.safe_dump(doc), source="tenant.yaml", environ=environ or {})


def with_client(**fields: object) -> dict[str, object]:
    return {"clients": [SPA, M2M, {"client_id": "web", "name": "Web", **fields}]}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        # top level
        ([1, 2], "tenant.yaml: the top level must be a mapping"),
        ({"client": []}, "tenant.yaml: client: unknown section (did you mean clients?)"),
        ({"clients": {"a": 1}}, "tenant.yaml: clients: must be a list"),
        ({"clients": ["x"]}, "tenant.yaml: clients[0]: must be a mapping"),
        # clients
        (with_client(callbacks="https://a.example/cb"),
         "tenant.yaml: clients[2].callbacks: must be a list of URLs"),
        (with_client(callbacks=["https://a.example/cb#frag"]),
         "tenant.yaml: clients[2].callbacks[0]: 'https://a.example/cb#frag' must not contain a "
         "fragment"),
        (with_client(callbacks=["javascript:alert(1)"]),
         "tenant.yaml: clients[2].callbacks[0]: 'javascript:alert(1)' must not use the "
         "javascript: scheme"),
        (with_client(callbacks=["data:text/html,hi"]), "clients[2].callbacks[0]: 'data:text"),
        (with_client(callbacks=["VBScript:x"]), "callbacks[0]: 'VBScript:x' must not use the vbs"),
        (with_client(callbacks=["http://app.example/cb"]),
         "tenant.yaml: clients[2].callbacks[0]: 'http://app.example/cb' must use https unless "
         "the host is a loopback address"),
        (with_client(callbacks=["http://localhost.evil.example/cb"]), "must use https unless"),
        (with_client(callbacks=["/relative/cb"]), "'/relative/cb' must be an absolute URL"),
        (with_client(callbacks=["https://*.com/cb"]), "may only use * in the left-most label"),
        (with_client(callbacks=["https://user:pw@app.example/cb"]), "without user information"),
        (with_client(callbacks=["https://app.example:99999/"]), "must be a valid URL"),
        (with_client(callbacks=["https://app.example/a b"]), "without spaces or backslashes"),
        (with_client(allowed_logout_urls=["http://app.example/"]),
         "clients[2].allowed_logout_urls[0]: 'http://app.example/' must use https"),
        (with_client(web_origins=["https://app.example/path"]),
         "tenant.yaml: clients[2].web_origins[0]: 'https://app.example/path' must be an origin"),
        (with_client(allowed_origins="https://x.example"),
         "clients[2].allowed_origins: must be a list of origins"),
        (with_client(app_type="native", web_origins=["com.example.app://cb"]),
         "clients[2].web_origins[0]: 'com.example.app://cb' must be an http(s) origin"),
        (with_client(name=None), "tenant.yaml: clients[2].name: is required"),
        (with_client(name="  "), "clients[2].name: must not be empty"),
        (with_client(name="<b>x</b>"), "clients[2].name: must not contain < or >"),
        (with_client(client_id="has space"), "clients[2].client_id: must be 1-64 letters"),
        (with_client(client_id="spa1"),
         "tenant.yaml: clients[2].client_id: this client_id is already defined by clients[0]"),
        (with_client(app_type="mobile"),
         "clients[2].app_type: must be one of spa, native, regular_web, non_interactive, got "
         "'mobile'"),
        (with_client(app_type="spa", token_endpoint_auth_method="client_secret_post"),
         "clients[2].token_endpoint_auth_method: a spa client cannot keep a secret"),
        (with_client(app_type="spa", client_secret="x"),
         "clients[2].client_secret: a public client (token_endpoint_auth_method none) has no "
         "secret"),
        (with_client(app_type="non_interactive", token_endpoint_auth_method="none"),
         "clients[2].token_endpoint_auth_method: a non_interactive client must authenticate"),
        (with_client(client_secret=""), "clients[2].client_secret: must not be empty"),
        (with_client(client_secret=123), "clients[2].client_secret: must be a string"),
        (with_client(grant_types=["authorization_code", "magic"]),
         "clients[2].grant_types[1]: unknown grant type 'magic'"),
        (with_client(app_type="native", grant_types=["client_credentials"]),
         "clients[2].grant_types: client_credentials needs a confidential client"),
        (with_client(grant_types="client_credentials"),
         "clients[2].grant_types: must be a list of strings"),
        (with_client(is_first_party="yes"), "clients[2].is_first_party: must be true or false"),
        (with_client(description="x" * 141), "clients[2].description: must be at most 140"),
        (with_client(calbacks=[]), "clients[2].calbacks: unknown field (did you mean callbacks?)"),
        (with_client(refresh_token={"rotation_type": "rotating",
                                    "expiration_type": "non-expiring"}),
         "clients[2].refresh_token.expiration_type: rotating refresh tokens must be expiring"),
        (with_client(refresh_token={"leeway": 600}),
         "clients[2].refresh_token.leeway: must be between 0 and 60"),
        (with_client(refresh_token={"leeway": True}),
         "clients[2].refresh_token.leeway: must be an integer"),
        (with_client(refresh_token={"lifetime": 5}), "clients[2].refresh_token.lifetime: unknown"),
        (with_client(app_type="spa", jwt_configuration={"alg": "HS256"}),
         "clients[2].jwt_configuration.alg: HS256 needs a client secret"),
        (with_client(jwt_configuration={"alg": "none"}),
         "clients[2].jwt_configuration.alg: must be one of RS256, HS256, PS256"),
        (with_client(client_metadata={"k": 1}),
         "clients[2].client_metadata.k: must be a string of at most 255 characters"),
        (with_client(client_metadata={f"k{i}": "v" for i in range(11)}),
         "clients[2].client_metadata: must have at most 10 keys"),
        ({"clients": [{"name": "A"}, {"name": "A"}]},
         "clients[0].name: clients[1] has the same name: give this entry a client_id"),
        ({"clients": [{"client_id": "a1", "name": "A"}, {"name": "A"}]},
         "clients[1].name: clients[0] has the same name: give this entry a client_id"),
        # resource servers
        ({"resourceServers": [{"name": "no id"}]}, "resourceServers[0].identifier: is required"),
        ({"resourceServers": [{"identifier": "{issuer}api/v2/"}]},
         "tenant.yaml: resourceServers[0].identifier: the Management API is built in"),
        ({"resourceServers": [API, API]},
         "resourceServers[1].identifier: this identifier is already defined by resourceServers[0]"),
        ({"resourceServers": [{**API, "scopes": ["read:x"]}]},
         "resourceServers[0].scopes[0]: must be a mapping"),
        ({"resourceServers": [{**API, "scopes": "read:x"}]},
         "resourceServers[0].scopes: must be a list of {value, description}"),
        ({"resourceServers": [{**API, "scopes": [{"value": "read x"}]}]},
         "resourceServers[0].scopes[0].value: must not contain spaces"),
        ({"resourceServers": [{**API, "scopes": [{"value": "a"}, {"value": "a"}]}]},
         "resourceServers[0].scopes[1].value: 'a' is listed twice"),
        ({"resourceServers": [{**API, "scopes": [{"value": "a", "desc": "x"}]}]},
         "resourceServers[0].scopes[0].desc: unknown field (did you mean description?)"),
        ({"resourceServers": [{**API, "signing_alg": "HS256"}]},
         "resourceServers[0].signing_secret: HS256 needs a signing_secret of at least 16"),
        ({"resourceServers": [{**API, "signing_secret": "x" * 20}]},
         "resourceServers[0].signing_secret: is only used with signing_alg HS256"),
        ({"resourceServers": [{**API, "signing_alg": "none"}]},
         "resourceServers[0].signing_alg: must be one of RS256, HS256"),
        ({"resourceServers": [{**API, "token_lifetime": 0}]},
         "resourceServers[0].token_lifetime: must be between 1 and 2592000"),
        ({"resourceServers": [{**API, "token_dialect": "access_token_authz"}]},
         "resourceServers[0].token_dialect: access_token_authz needs enforce_policies: true"),
        # client grants
        ({"clientGrants": [{"audience": "https://api.example.com/"}]},
         "tenant.yaml: clientGrants[0].client_id: is required"),
        ({"clientGrants": [{"client_id": "m2m1", "audience": "x", "scope": "read:x"}]},
         "clientGrants[0].scope: must be a list of strings"),
        ({"clientGrants": [{"client_id": "m2m1", "audience": "x", "scope": ["read:x write:x"]}]},
         "clientGrants[0].scope[0]: must be one scope without spaces"),
        ({"resourceServers": [API],
          "clientGrants": [{"client_id": "m", "audience": API["identifier"], "scope": ["no:pe"]}]},
         "clientGrants[0].scope: not defined by https://api.example.com/: no:pe"),
        ({"clientGrants": [{"client_id": "m", "audience": "a"},
                           {"client_id": "m", "audience": "a"}]},
         "clientGrants[1].audience: a grant for this client and audience is already defined"),
        ({"clientGrants": [{"client_id": "m", "audience": "a", "subject_type": "robot"}]},
         "clientGrants[0].subject_type: must be one of client, user"),
        # roles
        ({"roles": [{"description": "x"}]}, "tenant.yaml: roles[0].name: is required"),
        ({"roles": [{"name": "r", "permissions": [{"permission_name": "read:x"}]}]},
         "roles[0].permissions[0].resource_server_identifier: is required"),
        ({"resourceServers": [API], "roles": [{"name": "r", "permissions": [
            {"resource_server_identifier": API["identifier"], "permission_name": "write:x"}]}]},
         "roles[0].permissions[0].permission_name: 'write:x' is not a scope of "
         "https://api.example.com/"),
        ({"roles": [{"name": "r", "users": ["not-an-email"]}]},
         "roles[0].users[0]: 'not-an-email' is not an email address"),
        ({"roles": [{"name": "r"}, {"name": "r"}]}, "roles[1].name: a role of this name is alre"),
        # users
        ({"users": [{"password": "long enough password"}]}, "tenant.yaml: users[0].email: is req"),
        ({"users": [{**USER, "email": "nope"}]}, "users[0].email: 'nope' is not an email address"),
        ({"users": [{"email": "a@example.com"}]},
         "users[0].password: is required (or give an imported password_hash)"),
        ({"users": [{**USER, "password": "short"}]},
         "tenant.yaml: users[0].password: Password must be at least 8 characters long"),
        ({"users": [{**USER, "password": "A@example.com"}]},
         "users[0].password: Password must not be your email address"),
        ({"users": [{**USER, "password_hash": "$2b$10$" + "a" * 53}]},
         "users[0].password_hash: give either password or password_hash, not both"),
        ({"users": [{"email": "a@example.com", "password_hash": "md5:abc"}]},
         "users[0].password_hash: must be a bcrypt ($2a$, $2b$, $2y$) or argon2 hash"),
        ({"users": [{**USER, "user_id": "google-oauth2|123"}]},
         "users[0].user_id: database users' ids start with auth0|"),
        ({"users": [{**USER, "user_id": "has space"}]},
         "users[0].user_id: must be 1-255 characters without spaces"),
        ({"users": [{**USER, "connection": "google-oauth2"}]},
         "users[0].connection: only Username-Password-Authentication users"),
        ({"users": [USER, {**USER, "email": "A@Example.com"}]},
         "users[1].email: this email is already defined by users[0]"),
        ({"users": [{**USER, "user_metadata": ["x"]}]},
         "users[0].user_metadata: must be a mapping"),
        ({"users": [{**USER, "user_metadata": {"a.b": 1}}]},
         "users[0].user_metadata.a.b: metadata keys must not contain . or $"),
        ({"users": [{**USER, "app_metadata": {"nested": {"$where": 1}}}]},
         "users[0].app_metadata.nested.$where: metadata keys must not contain . or $"),
        ({"users": [{**USER, "app_metadata": {"blocked": True}}]},
         "users[0].app_metadata.blocked: is a reserved name"),
        ({"users": [{**USER, "email_verified": "true"}]},
         "users[0].email_verified: must be true or false"),
        ({"users": [{**USER, "phone_number": "555-1234"}]},
         "users[0].phone_number: must be in E.164 format"),
        ({"users": [{**USER, "picture": "javascript:x"}]},
         "users[0].picture: must be an absolute http(s) URL"),
        ({"users": [{**USER, "username": "alice"}]}, "users[0].username: unknown field"),
        # settings
        ({"settings": ["x"]}, "tenant.yaml: settings: must be a mapping"),
        ({"settings": {"default_audience": 5}}, "settings.default_audience: must be a string"),
        ({"settings": {"self_service": {"user_metadata": {"writable": 5}}}},
         "tenant.yaml: settings.self_service.user_metadata.writable must be a list"),
        ({"settings": {"rateLimits": {"preset": "nope"}}},
         "tenant.yaml: settings.rateLimits: unknown rate-limit preset 'nope'"),
        ({"settings": {"rateLimits": {"foo": 1}}}, "tenant.yaml: settings.rateLimits.foo: unknown"),
        ({"clients": [{**SPA, "self_service": {"bogus": 1}}]},
         "tenant.yaml: clients.spa1.self_service: unknown key 'bogus'"),
    ],
)  # fmt: skip
def test_errors_name_file_entry_and_field(doc: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(doc)
    assert message in str(info.value)
    assert str(info.value).startswith("tenant.yaml")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clients: [\n", "tenant.yaml:2:1: invalid YAML"),
        ("clients: []\nclients: []\n", "tenant.yaml:2:1: invalid YAML: duplicate key 'clients'"),
        ("users:\n  - email: a@example.com\n    email: b@example.com\n", "duplicate key 'email'"),
        ("users:\n  - !!python/object:os.system x\n", "invalid YAML"),
        ("settings: {when: !!binary aGk=}\n", "settings.when: bytes is not a JSON value"),
    ],
)
def test_yaml_errors_give_line_and_column(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_tenant(text, source="tenant.yaml")
    assert message in str(info.value)


def test_json_files_are_parsed_as_json() -> None:
    spec = parse_tenant(
        '{"users": [{"email": "A@x.io", "password": "long enough"}]}', source="t.json"
    )
    assert spec.users[0].email == "a@x.io"
    with pytest.raises(ConfigError, match=r"t\.json:1:12: invalid JSON"):
        parse_tenant('{"users": [}', source="t.json")
    with pytest.raises(ConfigError, match="duplicate key 'users'"):
        parse_tenant('{"users": [], "users": []}', source="t.json")


def test_empty_file_is_an_empty_tenant() -> None:
    assert parse_tenant("", source="t.yaml") == TenantSpec(source="t.yaml")


def test_yaml_dates_stay_strings() -> None:
    spec = parse({"users": [{**USER, "user_metadata": {"born": "1990-01-01"}}]})
    text = "users:\n  - {email: a@x.io, password: long enough, user_metadata: {born: 1990-01-01}}\n"
    assert parse_tenant(text).users[0].user_metadata == {"born": "1990-01-01"}
    assert spec.users[0].user_metadata == {"born": "1990-01-01"}


# --- substitution ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "environ", "expanded"),
    [
        ("plain", {}, "plain"),
        ("${A}", {"A": "1"}, "1"),
        ("pre-${A}-${B}-post", {"A": "x", "B": "y"}, "pre-x-y-post"),
        ("${A:-fallback}", {}, "fallback"),
        ("${A:-fallback}", {"A": ""}, "fallback"),
        ("${A:-fallback}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),
        ("${A}", {"A": ""}, ""),
        ("$${A}", {"A": "no"}, "${A}"),
        ("cost $5 and $", {}, "cost $5 and $"),
        ("${A:-x:-y}", {}, "x:-y"),
    ],
)
def test_expand_env(value: str, environ: dict[str, str], expanded: str) -> None:
    assert expand_env(value, environ) == expanded


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${MISSING}", "environment variable MISSING is not set"),
        ("${A", "unterminated ${"),
        ("${1A}", "${1A} is not a variable reference"),
        ("${A-default}", "${A-default} is not a variable reference"),
    ],
)
def test_expand_env_errors_name_the_field(value: str, message: str) -> None:
    doc = {"clients": [SPA, {**M2M, "client_secret": value}]}
    with pytest.raises(ConfigError) as info:
        parse(doc)
    assert str(info.value).startswith("tenant.yaml: clients[1].client_secret: ")
    assert message in str(info.value)


def test_substitution_reaches_nested_values_but_not_keys() -> None:
    doc = {
        "clients": [{**SPA, "callbacks": ["${ORIGIN}/cb"], "web_origins": ["${ORIGIN}"]}],
        "users": [{**USER, "user_metadata": {"deep": [{"v": "${V}"}]}}],
        "settings": {"${K}": "${V}"},
    }
    spec = parse(doc, {"ORIGIN": "http://127.0.0.1:5000", "K": "k", "V": "v"})
    assert spec.clients[0].callbacks == ("http://127.0.0.1:5000/cb",)
    assert spec.users[0].user_metadata == {"deep": [{"v": "v"}]}
    assert spec.settings == {"${K}": "v"}


def test_substituted_urls_are_still_validated() -> None:
    doc = {"clients": [{**SPA, "callbacks": ["${ORIGIN}/cb"]}]}
    with pytest.raises(ConfigError, match=r"clients\[0\]\.callbacks\[0\]: .*must use https"):
        parse(doc, {"ORIGIN": "http://evil.example"})


def test_issuer_placeholder_is_resolved_when_applied() -> None:
    spec = parse(
        {
            "settings": {"default_audience": "{issuer}api/v2/"},
            "resourceServers": [{"identifier": "{issuer}orders/", "scopes": [{"value": "r"}]}],
            "clientGrants": [{"client_id": "m", "audience": "{issuer}api/v2/", "scope": ["x"]}],
            "roles": [{"name": "r", "permissions": [
                {"resource_server_identifier": "{issuer}orders/", "permission_name": "r"}]}],
        }
    )  # fmt: skip
    resolved = spec.with_issuer("https://id.example/")
    assert resolved.settings["default_audience"] == "https://id.example/api/v2/"
    assert resolved.resource_servers[0].identifier == "https://id.example/orders/"
    assert resolved.client_grants[0].audience == "https://id.example/api/v2/"
    assert resolved.roles[0].permissions[0].resource_server_identifier == (
        "https://id.example/orders/"
    )
    assert spec.client_grants[0].audience == "{issuer}api/v2/"  # the spec itself is unchanged


# --- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin", "ok"),
    [
        ("https://app.example/cb", False, True),
        ("https://app.example/cb?x=1", False, True),
        ("http://localhost:3000", False, True),
        ("http://app.localhost:3000/cb", False, True),
        ("http://127.0.0.1:3000/cb", False, True),
        ("http://[::1]:3000/cb", False, True),
        ("https://*.example.com/cb", False, True),  # Auth0's subdomain wildcard
        ("com.example.app://callback", False, True),  # RFC 8252 §7.1 private-use scheme
        ("http://10.0.0.1/cb", False, False),
        ("http://localhost.evil.example/cb", False, False),
        ("javascript://example.com/%0aalert(1)", False, False),
        ("https://app.example", True, True),
        ("https://app.example:8443", True, True),
        ("http://127.0.0.1:3000", True, True),
        ("https://*.example.com", True, True),
        ("http://app.example", True, False),
        ("https://app.example/", True, False),
        ("https://app.example?x", True, False),
        ("https://*.com", True, False),
        ("com.example.app://cb", True, False),
    ],
)
def test_url_rules(url: str, origin: bool, ok: bool) -> None:
    assert (url_error(url, origin=origin) is None) is ok


# --- defaults and the demo file ------------------------------------------------------------------


def test_public_and_confidential_defaults() -> None:
    spec = parse({"clients": [SPA, M2M, {"name": "Web app", "app_type": "regular_web"}]})
    spa, m2m, web = spec.clients
    assert spa.token_endpoint_auth_method == "none" and spa.is_public
    assert spa.grant_types == ("authorization_code", "implicit", "refresh_token")
    assert spa.refresh_token.rotation_type == "rotating"
    assert spa.refresh_token.leeway == 10
    assert m2m.token_endpoint_auth_method == "client_secret_post"
    assert m2m.grant_types == ("client_credentials",)
    assert m2m.refresh_token.rotation_type == "non-rotating"
    assert web.client_id is None and web.client_secret is None
    assert "client_credentials" in web.grant_types
    assert web.config()["jwt_configuration"] == {
        "lifetime_in_seconds": 36_000,
        "alg": "RS256",
        "secret_encoded": False,
    }


def test_refresh_token_rotation_defaults_to_expiring() -> None:
    spec = parse(with_client(refresh_token={"rotation_type": "rotating", "leeway": 5}))
    rt = spec.clients[2].refresh_token
    assert (rt.rotation_type, rt.expiration_type, rt.leeway) == ("rotating", "expiring", 5)


def test_passthrough_fields_are_kept_and_secrets_hidden_from_repr() -> None:
    spec = parse(with_client(oidc_conformant=True, client_secret="very-secret-value"))
    assert spec.clients[2].config()["oidc_conformant"] is True
    assert "very-secret-value" not in repr(spec)
    spec = parse({"users": [{**USER, "password": "hidden password 1"}]})
    assert "hidden password 1" not in repr(spec)


def test_self_service_blocks_are_validated_and_kept() -> None:
    block = {"user_metadata": {"writable": ["theme"], "max_bytes": 2048}}
    spec = parse(
        {
            "settings": {"self_service": block, "rateLimits": {"preset": "auth0-free"}},
            "clients": [{**SPA, "self_service": {"current_user_tokens": False}}],
        }
    )
    assert spec.settings["self_service"] == block
    assert spec.clients[0].config()["self_service"] == {"current_user_tokens": False}


def test_user_fields_left_out_stay_unset() -> None:
    spec = parse({"users": [{**USER, "email": "Bob@Example.COM", "user_id": "abc123",
                             "email_verified": False, "name": "Bob"}]})  # fmt: skip
    user = spec.users[0]
    assert user.email == "bob@example.com"
    assert user.user_id == "auth0|abc123"
    assert user.given() == {"email_verified": False, "name": "Bob"}


def test_roles_accept_emails_and_user_ids() -> None:
    spec = parse({"roles": [{"name": "r", "users": ["Alice@Example.com", "auth0|abc"]}]})
    assert spec.roles[0].users == ("alice@example.com", "auth0|abc")


def test_demo_tenant_parses_with_and_without_the_secret_variable() -> None:
    text = DEMO.read_text()
    spec = parse_tenant(text, source="demo-tenant.yaml", environ={})
    m2m = next(c for c in spec.clients if c.app_type == "non_interactive")
    assert m2m.client_secret == "demo-m2m-secret"
    spec = parse_tenant(text, environ={"KEYSTEAD_DEMO_M2M_SECRET": "from-env"})
    assert next(c for c in spec.clients if c.client_id == m2m.client_id).client_secret == "from-env"
    spa = next(c for c in spec.clients if c.app_type == "spa")
    assert spa.is_public
    assert "http://127.0.0.1:3000" in spa.callbacks and "http://localhost:3000" in spa.web_origins
    assert {u.email for u in spec.users} == {"alice@example.com", "bob@example.com"}
    assert spec.client_grants[0].audience == "{issuer}api/v2/"
