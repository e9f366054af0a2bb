"""HTTP throughput of the hot endpoints against a real `keystead serve` (not a test: prints only).

    .venv/bin/python bench/http_bench.py [--db sqlite|postgresql] [--duration 10] [--warmup 3]
        [--connections 64] [--threads 1] [--workers 2] [--only cc,code,refresh,...] [--peer]
        [--port 18080] [--keep]

Starts `keystead serve --workers N` on a scratch database (SQLite: a temp file; PostgreSQL:
database keystead_http_bench at 127.0.0.1:5432, created here and dropped after) with a bench
tenant: a confidential M2M client with client grants, a SPA (rotating refresh tokens, the
default 10 s leeway), a user and an API with allow_offline_access. Rate limits are off
(`--rate-limit-preset off`), brute-force protection too, log level warning.

Authorization codes and refresh tokens are single use, so N of each are created beforehand
directly through the repositories (`SqlCodes.create`, `SqlRefreshTokens.create`), and the wrk
Lua script walks through them, one per request. Bearer tokens for /userinfo and the Management
API are minted once through /oauth/token.

Load: `wrk` (Debian package) with `--connections` connections for `--duration` seconds after a
`--warmup`, per scenario. Printed per scenario: req/s, p50/p99 latency, errors (non-2xx and
socket errors; must be 0), the workers' CPU time per request (less sensitive to other load on
the machine than req/s) and the 1-minute load average. Also: RSS/USS per worker idle and after
load, and one hosted-page password login against one argon2id verification.

`--peer` also runs node `oidc-provider` (bench/peer/, `npm ci` there first) with the same worker
count and the same client-credentials load, and prints the Keystead/peer ratio.

`--floor` also runs bench/floor_app.py on the same uvicorn and worker count: a bare ASGI app that
parses the form and signs one (client credentials) or two (code exchange) RS256 tokens, or two
and a bare SQLite rotation (refresh), and nothing else, the ceiling of any Python token endpoint
here; prints Keystead/floor ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import html
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
KEYSTEAD = ROOT / ".venv" / "bin" / "keystead"
PEER_DIR = Path(__file__).resolve().parent / "peer"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_DATABASE = "keystead_http_bench"

M2M_ID = "BenchM2MClient000000000000000001"
M2M_SECRET = "bench-m2m-secret-0123456789abcdef"
SPA_ID = "BenchSpaClient000000000000000001"
REDIRECT = "http://127.0.0.1:3000/callback"
API = "https://api.bench.test/"
USER_ID = "auth0|bench0000000000000000000001"
USER_EMAIL = "ada@bench.test"
USER_PASSWORD = "Bench-Passw0rd-ada"
VERIFIER = "bench-verifier-" + "x" * 40  # one PKCE verifier for every pre-made code
USER_SCOPE = ("openid", "profile", "email", "offline_access", "read:things")

TENANT = f"""
clients:
  - client_id: {M2M_ID}
    name: Bench machine client
    app_type: non_interactive
    client_secret: {M2M_SECRET}
    grant_types: [client_credentials]
  - client_id: {SPA_ID}
    name: Bench SPA
    app_type: spa
    callbacks: ["{REDIRECT}"]
    web_origins: ["http://127.0.0.1:3000"]
    allowed_origins: ["http://127.0.0.1:3000"]
    grant_types: [authorization_code, refresh_token]
resourceServers:
  - identifier: {API}
    name: Bench API
    signing_alg: RS256
    allow_offline_access: true
    scopes:
      - {{value: "read:things", description: Read things}}
      - {{value: "write:things", description: Write things}}
clientGrants:
  - client_id: {M2M_ID}
    audience: "{{issuer}}api/v2/"
    scope: [read:users, update:users, read:clients]
  - client_id: {M2M_ID}
    audience: {API}
    scope: [read:things, write:things]
