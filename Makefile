# Keystead developer commands (DEVELOPERS.md, "Habits"). `make run` and `make test` work on a
# fresh clone: each sets up what it needs first, and skips that work when it is already done.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.keystead-installed
NODE_DIR := tests/compat/node
NODE_STAMP := $(NODE_DIR)/node_modules/.keystead-installed
DEMO_TENANT := examples/demo-tenant.yaml

.PHONY: install node-deps run test lint fix db-check check

## install: virtualenv + editable install with dev extras (again only when pyproject.toml changes)
install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

## node-deps: the SDKs the compat and browser layers drive (when npm is there; else they skip,
## or fail under CI=true)
node-deps: $(if $(and $(wildcard $(NODE_DIR)/package-lock.json),$(shell command -v npm)),$(NODE_STAMP))

$(NODE_STAMP): $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## run: start the server on http://127.0.0.1:8080/ with the demo tenant, on SQLite
run: install
	@$(BIN)/python -c "$$DEMO_HINT" $(DEMO_TENANT)
	$(BIN)/keystead serve --tenant $(DEMO_TENANT)

## test: every layer; under CI=true a missing PostgreSQL, Redis or Chromium fails instead of skipping
test: install node-deps
	$(BIN)/pytest --cov

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

fix: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## db-check: a fresh database upgraded to head must match the models; SQLite always, PostgreSQL
## under CI=true or when KEYSTEAD_TEST_POSTGRES_URL is set (a scratch database, dropped after)
db-check: install
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  echo "db-check: SQLite" && $(BIN)/keystead db check --db "sqlite:///$$tmp/db-check.db"
	@case "$${CI:-}" in 1|true|yes) ci=1 ;; *) ci= ;; esac; \
	if [ -n "$$ci" ] || [ -n "$${KEYSTEAD_TEST_POSTGRES_URL:-}" ]; then \
	  echo "db-check: PostgreSQL" && $(BIN)/python -c "$$PG_DB_CHECK"; \
	fi

check: lint test db-check

# What to do once `make run` is up: read from the demo tenant, so it stays true when that changes.
define DEMO_HINT
import json, os, sys
from keystead.core.tenant import parse_tenant
from keystead.settings import Settings

path = sys.argv[1]
spec = parse_tenant(open(path, encoding="utf-8").read(), source=path, environ=os.environ)
issuer = Settings.from_env().with_defaults().issuer
spa = next(c for c in spec.clients if c.app_type == "spa")
m2m = next(c for c in spec.clients if "client_credentials" in c.grant_types and c.client_secret)
body = {"grant_type": "client_credentials", "client_id": m2m.client_id,
        "client_secret": m2m.client_secret, "audience": issuer + "api/v2/"}
print(f"""
Keystead demo tenant ({path}). Once the server is up, in another terminal:

  A Management API token for the demo backend ({m2m.client_id}):
    curl -s {issuer}oauth/token -H 'content-type: application/json' \\
      -d '{json.dumps(body, separators=(",", ":"))}'

  A React SPA on http://localhost:3000 (@auth0/auth0-react):
    domain "{issuer.split("://", 1)[1].rstrip("/")}", clientId "{spa.client_id}"
""")
users = [u for u in spec.users if u.password]
if users:
    print("  Demo users: " + ", ".join(f"{u.email} / {u.password}" for u in users) + "\n")
endef
export DEMO_HINT

# A scratch PostgreSQL database for db-check, created next to the test database and dropped after.
define PG_DB_CHECK
import asyncio, os, subprocess, sys, uuid
import asyncpg
from sqlalchemy.engine import make_url

base = make_url(os.environ.get("KEYSTEAD_TEST_POSTGRES_URL")
                or "postgresql://postgres@127.0.0.1:5432/test")
name = "keystead_db_check_" + uuid.uuid4().hex[:12]

async def admin(sql):
    con = await asyncpg.connect(host=base.host, port=base.port, user=base.username,
                                password=base.password, database=base.database)
    try:
        await con.execute(sql)
    finally:
        await con.close()

asyncio.run(admin(f'CREATE DATABASE "{name}"'))
try:
    url = base.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    code = subprocess.call([sys.executable, "-m", "keystead", "db", "check", "--db", url])
finally:
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
sys.exit(code)
endef
export PG_DB_CHECK
