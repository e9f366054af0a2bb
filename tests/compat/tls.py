"""A second live server, `keystead serve --dev-tls`, for the SDKs that only speak https.

auth0-python's `ManagementClient` and node `auth0`'s `ManagementClient` always build
`https://{domain}/…` (contract §13.2, §13.3), so they are tested here, trusting the server's
development CA through SSL_CERT_FILE / REQUESTS_CA_BUNDLE / NODE_EXTRA_CA_CERTS.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.compat.serving import free_port, keystead_serve

TENANT = Path(__file__).parent / "tenant.yaml"


@dataclass(frozen=True)
class LiveTlsServer:
    issuer: str  # https://127.0.0.1:<port>/
    port: int
    ca_path: Path  # the development CA certificate clients must trust
    env: dict[str, str]

    @property
    def domain(self) -> str:
        """What the SDKs take as `domain`: host and port, no scheme."""
        return f"127.0.0.1:{self.port}"

    def trust_env(self) -> dict[str, str]:
        """Environment variables that make Python and Node trust the development CA."""
        ca = str(self.ca_path)
        return {"SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca, "NODE_EXTRA_CA_CERTS": ca}


@contextmanager
def run_tls_server(tmp: Path, spa_origin: str) -> Iterator[LiveTlsServer]:
    port = free_port()
    env = {
        **os.environ,
        "KEYSTEAD_DATABASE_URL": f"sqlite:///{tmp / 'live-tls.db'}",
        "KEYSTEAD_DATA_DIR": str(tmp / "data"),
        "KEYSTEAD_SECRET_KEY": "compat-tls-secret-key",
        "KEYSTEAD_LOG_LEVEL": "warning",
        "SPA_ORIGIN": spa_origin,
    }
    # `keystead dev-ca` creates the CA and prints only its path; `serve --dev-tls` reuses it.
    made = subprocess.run(
        [sys.executable, "-m", "keystead", "dev-ca"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.fail(f"keystead dev-ca failed: {made.stderr[-2000:]}")
    ca_path = Path(made.stdout.strip())
    issuer = f"https://127.0.0.1:{port}/"
    args = ["--dev-tls", "--host", "127.0.0.1", "--port", str(port), "--tenant", str(TENANT)]
    # Verified against the dev CA: a healthy answer also proves the certificate chain.
    trust = ssl.create_default_context(cafile=str(ca_path))
    with keystead_serve(
        args, env=env, issuer=issuer, log_path=tmp / "server-tls.log", verify=trust
    ):
        yield LiveTlsServer(issuer=issuer, port=port, ca_path=ca_path, env=env)
