"""`python -m keystead` on bad input: one line on stderr, a non-zero exit, never a traceback.

Every case runs as a real subprocess; they are started together (module fixture) so the file
takes about as long as the slowest one.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from keystead.cli import main
from keystead.devtls import ensure_dev_tls


def _env() -> dict[str, str]:
    # The test machine's own KEYSTEAD_* must not leak into the cases.
    return {k: v for k, v in os.environ.items() if not k.startswith("KEYSTEAD_")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _corrupt_sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO t (v) VALUES (?)", [("x" * 200,)] * 200)
    con.commit()
    con.close()
    data = bytearray(path.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # smash the second page, keep the header
    path.write_bytes(bytes(data))


def _cases(tmp: Path, busy_port: int) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """name → (arguments, extra environment, text the one stderr line must contain)."""
    db = f"sqlite:///{tmp / 'ok.db'}"
    garbage = tmp / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    tls = ensure_dev_tls(tmp / "data")
    other = ensure_dev_tls(tmp / "other")  # a valid key that belongs to another certificate
    (tmp / "not-sqlite.db").write_bytes(b"hello, this is not a database" * 10)
    _corrupt_sqlite(tmp / "corrupt.db")
    bad_tenant = tmp / "bad-tenant.yaml"
    bad_tenant.write_text("clients:\n  - name: x\n    app_type: nope\n")
    serve = ["serve", "--db", db, "--data-dir", str(tmp / "data")]
    dead_pg = "postgresql://postgres@127.0.0.1:1/keystead"
    return {
        "unknown option": (["--bogus"], {}, "unrecognized arguments: --bogus"),
        "unknown serve option": (
            ["serve", "--prot", "80"],
            {},
            "unrecognized arguments: --prot 80",
        ),
        "no command": ([], {}, "choose a command"),
        "port not a number": (["serve", "--port", "http"], {}, "invalid int value: 'http'"),
        "port out of range": ([*serve, "--port", "70000"], {}, "port must be between"),
        "bad env value": (serve, {"KEYSTEAD_WORKERS": "many"}, "KEYSTEAD_WORKERS must be an"),
        "bad log level": ([*serve, "--log-level", "loud"], {}, "log level must be one of"),
        "malformed db url": (["serve", "--db", "::::"], {}, "malformed database URL"),
        "unsupported db": (["serve", "--db", "mysql://x/y"], {}, "unsupported database 'mysql'"),
        "not a sqlite file": (
            ["serve", "--db", f"sqlite:///{tmp / 'not-sqlite.db'}"],
            {},
            "is not a SQLite database",
        ),
        "corrupted sqlite file": (
            ["serve", "--db", f"sqlite:///{tmp / 'corrupt.db'}"],
            {},
            "refusing to touch it",
        ),
        "unreachable postgres": (["db", "upgrade", "--db", dead_pg], {}, "cannot use database"),
        "missing tenant file (serve)": (
            [*serve, "--tenant", str(tmp / "nope.yaml")],
            {},
            "nope.yaml: tenant file not found",
        ),
        "missing tenant file (apply)": (
            ["apply", "--db", db, str(tmp / "nope.yaml")],
            {},
            "tenant file not found",
        ),
        "tenant file is a directory": ([*serve, "--tenant", str(tmp)], {}, "is a directory"),
        "tenant file invalid": (
            ["apply", "--db", db, str(bad_tenant)],
            {},
            "bad-tenant.yaml: clients[0].app_type: must be one of",
        ),
        "tls cert garbage": (
            [*serve, "--tls-cert", str(garbage), "--tls-key", str(tls.key)],
            {},
            "is not a PEM certificate",
        ),
        "tls key garbage": (
            [*serve, "--tls-cert", str(tls.cert), "--tls-key", str(garbage)],
            {},
            "is not a PEM private key",
        ),
        "tls key of another cert": (
            [*serve, "--tls-cert", str(tls.cert), "--tls-key", str(other.key)],
            {},
            "does not match the certificate",
        ),
        "tls file missing": (
            [*serve, "--tls-cert", str(tmp / "no.pem"), "--tls-key", str(tls.key)],
            {},
            "does not exist",
        ),
        "tls cert without key": ([*serve, "--tls-cert", str(tls.cert)], {}, "given together"),
        "tls and dev tls": (
            [*serve, "--dev-tls", "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)],
            {},
            "either --tls-cert/--tls-key or --dev-tls",
        ),
        "busy port": ([*serve, "--port", str(busy_port)], {}, f"port {busy_port} on 127.0.0.1"),
        "keys without action": (["keys"], {}, "required: ACTION"),
    }


# What the issue names is checked in real processes (started together, so the file takes about
# as long as the slowest); the rest runs `main()` in process, the same code without the start-up.
IN_SUBPROCESS = [
    "unknown option", "malformed db url", "corrupted sqlite file", "missing tenant file (serve)",
    "busy port", "tls cert garbage",
]  # fmt: skip
CASE_NAMES = [
    "unknown serve option", "no command", "port not a number", "port out of range",
    "bad env value", "bad log level", "unsupported db", "not a sqlite file",
    "unreachable postgres", "missing tenant file (apply)", "tenant file is a directory",
    "tenant file invalid",
    "tls key garbage", "tls key of another cert", "tls file missing", "tls cert without key",
    "tls and dev tls", "keys without action", *IN_SUBPROCESS,
]  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The files every case refers to, and a listening socket for the busy-port case."""
    tmp = tmp_path_factory.mktemp("cli")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield tmp, _cases(tmp, busy.getsockname()[1])


@pytest.fixture(scope="module")
def subprocess_results(workdir):
    tmp, cases = workdir
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "keystead", *cases[name][0]],
            env={**_env(), **cases[name][1]},
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in IN_SUBPROCESS
    }
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=60)
        out[name] = (proc.returncode, stdout, stderr)
    return out


def _assert_one_clear_line(code, stdout, stderr, expected):
    assert code != 0
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("keystead: ")
    assert expected in lines[0]
    assert stdout == ""


@pytest.mark.parametrize("name", IN_SUBPROCESS)
def test_bad_input_in_a_real_process(workdir, subprocess_results, name):
    _assert_one_clear_line(*subprocess_results[name], workdir[1][name][2])


@pytest.mark.parametrize("name", [n for n in CASE_NAMES if n not in IN_SUBPROCESS])
def test_bad_input_in_process(workdir, monkeypatch, capsys, name):
    tmp, cases = workdir
    args, extra, expected = cases[name]
    for key in [k for k in os.environ if k.startswith("KEYSTEAD_")]:
        monkeypatch.delenv(key)
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp)
    code = main(args)
    out, err = capsys.readouterr()
    _assert_one_clear_line(code, out, err, expected)


def test_every_case_is_checked(workdir):
    assert sorted(workdir[1]) == sorted(CASE_NAMES)


def test_help_lists_the_commands():
    r = subprocess.run(
        [sys.executable, "-m", "keystead", "--help"],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0
    for command in ("serve", "apply", "keys", "db", "dev-ca"):
        assert command in r.stdout


def test_dev_ca_prints_only_the_ca_path(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "keystead", "dev-ca", "--data-dir", str(tmp_path / "d")],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.strip())
    assert path == (tmp_path / "d" / "dev-tls" / "ca.pem").resolve()
    assert path.read_text().startswith("-----BEGIN CERTIFICATE-----")
