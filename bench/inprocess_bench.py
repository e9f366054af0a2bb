"""CPU cost of one request per endpoint, in one process, no HTTP server (not a test: prints only).

    .venv/bin/python bench/inprocess_bench.py [--db sqlite|postgresql] [-n 2000]
        [--only cc,refresh,users] [--profile cprofile|pyinstrument] [--top 30] [--src DIR]
        [--concurrency 1]

The app from `create_app` runs in this process with its lifespan (migrations, keys, limiter)
and the bench tenant of http_bench.py; each request is one ASGI call made by hand (no client
library in the measurement). Printed per scenario: µs of wall time and of CPU time per request
(`time.process_time`, all threads: aiosqlite does its SQL in a thread of its own), and the
statements it sends to the database. With one request at a time nothing contends, so these
figures move little when the machine is busy with other work, unlike http_bench.py's req/s;
multiplied out they give the ceiling one core can reach. `--profile` then profiles another
`-n` requests (cProfile: top functions by own and cumulative time; pyinstrument: call tree).

`--src DIR` puts a scratch copy of src/ first on sys.path, to measure a change before
proposing it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

# `--src` must win over the editable install before keystead is imported.
if "--src" in sys.argv:
    sys.path.insert(0, sys.argv[sys.argv.index("--src") + 1])

import http_bench as hb  # bench/ is this script's directory

ISSUER = "http://127.0.0.1:18080/"
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Call:
    """One prepared ASGI request; `await call(app)` returns the status."""

    def __init__(
        self, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        raw = [(b"host", b"127.0.0.1:18080")]
        if body:
            raw.append((b"content-type", b"application/x-www-form-urlencoded"))
            raw.append((b"content-length", str(len(body)).encode()))
        raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        path_part, _, query = path.partition("?")
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path_part.replace("%7C", "|"),
            "raw_path": path_part.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": raw,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 18080),
        }
        self.body = body

    async def __call__(self, app: Any) -> int:
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)  # a disconnect would only come after the response
            sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(dict(self.scope), receive, send)
        return status


class Statements:
    """Counts the statements sent to the database (SQLAlchemy's before_cursor_execute)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

        self.hops = 0  # aiosqlite runs each DB-API call in its thread: one hop each
        with contextlib.suppress(ImportError):
            import aiosqlite.core

            inner = aiosqlite.core.Connection._execute

            async def counted(conn: Any, fn: Any, *a: Any, **kw: Any) -> Any:
                self.hops += 1
                return await inner(conn, fn, *a, **kw)

            aiosqlite.core.Connection._execute = counted  # type: ignore[method-assign]

    def _seen(self, *_args: Any) -> None:
        self.count += 1


def calls(creds: dict[str, Any], tokens: dict[str, str], n: int) -> dict[str, Callable[[], Call]]:
    """A fresh Call per request; single-use credentials are taken in order."""
    cc = urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": hb.M2M_ID,
            "client_secret": hb.M2M_SECRET,
            "audience": hb.API,
        }
    ).encode()
    codes = iter(creds["codes"])
    refresh = iter(creds["refresh"])
    redirect = quote(hb.REDIRECT, "")
    user_path = f"/api/v2/users/{quote(hb.USER_ID)}"

    def code() -> Call:
        body = (
            f"grant_type=authorization_code&client_id={hb.SPA_ID}&redirect_uri={redirect}"
            f"&code_verifier={hb.VERIFIER}&code={next(codes)}"
        )
        return Call("POST", "/oauth/token", body=body.encode())

    def rotate() -> Call:
        body = f"grant_type=refresh_token&client_id={hb.SPA_ID}&refresh_token={next(refresh)}"
        return Call("POST", "/oauth/token", body=body.encode())

    fixed = {
        "cc": Call("POST", "/oauth/token", body=cc),
        "userinfo": Call("GET", "/userinfo", headers={"authorization": "Bearer " + tokens["ui"]}),
        "users": Call("GET", user_path, headers={"authorization": "Bearer " + tokens["m2m"]}),
        "users_self": Call("GET", user_path, headers={"authorization": "Bearer " + tokens["self"]}),
        "discovery": Call("GET", "/.well-known/openid-configuration"),
        "jwks": Call("GET", "/.well-known/jwks.json"),
    }
    made: dict[str, Callable[[], Call]] = {k: (lambda c=c: c) for k, c in fixed.items()}
    made["code"] = code
    made["refresh"] = rotate
    return made


async def json_of(app: Any, call: Call) -> dict[str, Any]:
    import json

    chunks: list[bytes] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": call.body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(dict(call.scope), receive, send)
    out: dict[str, Any] = json.loads(b"".join(chunks))
    return out


