"""Static server for the auth0-spa-js test page, and the Chromium driver."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import NODE_DIR, live_server, spa_port  # noqa: F401  (fixtures)
from tests.conftest import IN_CI

HERE = Path(__file__).parent
SPA_BUNDLE = NODE_DIR / "node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js"
CHROMIUM = "/usr/bin/chromium"


def need_browser() -> None:
    missing = [
        what
        for what, ok in (
            ("Debian's chromium (/usr/bin/chromium)", Path(CHROMIUM).exists()),
            ("node", shutil.which("node") is not None),
            ("npm packages (npm ci in tests/compat/node)", SPA_BUNDLE.exists()),
        )
        if not ok
    ]
    if not missing:
        return
    if IN_CI:
        pytest.fail("browser tests need " + ", ".join(missing))
    pytest.skip("browser tests need " + ", ".join(missing))


class _PageHandler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/auth0-spa-js.production.js":
            body, kind = SPA_BUNDLE.read_bytes(), "text/javascript"
        else:  # every other path is the single page (/, /callback, /logged-out)
            body, kind = (HERE / "index.html").read_bytes(), "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def spa_server(spa_port: int) -> Iterator[str]:  # noqa: F811
    need_browser()
    server = ThreadingHTTPServer(("127.0.0.1", spa_port), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{spa_port}"
    server.shutdown()


def drive(config: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """Run drive.mjs in its own process group so that a timeout kills Chromium too."""
    proc = subprocess.Popen(
        ["node", str(HERE / "drive.mjs")],
        env={**os.environ, "KS_CONFIG": json.dumps(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        raise
    if not stdout:
        raise AssertionError(f"drive.mjs printed nothing: {stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(stdout)
    return result


ASK = "ks-ask "


def drive_asking(
    config: dict[str, Any], answer: Callable[[str], str], timeout: float = 120
) -> dict[str, Any]:
    """drive.mjs for a scenario that asks the test for input as it goes (the codes of the MFA
    scenario): each `ks-ask {"ask": what}` line on its stdout is answered with answer(what) on
    its stdin at that moment; the result is the JSON printed last. A timeout kills Chromium too."""
    proc = subprocess.Popen(
        ["node", str(HERE / "drive.mjs")],
        env={**os.environ, "KS_CONFIG": json.dumps(config)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
    assert stdin is not None and stdout is not None and stderr is not None
    errors: list[str] = []  # read aside, so that a full stderr pipe never stalls the driver
    reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
    reader.start()
    timer = threading.Timer(timeout, os.killpg, (proc.pid, 9))
    timer.start()
    printed: list[str] = []
    try:
        for line in stdout:
            if line.startswith(ASK):
                stdin.write(answer(json.loads(line[len(ASK) :])["ask"]) + "\n")
                stdin.flush()
            else:
                printed.append(line)
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    reader.join(5)
    if not "".join(printed).strip():
        raise AssertionError(
            f"drive.mjs printed nothing (exit {proc.returncode}): {''.join(errors)[-2000:]}"
        )
    result: dict[str, Any] = json.loads(printed[-1])
    return result
