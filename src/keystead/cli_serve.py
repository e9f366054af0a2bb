"""`keystead serve`: check what can be checked, prepare the database once, then run uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from keystead import __version__
from keystead.cli_support import (
    apply_file,
    check_database_url,
    check_tenant_file,
    open_state,
    shown_url,
)
from keystead.errors import ConfigError
from keystead.settings import Settings


def cmd_serve(_args: argparse.Namespace, settings: Settings) -> int:
    from keystead import server
    from keystead.logconfig import check_level, configure

    # 1. Everything that can be checked without the database, cheapest first.
    check_level(settings.log_level)
    if settings.dev_tls and settings.tls_cert:
        raise ConfigError("use either --tls-cert/--tls-key or --dev-tls, not both")
    check_database_url(settings.database_url)
    if settings.tenant_file:
        check_tenant_file(settings.tenant_file)
    certfile, keyfile, ca_path = _tls_files(settings)
    server.check_port_free(settings.host, settings.port)

    # 2. Migrate, create keys and apply the tenant once, before any worker starts.
    configure(settings.log_level)
    asyncio.run(_prepare(settings))

    # 3. Tell the user, then hand over to uvicorn.
    _banner(settings, ca_path)
    if not settings.secret_key:
        _warn_no_secret_key()
    _warn_about_mail(settings)
    # The tenant was applied above; workers must not apply it again.
    server.run(replace(settings, tenant_file=""), ssl_certfile=certfile, ssl_keyfile=keyfile)
    return 0


def _tls_files(settings: Settings) -> tuple[str | None, str | None, Path | None]:
    from keystead.devtls import ensure_dev_tls
    from keystead.server import check_tls_files

    if settings.tls_cert:
        check_tls_files(settings.tls_cert, settings.tls_key)
        return settings.tls_cert, settings.tls_key, None
    if settings.dev_tls:
        extra = [urlsplit(settings.issuer).hostname or ""]
        if settings.host not in ("0.0.0.0", "::"):
            extra.append(settings.host)
        tls = ensure_dev_tls(settings.data_dir, extra)
        return str(tls.cert), str(tls.key), tls.ca_cert.resolve()
    return None, None, None


async def _prepare(settings: Settings) -> None:
    async with open_state(settings) as state:
        if settings.tenant_file:
            print(await apply_file(state, settings.tenant_file), flush=True)


def _banner(settings: Settings, ca_path: Path | None) -> None:
    scheme = "https" if settings.tls_enabled else "http"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    workers = f"{settings.workers} worker" + ("s" if settings.workers > 1 else "")
    lines = [
        f"Keystead {__version__}",
        f"  issuer     {settings.issuer}",
        f"  listening  {scheme}://{host}:{settings.port} ({workers})",
        f"  database   {shown_url(settings.database_url)}",
    ]
    if ca_path is not None:
        lines.append(f"  dev CA     {ca_path}  (trust it: SSL_CERT_FILE / NODE_EXTRA_CA_CERTS)")
    print("\n".join(lines), flush=True)


def _warn_about_mail(settings: Settings) -> None:
    from keystead.mail import startup_warning

    warning = startup_warning(settings)
    if warning is not None:
        bar = "!" * 78
        print(f"{bar}\n!! WARNING: {warning}\n{bar}", file=sys.stderr, flush=True)


def _warn_no_secret_key() -> None:
    bar = "!" * 78
    print(
        f"{bar}\n"
        "!! WARNING: KEYSTEAD_SECRET_KEY is not set.\n"
        "!! Signing keys and client secrets are stored UNENCRYPTED in the database.\n"
        "!! Fine for local development; set a long random KEYSTEAD_SECRET_KEY elsewhere.\n"
        f"{bar}",
        file=sys.stderr,
        flush=True,
    )
