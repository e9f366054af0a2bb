"""Run `keystead serve` as a real process for the compatibility tests: start it, wait until
/healthz answers, stop it afterwards; a server that exits or never answers fails the test with
the end of its log."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def keystead_serve(
    args: Sequence[str],
    *,
    env: dict[str, str],
    issuer: str,
    log_path: Path,
    verify: ssl.SSLContext | bool = True,
) -> Iterator[None]:
    """`python -m keystead serve *args` with `env`, healthy at `issuer` inside the block."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keystead", "serve", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_healthy(proc, issuer, log_path, verify)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_healthy(
    proc: subprocess.Popen[bytes], issuer: str, log: Path, verify: ssl.SSLContext | bool
) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if proc.poll() is not None:
            pytest.fail(f"keystead serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(issuer + "healthz", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"keystead serve did not become healthy within {STARTUP_SECONDS} s")
        time.sleep(0.2)
