"""A real `keystead serve` process on 127.0.0.1 for the SDK compatibility and browser tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.compat.serving import free_port, keystead_serve
from tests.compat.tls import LiveTlsServer, run_tls_server
from tests.conftest import IN_CI

HERE = Path(__file__).parent
NODE_DIR = HERE / "node"


@dataclass(frozen=True)
class LiveServer:
    issuer: str  # with trailing slash
    port: int
    spa_origin: str
    env: dict[str, str]

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def spa_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, spa_port: int) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    port = free_port()
    spa_origin = f"http://127.0.0.1:{spa_port}"
    env = {
        **os.environ,
        "KEYSTEAD_DATABASE_URL": f"sqlite:///{tmp / 'live.db'}",
        "KEYSTEAD_DATA_DIR": str(tmp / "data"),
        "KEYSTEAD_SECRET_KEY": "compat-test-secret-key",
        "KEYSTEAD_LOG_LEVEL": "warning",
        "SPA_ORIGIN": spa_origin,
    }
    issuer = f"http://127.0.0.1:{port}/"
    args = ["--host", "127.0.0.1", "--port", str(port), "--tenant", str(HERE / "tenant.yaml")]
    with keystead_serve(args, env=env, issuer=issuer, log_path=tmp / "server.log"):
        yield LiveServer(issuer=issuer, port=port, spa_origin=spa_origin, env=env)


# --- the --dev-tls server and the Node SDK scripts (test_node_management.py, …) ---------------


@pytest.fixture(scope="session")
def live_tls_server(
    tmp_path_factory: pytest.TempPathFactory, spa_port: int
) -> Iterator[LiveTlsServer]:
    """`keystead serve --dev-tls` with the same tenant; issuer https://127.0.0.1:<port>/."""
    with run_tls_server(tmp_path_factory.mktemp("live-tls"), f"http://127.0.0.1:{spa_port}") as s:
        yield s


def need_node_sdks(*packages: str) -> None:
    """Skip outside CI when node or the npm packages are missing; fail under CI=true."""
    missing = [] if shutil.which("node") else ["node"]
    missing += [
        f"npm package {p} (npm ci in tests/compat/node)"
        for p in packages
        if not (NODE_DIR / "node_modules" / p / "package.json").exists()
    ]
    if not missing:
        return
    if IN_CI:
        pytest.fail("compat tests need " + ", ".join(missing))
    pytest.skip("compat tests need " + ", ".join(missing))


def run_node_script(
    script: str, config: dict[str, Any], *, env: dict[str, str] | None = None, timeout: float = 60
) -> dict[str, Any]:
    """Run tests/compat/node/<script> with KS_CONFIG=config; return the one JSON it prints."""
    proc = subprocess.Popen(
        ["node", str(NODE_DIR / script)],
        cwd=NODE_DIR,
        env={**os.environ, **(env or {}), "KS_CONFIG": json.dumps(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    if not stdout:
        raise AssertionError(
            f"{script} printed nothing (exit {proc.returncode}): {stderr.decode()[-2000:]}"
        )
    result: dict[str, Any] = json.loads(stdout)
    assert "error" not in result, json.dumps(result)[:4000]
    return result