async def bench(args: argparse.Namespace, db_url: str) -> None:
    from keystead.app import create_app
    from keystead.settings import Settings

    tenant = Path(tempfile.mkdtemp(prefix="keystead-inprocess-")) / "tenant.yaml"
    tenant.write_text(hb.TENANT)
    env = {**os.environ, "PYTHONPATH": args.src} if args.src else None
    subprocess.run(
        [str(hb.KEYSTEAD), "apply", str(tenant), "--db", db_url, "--issuer", ISSUER],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    shutil.rmtree(tenant.parent)
    settings = Settings(
        database_url=db_url,
        issuer=ISSUER,
        secret_key=os.environ["KEYSTEAD_SECRET_KEY"],
        rate_limit_preset="off",
        bruteforce_max_attempts=0,
        suspicious_ip_login_limit="off",
        log_level="warning",
    ).with_defaults()
    app = create_app(settings)
    n = args.n
    only = set(filter(None, args.only.split(",")))
    wanted = lambda s: not only or s in only  # noqa: E731
    need = (n * 2 + 200) if wanted("code") or wanted("refresh") else 0
    async with app.router.lifespan_context(app):
        creds = await hb.make_credentials(db_url, ISSUER, need, need)
        exchange = (
            f"grant_type=authorization_code&client_id={hb.SPA_ID}"
            f"&redirect_uri={quote(hb.REDIRECT, '')}&code_verifier={hb.VERIFIER}&code="
        )
        ui_body = (exchange + creds["userinfo_code"]).encode()
        ui = await json_of(app, Call("POST", "/oauth/token", body=ui_body))
        self_body = (exchange + creds["self_code"]).encode()
        self_tok = await json_of(app, Call("POST", "/oauth/token", body=self_body))
        m2m_body = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": hb.M2M_ID,
                "client_secret": hb.M2M_SECRET,
                "audience": ISSUER + "api/v2/",
            }
        ).encode()
        m2m = await json_of(app, Call("POST", "/oauth/token", body=m2m_body))
        tokens = {"ui": ui["access_token"], "self": self_tok["access_token"]}
        tokens["m2m"] = m2m["access_token"]
        made = calls(creds, tokens, n)
        statements = Statements(app.state.keystead.engine)
        print(
            f"in-process, {db_url.split(':')[0]}, {n} requests each, concurrency "
            f"{args.concurrency}; load {hb.load()}; RSA-2048 sign {hb.rsa_us():.0f} µs"
        )
        order = ["cc", "code", "refresh", "userinfo", "users", "users_self", "discovery", "jwks"]
        for name in order:
            if not wanted(name):
                continue
            make = made[name]
            await run(app, make, min(200, n // 5), args.concurrency)  # warm-up
            before, hops = statements.count, statements.hops
            wall, cpu, bad = await run(app, make, n, args.concurrency)
            per = (statements.count - before) / n
            hop = f"{(statements.hops - hops) / n:4.1f} thread hops/req" if statements.hops else ""
            print(
                f"  {name:<11} wall {wall / n * 1e6:7.0f} µs/req  cpu {cpu / n * 1e6:7.0f} µs/req"
                f"  → {n / cpu:6.0f} req/s per core   {per:4.1f} statements/req {hop}"
                f"  non-2xx {bad}  [load {hb.load()}]"
            )
            if args.profile:
                await profiled_run(args, app, make, n, name)


async def run(
    app: Any, make: Callable[[], Call], n: int, concurrency: int
) -> tuple[float, float, int]:
    bad = 0

    async def one(count: int) -> None:
        nonlocal bad
        for _ in range(count):
            if not 200 <= await make()(app) < 300:
                bad += 1

    t, c = time.perf_counter(), time.process_time()
    share = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    await asyncio.gather(*(one(k) for k in share))
    return time.perf_counter() - t, time.process_time() - c, bad


async def profiled_run(
    args: argparse.Namespace, app: Any, make: Callable[[], Call], n: int, name: str
) -> None:
    if args.profile == "pyinstrument":
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0002, async_mode="enabled")
        prof.start()
        await run(app, make, n, args.concurrency)
        prof.stop()
        print(prof.output_text(unicode=True, color=False, show_all=False))
        return
    # cprofile-cpu: CPU time (all threads) instead of wall time, so time spent waiting for
    # the database, or for a CPU the machine's other work holds, is not charged to a function.
    pr = (
        cProfile.Profile(time.process_time)
        if args.profile == "cprofile-cpu"
        else cProfile.Profile()
    )
    pr.enable()
    await run(app, make, n, args.concurrency)
    pr.disable()
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(pr, stream=out).sort_stats(key)
        stats.print_stats(args.top)
        text = out.getvalue()
        body = text[text.find("ncalls") :]
        print(f"  --- {name}: top {args.top} by {key} ({n} requests)\n{body}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("-n", type=int, default=2000, help="requests per scenario")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight")
    parser.add_argument("--profile", choices=("cprofile", "cprofile-cpu", "pyinstrument"))
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--src", default="", help="import keystead from this copy of src/")
    args = parser.parse_args()
    os.environ.setdefault("KEYSTEAD_SECRET_KEY", "bench-secret-key-0123456789abcdef0123456789")
    tmp = Path(tempfile.mkdtemp(prefix="keystead-inprocess-"))
    try:
        with hb.database(args.db, tmp) as db_url:
            asyncio.run(bench(args, db_url))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
