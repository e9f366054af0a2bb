"""`keystead db purge` and the periodic purge task, on a SQLite file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from keystead.app import create_app
from keystead.cli import main
from keystead.deps import AppState
from keystead.housekeeping import purge_periodically
from keystead.settings import Settings
from tests.conftest import ISSUER


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("KEYSTEAD_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _ip_rows(path: Path, *ips: str) -> None:
    """Fully leaked suspicious-IP counts (no failures left): nothing reads them again."""
    con = sqlite3.connect(path)
    con.executemany(
        "INSERT INTO user_blocks (identifier, ip, connection, failures, updated_at) "
        "VALUES ('', ?, '', 0, 0)",
        [(ip,) for ip in ips],
    )
    con.commit()
    con.close()


def _count(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT count(*) FROM user_blocks").fetchone()[0])
    finally:
        con.close()


def test_db_purge_prints_counts_per_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "k.db"
    url = f"sqlite:///{path}"
    assert main(["db", "purge", "--db", url]) == 0  # migrates an empty database first
    capsys.readouterr()
    _ip_rows(path, "10.0.0.1", "10.0.0.2")
    assert main(["db", "purge", "--db", url, "--grace", "60"]) == 0
    lines = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert lines == {
        "authorization_codes": "0",
        "login_sessions": "0",
        "refresh_tokens": "0",
        "refresh_token_results": "0",
        "user_blocks": "2",
        "used_client_assertions": "0",
        "jobs": "0",
    }
    assert _count(path) == 0


@pytest.mark.parametrize("grace", ["-1", "soon"])
def test_db_purge_refuses_a_bad_grace(
    tmp_path: Path, capsys: pytest.CaptureFixture, grace: str
) -> None:
    assert main(["db", "purge", "--db", f"sqlite:///{tmp_path / 'k.db'}", "--grace", grace]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keystead: ") and "not a number of seconds" in err


async def test_the_periodic_purge_runs_and_stops_when_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    settings = Settings(
        issuer=ISSUER, database_url=f"sqlite:///{path}", data_dir=str(tmp_path)
    ).with_defaults()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state: AppState = app.state.keystead
        _ip_rows(path, "10.0.0.9")
        task = asyncio.create_task(purge_periodically(state, every=0.01))
        for _ in range(500):
            if _count(path) == 0:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert _count(path) == 0