users:
  - user_id: "{USER_ID}"
    email: {USER_EMAIL}
    password: "{USER_PASSWORD}"
    email_verified: true
    name: Ada Lovelace
    user_metadata: {{theme: dark}}
    app_metadata: {{plan: pro}}
"""

# One Lua file serves every scenario: a fixed request, or one line of a file per request.
# `done` prints one JSON line that the script parses (wrk counts status > 399 as errors).
LUA = r"""
local counter, threads = 0, {}
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
local items, n, i, prefix, method, path, headers, body = {}, 0, 0, nil, nil, nil, nil, nil
init = function(args)
  method, path, prefix = args[1], args[2], args[3]
  body = args[5] or ""
  headers = {}
  if method == "POST" then headers["Content-Type"] = "application/x-www-form-urlencoded" end
  if args[6] and args[6] ~= "" then headers["Authorization"] = args[6] end
  if args[4] and args[4] ~= "" then
    local k = 0
    for line in io.lines(args[4]) do
      if k % nthreads == id then n = n + 1; items[n] = line end
      k = k + 1
    end
  end
end
exhausted = 0
request = function()
  if n == 0 then return wrk.format(method, path, headers, body) end
  i = i + 1
  if i > n then exhausted = exhausted + 1; i = n end
  return wrk.format(method, path, headers, prefix .. items[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  local out = 0
  for _, t in ipairs(threads) do out = out + (t:get("exhausted") or 0) end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p99":%d,"max":%d,"exhausted":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, out))
end
"""


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def rsa_us() -> float:
    """The machine's speed right now: CPU µs of one RSA-2048 PKCS#1 v1.5 signature (what every
    token costs at least once). Figures taken at different speeds compare only through it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    c = time.process_time()
    for _ in range(100):
        key.sign(b"x" * 300, padding.PKCS1v15(), hashes.SHA256())
    return (time.process_time() - c) / 100 * 1e6


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


# --- the server -------------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def workers(self) -> list[psutil.Process]:
        """The worker processes: uvicorn's spawned ones, or granian's children (never the
        multiprocessing resource tracker)."""
        found = []
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmdline = " ".join(child.cmdline())
                if "spawn_main" in cmdline or ("granian" in cmdline and "tracker" not in cmdline):
                    found.append(child)
        return found or [psutil.Process(self.proc.pid)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own session, started below
                self.proc.wait()


def start_keystead(
    db_url: str,
    tenant: Path,
    port: int,
    workers: int,
    tmp: Path,
    src: str = "",
    http_server: str = "uvicorn",
) -> Server:
    env = {
        **os.environ,
        "KEYSTEAD_SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
        "KEYSTEAD_BRUTEFORCE_MAX_ATTEMPTS": "0",
        "KEYSTEAD_SUSPICIOUS_IP_LOGIN_LIMIT": "off",
        "KEYSTEAD_DATA_DIR": str(tmp / "data"),
    }
    if src:  # a scratch copy of src/ with a change under trial
        env["PYTHONPATH"] = src
    log = tmp / "server.log"
    if http_server == "granian":
        # What `keystead serve` does before uvicorn (migrate, keys, tenant), then granian on the
        # same factory with the settings in KEYSTEAD_* variables, as uvicorn's workers get them.
        issuer = f"http://127.0.0.1:{port}/"
        subprocess.run(
            [str(KEYSTEAD), "apply", str(tenant), "--db", db_url, "--issuer", issuer],
            env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        env |= {"KEYSTEAD_DATABASE_URL": db_url, "KEYSTEAD_ISSUER": issuer}
        env |= {"KEYSTEAD_RATE_LIMIT_PRESET": "off", "KEYSTEAD_LOG_LEVEL": "warning"}
        cmd = [str(KEYSTEAD.parent / "granian"), "--interface", "asgi", "--factory"]
        cmd += ["--workers", str(workers), "--loop", "uvloop", "--port", str(port)]
        cmd += ["--log-level", "warning", "--no-ws", "keystead.server:asgi_app"]
    else:
        cmd = [str(KEYSTEAD), "serve", "--db", db_url, "--tenant", str(tenant)]
        cmd += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
        cmd += ["--rate-limit-preset", "off"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    wait_ready(server.base + "/.well-known/openid-configuration", proc, log)
    wait_settled(server, workers)
    return server


def wait_settled(server: Server, workers: int) -> None:
    """One answer proves one worker; the others may still be importing (seconds on a loaded
    machine). Wait until every worker has burnt no CPU for a while: imported and idle."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        procs = server.workers()
        before = cpu_seconds(procs)
        time.sleep(1.0)
        if len(procs) >= workers and cpu_seconds(procs) - before < 0.02:
            return
    print("  (workers did not settle in 60 s; measuring anyway)")


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, log: Path | None) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log else ""
            sys.exit(f"server exited ({proc.returncode}):\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    sys.exit(f"server at {url} did not answer in 90 s")


# --- single-use credentials, made through the repositories ---------------------------------------


async def make_credentials(db_url: str, issuer: str, codes: int, refresh: int) -> dict[str, Any]:
    """`codes` authorization codes and `refresh` refresh tokens of the SPA for the user."""
    from keystead.core.clock import SystemClock
    from keystead.core.codes import AuthorizationCode, new_family_id
    from keystead.core.refresh_tokens import NewRefreshToken
    from keystead.core.sealing import Sealer
    from keystead.core.tokens import new_opaque_token
    from keystead.storage.db import create_engine, session_factory
    from keystead.storage.repositories.codes import SqlCodes
    from keystead.storage.repositories.refresh_tokens import SqlRefreshTokens

    engine = create_engine(db_url)
    sessions = session_factory(engine)
    clock = SystemClock()
    sealer = Sealer(os.environ.get("KEYSTEAD_SECRET_KEY", ""))
    now = clock.now()

    def code(audience: str, scope: tuple[str, ...]) -> AuthorizationCode:
        return AuthorizationCode(
            client_id=SPA_ID,
            user_id=USER_ID,
            redirect_uri=REDIRECT,
            scope=scope,
            audience=audience,
            nonce=None,
            code_challenge=s256(VERIFIER),
            code_challenge_method="S256",
            auth_time=int(now),
            sid="",
            family_id=new_family_id(),
            # Real codes live 60 s; these must outlive the whole run.
            expires_at=now + 3600,
        )

    out: dict[str, Any] = {"codes": [], "refresh": []}
    batch = 2000
    for start in range(0, codes, batch):
        async with sessions() as session, session.begin():
            repo = SqlCodes(session, clock)
            for _ in range(min(batch, codes - start)):
                out["codes"].append(await repo.create(code(API, USER_SCOPE)))
    for start in range(0, refresh, batch):
        async with sessions() as session, session.begin():
            rts = SqlRefreshTokens(session, clock, sealer)
            for _ in range(min(batch, refresh - start)):
                value = new_opaque_token()
                await rts.create(
                    value,
                    NewRefreshToken(
                        family_id=new_family_id(),
                        client_id=SPA_ID,
                        user_id=USER_ID,
                        scope=USER_SCOPE,
                        audience=API,
                        auth_time=now,
                        family_expires_at=now + 86_400,
                        idle_expires_at=now + 86_400,
                    ),
                )
                out["refresh"].append(value)
    # Two more codes, exchanged once each for the bearer tokens of /userinfo and current-user.
    async with sessions() as session, session.begin():
        repo = SqlCodes(session, clock)
        out["userinfo_code"] = await repo.create(code(API, USER_SCOPE))
        out["self_code"] = await repo.create(
            code(issuer + "api/v2/", ("openid", "read:current_user"))
        )
    await engine.dispose()
    return out


def exchange(base: str, code: str) -> dict[str, Any]:
    body = {
        "grant_type": "authorization_code",
        "client_id": SPA_ID,
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }
    r = httpx.post(base + "/oauth/token", data=body, timeout=10)
    r.raise_for_status()
    result: dict[str, Any] = r.json()
    return result


def m2m_token(base: str, audience: str) -> str:
    body = {
        "grant_type": "client_credentials",
        "client_id": M2M_ID,
        "client_secret": M2M_SECRET,
        "audience": audience,
    }
    r = httpx.post(base + "/oauth/token", data=body, timeout=10)
    r.raise_for_status()
    token: str = r.json()["access_token"]
    return token


# --- wrk ------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    label: str
    method: str
    path: str
    body: str = ""
    prefix: str = ""  # POST body before each line of `items`
    items: list[str] = field(default_factory=list)  # single-use values, one per request
    authorization: str = ""
    target: float = 0.0


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us: float  # the server processes' CPU time per request
    load: str
    sys_us: float = 0.0  # of which in the kernel (system calls: sockets, SQLite's file locks)
    exhausted: int = 0


def run_wrk(
    base: str,
    sc: Scenario,
    tmp: Path,
    *,
    seconds: float,
    conns: int,
    threads: int,
    procs: list[psutil.Process],
    profile: Path | None = None,
) -> Result:
    lua = tmp / "bench.lua"
    if not lua.exists():
        lua.write_text(LUA.replace("nthreads", str(threads)))
    items = ""
    if sc.items:
        items = str(tmp / f"{sc.name}.items")
        Path(items).write_text("\n".join(sc.items) + "\n")
    args = [sc.method, sc.path, sc.prefix, items, sc.body, sc.authorization]
    spies = []
    if profile is not None:
        for p in procs:
            out_file = profile / f"{sc.name}-{p.pid}.raw"
            spy = [
                str(ROOT / ".venv" / "bin" / "py-spy"),
                "record",
                "-p",
                str(p.pid),
                "-d",
                str(max(1, round(seconds) - 1)),
            ]
            spy += ["-r", "250", "-f", "raw", "-o", str(out_file)]
            spies.append(
                subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
    cpu0, sys0 = cpu_seconds(procs), cpu_seconds(procs, kernel_only=True)
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    cmd += ["-s", str(lua), base, "--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    cpu = cpu_seconds(procs) - cpu0
    kernel = cpu_seconds(procs, kernel_only=True) - sys0
    for spy in spies:
        spy.wait()
    found = re.search(r"^WRKJSON (.*)$", out.stdout, re.M)
    if found is None:
        sys.exit(f"wrk failed: {out.stdout}\n{out.stderr}")
    w = json.loads(found.group(1))
    errors = w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"]
    n = max(w["requests"], 1)
    return Result(
        rps=w["requests"] / (w["duration_us"] / 1e6),
        p50_ms=w["p50"] / 1000,
        p99_ms=w["p99"] / 1000,
        errors=errors,
        requests=w["requests"],
        cpu_us=cpu / n * 1e6,
        sys_us=kernel / n * 1e6,
        load=load(),
        exhausted=w["exhausted"],
    )


IDLE_LEAVES = (
    "Runner.run (asyncio/runners.py",  # uvloop waiting in epoll (and its own C work)
    "_connection_worker_thread (aiosqlite/core.py:59)",  # aiosqlite thread waiting for work
    "Connection._recv (multiprocessing/connection.py",  # uvicorn's health-check thread
)


def profile_summary(files: list[Path], top: int = 25) -> list[str]:
    """Self and inclusive shares of py-spy's collapsed stacks, over the busy samples only:
    py-spy cannot tell a thread blocked in C (uvloop's epoll, aiosqlite's queue) from a
    running one, so those leaves are counted as idle here."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    busy = loop_busy = loop_all = 0
    for f in files:
        for line in f.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            n = int(count)
            frames = stack.split(";")
            is_loop = "Runner.run (asyncio/runners.py" in stack
            loop_all += n if is_loop else 0
            if any(frames[-1].startswith(leaf) for leaf in IDLE_LEAVES):
                continue
            busy += n
            loop_busy += n if is_loop else 0
            names = [re.sub(r":\d+\)$", ")", x) for x in frames]
            own[names[-1]] += n
            for x in set(names):
                incl[x] += n
    if not busy:
        return ["  (no busy samples)"]
    lines = [
        f"  profile: {busy} busy samples; event-loop threads busy "
        f"{100 * loop_busy / max(loop_all, 1):.0f}% of their samples. Self:"
    ]
    lines += [f"    {100 * n / busy:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("  inclusive (keystead, sqlalchemy, starlette, jwt, aiosqlite, asyncpg):")
    keep = ("keystead/", "sqlalchemy/", "starlette/", "jwt/", "aiosqlite/", "asyncpg/")
    shown = [(x, n) for x, n in incl.most_common() if any(k in x for k in keep)]
    lines += [f"    {100 * n / busy:5.1f}%  {name}" for name, n in shown[: top * 2]]
    return lines


def cpu_seconds(procs: list[psutil.Process], *, kernel_only: bool = False) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.system if kernel_only else t.user + t.system
    return total


def memory(procs: list[psutil.Process]) -> list[tuple[float, float]]:
    """(RSS, USS) in MB per process."""
    out = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            info = p.memory_full_info()
            out.append((info.rss / 2**20, info.uss / 2**20))
    return out


def show_memory(label: str, procs: list[psutil.Process]) -> None:
    cells = ", ".join(f"RSS {rss:.0f} MB (USS {uss:.0f} MB)" for rss, uss in memory(procs))
    print(f"  memory {label:<12} per worker: {cells}")


# --- the password login -------------------------------------------------------------------------


def login_once(client: httpx.Client, base: str) -> float:
    """One hosted-page login: GET the form (not timed), POST the credentials (timed)."""
    query = urlencode(
        {
            "client_id": SPA_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "scope": "openid profile email",
            "code_challenge": s256(VERIFIER),
            "code_challenge_method": "S256",
            "state": "bench-state",
        }
    )
    page = client.get(f"{base}/u/login?{query}")
    page.raise_for_status()
    fields = dict(re.findall(r'name="(csrf_token|authorize_query)" value="([^"]*)"', page.text))
    form = {k: html.unescape(v) for k, v in fields.items()}
    form.update(username=USER_EMAIL, password=USER_PASSWORD)
    start = time.perf_counter()
    done = client.post(f"{base}/u/login", data=form)
    elapsed = time.perf_counter() - start
    if done.status_code not in (302, 303) or "code=" not in done.headers.get("location", ""):
        sys.exit(f"login failed: {done.status_code} {done.text[:300]}")
    return elapsed


def login_cost(base: str, rounds: int = 7) -> None:
    from keystead.core.passwords import hash_password, verify_password

    with httpx.Client(follow_redirects=False, timeout=30) as client:
        login_once(client, base)  # warm-up
        logins = [login_once(client, base) for _ in range(rounds)]
    stored = hash_password(USER_PASSWORD)
    verify_password(stored, USER_PASSWORD)
    verifies, hashes = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        verify_password(stored, USER_PASSWORD)
        verifies.append(time.perf_counter() - t)
        t = time.perf_counter()
        hash_password(USER_PASSWORD)
        hashes.append(time.perf_counter() - t)
    login_ms = statistics.median(logins) * 1000
    verify_ms = statistics.median(verifies) * 1000
    print(
        f"  password login  POST /u/login median {login_ms:.1f} ms; one argon2id verify "
        f"{verify_ms:.1f} ms, hash {statistics.median(hashes) * 1000:.1f} ms (in this process); "
        f"login minus verify {login_ms - verify_ms:.1f} ms  [load {load()}]"
    )


# --- the peer (node oidc-provider) -------------------------------------------------------------


def start_peer(port: int, workers: int, tmp: Path) -> subprocess.Popen[bytes] | None:
    if not (PEER_DIR / "node_modules" / "oidc-provider").exists():
        print(f"  peer: run `npm ci` in {PEER_DIR} first; skipped")
        return None
    log = tmp / "peer.log"
    env = {**os.environ, "PEER_PORT": str(port), "PEER_WORKERS": str(workers)}
    proc = subprocess.Popen(
        ["node", str(PEER_DIR / "server.mjs")],
        cwd=PEER_DIR,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_ready(f"http://127.0.0.1:{port}/.well-known/openid-configuration", proc, log)
    time.sleep(1.0)
    return proc


# --- main -------------------------------------------------------------------------------------


def scenarios(creds: dict[str, Any], tokens: dict[str, str], n_warm: int) -> list[Scenario]:
    cc = urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": M2M_ID,
            "client_secret": M2M_SECRET,
            "audience": API,
        }
    )
    code_prefix = (
        f"grant_type=authorization_code&client_id={SPA_ID}&redirect_uri={quote(REDIRECT, '')}"
        f"&code_verifier={VERIFIER}&code="
    )
    refresh_prefix = f"grant_type=refresh_token&client_id={SPA_ID}&refresh_token="
    return [
        Scenario("cc", "client credentials", "POST", "/oauth/token", body=cc, target=2700),
        Scenario(
            "code",
            "code exchange (PKCE, +id +refresh)",
            "POST",
            "/oauth/token",
            prefix=code_prefix,
            items=creds["codes"][n_warm:],
            target=1500,
        ),
        Scenario(
            "refresh",
            "refresh, rotating (+id token)",
            "POST",
            "/oauth/token",
            prefix=refresh_prefix,
            items=creds["refresh"][n_warm:],
            target=2000,
        ),
        Scenario(
            "userinfo",
            "GET /userinfo",
            "GET",
            "/userinfo",
            authorization="Bearer " + tokens["userinfo"],
            target=8000,
        ),
        Scenario(
            "users",
            "GET /api/v2/users/{id} (M2M)",
            "GET",
            f"/api/v2/users/{quote(USER_ID)}",
            authorization="Bearer " + tokens["m2m"],
            target=6000,
        ),
        Scenario(
            "users_self",
            "GET /api/v2/users/{id} (self)",
            "GET",
            f"/api/v2/users/{quote(USER_ID)}",
            authorization="Bearer " + tokens["self"],
            target=6000,
        ),
        Scenario(
            "discovery",
            "GET openid-configuration",
            "GET",
            "/.well-known/openid-configuration",
            target=15000,
        ),
        Scenario("jwks", "GET jwks.json", "GET", "/.well-known/jwks.json", target=15000),
    ]


def warm_variant(sc: Scenario, creds: dict[str, Any], n_warm: int) -> Scenario:
    if sc.name == "code":
        return Scenario(
            sc.name + "_warm",
            "",
            sc.method,
            sc.path,
            prefix=sc.prefix,
            items=creds["codes"][:n_warm],
        )
    if sc.name == "refresh":
        return Scenario(
            sc.name + "_warm",
            "",
            sc.method,
            sc.path,
            prefix=sc.prefix,
            items=creds["refresh"][:n_warm],
        )
    return sc


def print_row(label: str, r: Result, target: float) -> None:
    verdict = "" if not target else ("ok" if r.rps >= target else "BELOW")
    extra = f"  RAN OUT ({r.exhausted} reused)" if r.exhausted else ""
    print(
        f"  {label:<36} {r.rps:9.0f} req/s  p50 {r.p50_ms:6.1f} ms  p99 {r.p99_ms:6.1f} ms  "
        f"errors {r.errors:<4} cpu {r.cpu_us:6.0f} µs/req (sys {r.sys_us:4.0f})  "
        f"target {target:>6.0f} {verdict:<5}"
        f"  [load {r.load}]{extra}"
    )


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    import asyncpg

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
    asyncio.run(admin(f"CREATE DATABASE {PG_DATABASE}"))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--codes", type=int, default=30_000, help="codes and refresh tokens")
    parser.add_argument("--peer", action="store_true", help="also measure node oidc-provider")
    parser.add_argument(
        "--floor", action="store_true", help="also measure a bare ASGI app that only signs"
    )
    parser.add_argument("--no-login", action="store_true", help="skip the password login")
    parser.add_argument("--hold", action="store_true", help="keep the server up until Enter")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--src", default="", help="serve this copy of src/ (PYTHONPATH)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy every worker during each run")
    parser.add_argument("--profile-top", type=int, default=15, help="lines of each summary")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    only = set(filter(None, args.only.split(",")))
    os.environ.setdefault("KEYSTEAD_SECRET_KEY", "bench-secret-key-0123456789abcdef0123456789")

    tmp = Path(tempfile.mkdtemp(prefix="keystead-http-bench-"))
    try:
        tenant = tmp / "tenant.yaml"
        tenant.write_text(TENANT)
        with database(args.db, tmp) as db_url:
            measure(args, only, tmp, tenant, db_url)
    finally:
        if args.keep:
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def measure(args: argparse.Namespace, only: set[str], tmp: Path, tenant: Path, db: str) -> None:
    print(
        f"Keystead HTTP bench: {args.db}, {args.server} with {args.workers} workers, "
        f"wrk -t{args.threads} "
        f"-c{args.connections}, {args.duration:g} s after {args.warmup:g} s warm-up, "
        f"{psutil.cpu_count()} CPUs, load {load()}, RSA-2048 sign {rsa_us():.0f} µs"
    )
    server = start_keystead(db, tenant, args.port, args.workers, tmp, args.src, args.server)
    try:
        procs = server.workers()
        print(f"  workers {', '.join(str(p.pid) for p in procs)}")
        show_memory("idle", procs)
        issuer = server.base + "/"
        wanted = lambda name: not only or name in only  # noqa: E731
        n = args.codes if wanted("code") or wanted("refresh") else 0
        t = time.perf_counter()
        creds = asyncio.run(make_credentials(db, issuer, n, n if wanted("refresh") else 0))
        print(f"  made {n} codes and refresh tokens in {time.perf_counter() - t:.1f} s")
        tokens = {
            "userinfo": exchange(server.base, creds["userinfo_code"])["access_token"],
            "self": exchange(server.base, creds["self_code"])["access_token"],
            "m2m": m2m_token(server.base, issuer + "api/v2/"),
        }
        n_warm = min(n // 6, int(args.warmup * 4000))
        results: dict[str, Result] = {}
        profile = Path(args.profile) if args.profile else None
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
        for sc in scenarios(creds, tokens, n_warm):
            if not wanted(sc.name):
                continue
            if sc.items and len(sc.items) < 100:
                continue
            run: dict[str, Any] = dict(conns=args.connections, threads=args.threads, procs=procs)
            if args.warmup:
                run_wrk(
                    server.base, warm_variant(sc, creds, n_warm), tmp, seconds=args.warmup, **run
                )
            r = run_wrk(server.base, sc, tmp, seconds=args.duration, profile=profile, **run)
            results[sc.name] = r
            print_row(sc.label, r, sc.target)
            if profile is not None:
                raw = sorted(profile.glob(f"{sc.name}-*.raw"))
                (profile / f"{sc.name}.txt").write_text("\n".join(profile_summary(raw, 40)))
                print("\n".join(profile_summary(raw, args.profile_top)))
        show_memory("after load", procs)
        print(f"  RSA-2048 sign now {rsa_us():.0f} µs CPU  [load {load()}]")
        now = {p.pid for p in server.workers()}
        if now != {p.pid for p in procs}:
            print(
                f"  WORKERS REPLACED during the run: {sorted(p.pid for p in procs)} -> "
                f"{sorted(now)} (see {server.log})"
            )
        if not args.no_login and not only:
            login_cost(server.base)
        if args.peer and "cc" in results:
            peer_ratio(args, tmp, results["cc"])
        if args.floor:
            floor_ratios(args, tmp, results)
        if args.hold:
            input(f"server at {server.base}; Enter stops it ")
    finally:
        server.stop()
        if server.proc.returncode not in (0, None):
            print(f"  server exit code {server.proc.returncode}; log {server.log}")


def peer_ratio(args: argparse.Namespace, tmp: Path, ours: Result) -> None:
    port = args.port + 1
    peer = start_peer(port, args.workers, tmp)
    if peer is None:
        return
    try:
        procs = [psutil.Process(peer.pid), *psutil.Process(peer.pid).children(recursive=True)]
        body = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": "bench-peer-client",
                "client_secret": "bench-peer-secret-0123456789abcdef",
                "resource": API,
                "scope": "read:things",
            }
        )
        sc = Scenario(
            "peer_cc", "peer oidc-provider client credentials", "POST", "/token", body=body
        )
        base = f"http://127.0.0.1:{port}"
        run: dict[str, Any] = dict(conns=args.connections, threads=args.threads, procs=procs)
        if args.warmup:
            run_wrk(base, sc, tmp, seconds=args.warmup, **run)
        r = run_wrk(base, sc, tmp, seconds=args.duration, **run)
        print_row(sc.label, r, 0)
        print(
            f"  Keystead/peer client credentials: {ours.rps / r.rps:.2f}x req/s, "
            f"{r.cpu_us / ours.cpu_us:.2f}x CPU per request (peer/ours)"
        )
        show_memory("peer", procs)
    finally:
        peer.send_signal(signal.SIGTERM)
        try:
            peer.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(peer.pid, signal.SIGKILL)


# --- the floor (bench/floor_app.py) -----------------------------------------------------------

# Keystead scenario → the floor path that does its least: signatures (and a rotation)
FLOORS = {
    "/1": "floor: 1 RS256 signature",
    "/2": "floor: 2 RS256 signatures",
    "/2r": "floor: 2 signatures + SQLite rotation",
}
FLOOR_OF = {"cc": "/1", "code": "/2", "refresh": "/2r"}


def floor_ratios(args: argparse.Namespace, tmp: Path, ours: dict[str, Result]) -> None:
    port = args.port + 2
    log = tmp / "floor.log"
    cmd = [str(KEYSTEAD.parent / "uvicorn"), "floor_app:app", "--app-dir", str(ROOT / "bench")]
    cmd += ["--workers", str(args.workers), "--port", str(port), "--loop", "uvloop"]
    cmd += ["--http", "httptools", "--log-level", "warning", "--no-access-log"]
    env = {**os.environ, "FLOOR_DB": str(tmp / "floor.db")}
    proc = subprocess.Popen(
        cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.post(base + "/1", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        run: dict[str, Any] = dict(conns=args.connections, threads=args.threads, procs=procs)
        body = f"grant_type=refresh_token&client_id={SPA_ID}&refresh_token={'r' * 43}"
        floors: dict[str, Result] = {}
        for path, label in FLOORS.items():
            sc = Scenario("floor" + path.strip("/"), label, "POST", path, body=body)
            if args.warmup:
                run_wrk(base, sc, tmp, seconds=args.warmup, **run)
            floors[path] = run_wrk(base, sc, tmp, seconds=args.duration, **run)
            print_row(sc.label, floors[path], 0)
        for name, path in FLOOR_OF.items():
            if name in ours:
                floor = floors[path]
                print(
                    f"  Keystead/floor {name}: {ours[name].rps / floor.rps:.2f}x req/s; "
                    f"{ours[name].cpu_us - floor.cpu_us:.0f} µs CPU per request beyond the floor"
                )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
