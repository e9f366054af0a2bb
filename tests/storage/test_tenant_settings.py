"""TenantSettings repository: named JSON documents."""

from __future__ import annotations

from keystead.storage.repositories import Repositories


async def test_get_set_and_all(repos: Repositories) -> None:
    settings = repos.tenant_settings
    assert await settings.get("self_service") is None
    await settings.set("self_service", {"fields": ["given_name"], "nested": {"a": [1, 2]}})
    await settings.set("rate_limits", {"preset": "free"})
    assert await settings.get("self_service") == {"fields": ["given_name"], "nested": {"a": [1, 2]}}
    await settings.set("rate_limits", {"preset": "paid"})
    assert await settings.all() == {
        "rate_limits": {"preset": "paid"},
        "self_service": {"fields": ["given_name"], "nested": {"a": [1, 2]}},
    }


async def test_returned_documents_are_copies(repos: Repositories) -> None:
    value = {"list": [1]}
    await repos.tenant_settings.set("doc", value)
    value["list"].append(2)
    got = await repos.tenant_settings.get("doc")
    assert got == {"list": [1]}
    assert got is not None
    got["list"].append(3)
    assert await repos.tenant_settings.get("doc") == {"list": [1]}
