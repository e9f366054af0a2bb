"""A second live server, `keystead serve --dev-tls`, for the SDKs that only speak https.

auth0-python's `ManagementClient` and node `auth0`'s `ManagementClient` always build
`https://{domain}/…` (contract §13.2, §13.3), so they are tested here, trusting the server's
development CA through SSL_CERT_FILE / REQUESTS_CA_BUNDLE / NODE_EXTRA_CA_CERTS.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def run_tls_server(tmp: Path, spa_origin: str) -> Iterator[LiveTlsServer]:
    port = _free_port()
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
    log_path = tmp / "server-tls.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keystead", "serve", "--dev-tls", "--host", "127.0.0.1",
             "--port", str(port), "--tenant", str(TENANT)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        issuer = f"https://127.0.0.1:{port}/"
        try:
            _wait_healthy(proc, issuer, ca_path, log_path)
            yield LiveTlsServer(issuer=issuer, port=port, ca_path=ca_path, env=env)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_healthy(proc: subprocess.Popen[bytes], issuer: str, ca: Path, log: Path) -> None:
    # Verified against the dev CA: a healthy answer also proves the certificate chain.
    trust = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"keystead serve --dev-tls exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(issuer + "healthz", timeout=1, verify=trust).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("keystead serve --dev-tls did not become healthy within 60 s")
        time.sleep(0.2)
