"""A real `keystead serve` process on 127.0.0.1 for the SDK compatibility and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).parent
NODE_DIR = HERE / "node"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keystead",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tenant",
            str(HERE / "tenant.yaml"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    issuer = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"keystead serve exited: {(tmp / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(issuer + "healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("keystead serve did not become healthy within 60 s")
            time.sleep(0.2)
        yield LiveServer(issuer=issuer, port=port, spa_origin=spa_origin, env=env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
