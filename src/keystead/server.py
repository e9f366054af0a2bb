"""Process start-up: uvicorn (uvloop + httptools) serving `create_app`, one or many workers.

uvicorn re-imports `asgi_app` in every worker, so the CLI hands its resolved settings to the
workers through `KEYSTEAD_*` variables (`settings_env`) rather than through Python objects.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from keystead.errors import ConfigError
from keystead.logconfig import configure, log_config
from keystead.settings import Settings


def asgi_app() -> Starlette:
    """uvicorn factory (`keystead.server:asgi_app`): settings from the environment, then the app."""
    from keystead.app import create_app  # the app's imports are only paid where they are used

    settings = Settings.from_env().with_defaults()
    configure(settings.log_level)
    return create_app(settings)


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as its `KEYSTEAD_*` variable, readable back by `Settings.from_env`."""
    env: dict[str, str] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        env["KEYSTEAD_" + f.name.upper()] = text
    return env


def check_tls_files(cert: str, key: str) -> None:
    """Load the pair as the server will, so a bad file is one clear line before start-up."""
    for label, path in (("certificate", cert), ("key", key)):
        if not os.path.isfile(path):
            raise ConfigError(f"TLS {label} file {path} does not exist")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"TLS {label} file {path} is not readable")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError:
        raise ConfigError(_tls_problem(cert, key)) from None
    except OSError as exc:
        raise ConfigError(f"TLS files {cert}, {key}: {exc.strerror or exc}") from None


def _tls_problem(cert: str, key: str) -> str:
    """OpenSSL says only "PEM lib"; name which file is wrong and how."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        x509.load_pem_x509_certificates(Path(cert).read_bytes())
    except ValueError:
        return f"TLS certificate file {cert} is not a PEM certificate"
    try:
        load_pem_private_key(Path(key).read_bytes(), password=None)
    except TypeError:
        return f"TLS key file {key} is encrypted; give an unencrypted PEM key"
    except (ValueError, UnsupportedAlgorithm):
        return f"TLS key file {key} is not a PEM private key"
    return f"TLS key file {key} does not match the certificate in {cert}"


def check_port_free(host: str, port: int) -> None:
    """Bind and release every address uvicorn will, so a busy port is one clear line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    addresses = list(dict.fromkeys((info[0], info[4]) for info in infos))
    for family, address in addresses:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # The options asyncio's create_server sets, so the answer matches uvicorn's bind.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ConfigError(
                        f"port {port} on {host} is already in use; pick another with --port"
                    ) from None
                if exc.errno == errno.EADDRNOTAVAIL and len(addresses) > 1:
                    continue  # asyncio skips a family the machine lacks (e.g. no IPv6)
                raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


GRACEFUL_SHUTDOWN_SECONDS = 5


def run(
    settings: Settings,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Serve until interrupted. `settings` must have passed `with_defaults()`."""
    import uvicorn

    # Workers (and the single in-process server alike) rebuild Settings from these.
    os.environ.update(environ if environ is not None else settings_env(settings))
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "factory": True,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "workers": settings.workers,
        "log_config": log_config(settings.log_level),
        "log_level": settings.log_level,
        "server_header": False,
        "ssl_certfile": ssl_certfile,
        "ssl_keyfile": ssl_keyfile,
        # On stop, wait this long for open requests; an idle TLS keep-alive would otherwise
        # hold the shutdown for uvloop's 30 s TLS close.
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }
    uvicorn.run("keystead.server:asgi_app", **options)
