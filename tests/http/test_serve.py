"""Smoke test of the real process: `keystead serve` starts, answers, and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

START_TIMEOUT = 60.0  # seconds; generous for a loaded CI machine, normally about two


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(tmp: Path, *args: str, verify: ssl.SSLContext | bool = True) -> Iterator[str]:
    """Run `python -m keystead serve` on a free port; yield its base URL once /healthz answers."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTEAD_")}
    log = tmp / "serve.log"
    tls = "--dev-tls" in args
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keystead", "serve", "--port", str(port),
             "--db", f"sqlite:///{tmp / 'keystead.db'}", "--data-dir", str(tmp / "data"), *args],
            env=env, cwd=tmp, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert proc.poll() is None, f"server exited early:\n{log.read_text()}"
            try:
                if httpx.get(f"{base}/healthz", verify=verify, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no /healthz answer:\n{log.read_text()}"
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()


TENANT = """\
clients:
  - client_id: SmokeTestM2M00000000000000000001
    name: Smoke test
    app_type: non_interactive
    client_secret: smoke-test-secret
    grant_types: [client_credentials]
"""


def test_serve_applies_the_tenant_and_answers_discovery_and_jwks(tmp_path):
    (tmp_path / "tenant.yaml").write_text(TENANT)
    with serving(tmp_path, "--tenant", str(tmp_path / "tenant.yaml")) as base:
        discovery = httpx.get(f"{base}/.well-known/openid-configuration").json()
        jwks = httpx.get(discovery["jwks_uri"]).json()
    assert discovery["issuer"] == f"{base}/"
    assert discovery["token_endpoint"] == f"{base}/oauth/token"
    assert jwks["keys"] and all(key["kid"] for key in jwks["keys"])
    output = (tmp_path / "serve.log").read_text()
    assert f"issuer     {base}/" in output
    assert "tenant.yaml: clients 1 created" in output
    assert "KEYSTEAD_SECRET_KEY is not set" in output


def test_dev_tls_serves_https_trusted_through_the_dev_ca(tmp_path):
    # The CA exists before the server starts, as after `keystead dev-ca`; serve must reuse it.
    ca = subprocess.run(
        [sys.executable, "-m", "keystead", "dev-ca", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ca_before = Path(ca).read_bytes()
    trust = ssl.create_default_context(cafile=ca)
    with serving(tmp_path, "--dev-tls", "--workers", "2", verify=trust) as base:
        discovery = httpx.get(f"{base}/.well-known/openid-configuration", verify=trust).json()
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/healthz")  # the system trust store alone does not know the CA
    assert discovery["issuer"] == f"{base}/"
    assert base.startswith("https://")
    assert Path(ca).read_bytes() == ca_before
