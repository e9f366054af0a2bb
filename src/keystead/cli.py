"""`keystead`: serve | apply FILE | keys rotate|list | db upgrade|check|purge | dev-ca.

Options come from `KEYSTEAD_*` variables first, then flags (`Settings.from_env().merged(...)`).
Bad input (unknown option, malformed URL, busy port, unreadable file, TLS file that does not
load, corrupted database) ends in one line on stderr, `keystead: <what>`, and a non-zero exit.
Heavy imports stay inside the commands so `--help` and input errors answer quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from keystead import __version__
from keystead.cli_serve import cmd_serve
from keystead.cli_support import (
    apply_file,
    check_database_url,
    check_tenant_file,
    command_logging,
    database_errors,
    fail,
    open_state,
    shown_url,
)
from keystead.errors import ConfigError, KeysteadError
from keystead.settings import Settings

EXIT_CONFIG = 2  # errors.py: ConfigError → exit code 2
EXIT_FAILED = 1


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage dump) and exits through `main`."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see `{self.prog} --help`)")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        handler: Callable[[argparse.Namespace, Settings], int] | None = getattr(
            args, "handler", None
        )
        if handler is None:
            raise ConfigError("choose a command: serve, apply, keys, db, dev-ca (see --help)")
        return handler(args, _settings(args))
    except ConfigError as exc:
        fail(str(exc))
        return EXIT_CONFIG
    except KeysteadError as exc:
        fail(str(exc) or type(exc).__name__)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="keystead", description="Auth0-compatible identity server.")
    parser.add_argument("--version", action="version", version=f"keystead {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    db = _Parser(add_help=False)
    db.add_argument(
        "--db", dest="database_url", metavar="URL", help="sqlite:///… or postgresql://…"
    )
    issuer = _Parser(add_help=False)
    issuer.add_argument("--issuer", metavar="URL", help="public base URL (default: from host/port)")
    data = _Parser(add_help=False)
    data.add_argument("--data-dir", metavar="DIR", help="local files such as the dev CA")

    serve = commands.add_parser(
        "serve", parents=[db, issuer, data], help="run the server", description="Run the server."
    )
    serve.add_argument("--host", metavar="ADDR", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, metavar="N", help="port (default 8080)")
    serve.add_argument("--tenant", dest="tenant_file", metavar="FILE", help="apply at start")
    serve.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain)")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key")
    serve.add_argument(
        "--dev-tls", action="store_true", default=None, help="HTTPS from a local development CA"
    )
    serve.add_argument("--workers", type=int, metavar="N", help="worker processes (default 1)")
    serve.add_argument("--log-level", metavar="LEVEL", help="debug, info, warning, error")
    serve.add_argument(
        "--rate-limit-preset", metavar="NAME", help="self-hosted, auth0-free, auth0-paid or off"
    )
    serve.set_defaults(handler=cmd_serve)

    apply = commands.add_parser(
        "apply", parents=[db, issuer], help="apply a tenant file and exit",
        description="Apply a tenant file (clients, APIs, grants, users) and exit.",
    )  # fmt: skip
    apply.add_argument("file", metavar="FILE")
    apply.set_defaults(handler=cmd_apply)

    keys = commands.add_parser("keys", help="signing keys").add_subparsers(
        title="keys commands", metavar="ACTION", required=True
    )
    rotate = keys.add_parser("rotate", parents=[db, issuer], help="rotate the signing key")
    rotate.add_argument(
        "--force", action="store_true", help="retire the previous key even if its tokens live on"
    )
    rotate.set_defaults(handler=cmd_keys_rotate)
    listing = keys.add_parser("list", parents=[db, issuer], help="list signing keys")
    listing.set_defaults(handler=cmd_keys_list)

    dbc = commands.add_parser("db", help="database schema").add_subparsers(
        title="db commands", metavar="ACTION", required=True
    )
    dbc.add_parser("upgrade", parents=[db], help="migrate to the latest schema").set_defaults(
        handler=cmd_db_upgrade
    )
    dbc.add_parser(
        "check", parents=[db], help="upgrade, then exit 1 if models and migrations differ"
    ).set_defaults(handler=cmd_db_check)
    purge = dbc.add_parser(
        "purge", parents=[db], help="delete expired codes, sessions, refresh tokens and blocks"
    )
    purge.add_argument(
        "--grace", type=_seconds, metavar="SECONDS",
        help="keep dead codes and refresh-token families this long (default 86400)",
    )  # fmt: skip
    purge.set_defaults(handler=cmd_db_purge)

    dev_ca = commands.add_parser(
        "dev-ca", parents=[data], help="print the development CA certificate path",
        description="Print the path of the development CA certificate (created if needed), for "
        "SSL_CERT_FILE, REQUESTS_CA_BUNDLE or NODE_EXTRA_CA_CERTS.",
    )  # fmt: skip
    dev_ca.set_defaults(handler=cmd_dev_ca)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    names = (
        "host", "port", "database_url", "issuer", "tenant_file", "tls_cert", "tls_key",
        "dev_tls", "workers", "data_dir", "log_level", "rate_limit_preset",
    )  # fmt: skip
    flags = {name: getattr(args, name, None) for name in names}
    return Settings.from_env().merged(**flags).with_defaults()


# --- apply, keys -------------------------------------------------------------------------------


def cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    check_database_url(settings.database_url)
    check_tenant_file(args.file)
    command_logging(settings)

    async def go() -> str:
        async with open_state(settings) as state:
            return await apply_file(state, args.file)

    print(asyncio.run(go()))
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from keystead.storage.keys import rotate_keys

    check_database_url(settings.database_url)
    command_logging(settings)

    async def go() -> Any:
        async with open_state(settings) as state:
            return await rotate_keys(state, force=args.force)

    ring = asyncio.run(go())
    upcoming = ring.next.kid if ring.next is not None else "none"
    print(f"signing keys rotated: current {ring.current.kid}, next {upcoming}")
    return 0


def cmd_keys_list(_args: argparse.Namespace, settings: Settings) -> int:
    from keystead.storage.keys import list_keys

    check_database_url(settings.database_url)
    command_logging(settings)

    async def go() -> list[dict[str, Any]]:
        async with open_state(settings) as state:
            return await list_keys(state)

    rows = asyncio.run(go())
    print(f"{'KID':<44} {'ALG':<6} {'STATE':<9} {'CREATED (UTC)':<20} ENCRYPTED")
    for row in rows:
        created = datetime.fromtimestamp(row["created_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        encrypted = "yes" if row["encrypted"] else "no"
        print(f"{row['kid']:<44} {row['alg']:<6} {row['state']:<9} {created:<20} {encrypted}")
    return 0


# --- db, dev-ca --------------------------------------------------------------------------------


def cmd_db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    from keystead.storage import migrate

    check_database_url(settings.database_url)
    with database_errors(settings.database_url):
        migrate.upgrade(settings.database_url)
    print(f"{shown_url(settings.database_url)} is at the latest schema")
    return 0


def cmd_db_check(_args: argparse.Namespace, settings: Settings) -> int:
    from keystead.storage import migrate

    check_database_url(settings.database_url)
    with database_errors(settings.database_url):
        differences = migrate.check(settings.database_url)  # upgrades first
    if differences:
        fail("models and migrations differ:")
        for diff in differences:
            print(f"  {diff}", file=sys.stderr)
        return EXIT_FAILED
    print("models and migrations agree")
    return 0


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def cmd_db_purge(args: argparse.Namespace, settings: Settings) -> int:
    from keystead.ratelimit.wiring import protection_policy
    from keystead.storage.purge import GRACE, purge_expired

    check_database_url(settings.database_url)
    command_logging(settings)
    grace = GRACE if args.grace is None else args.grace

    async def go() -> dict[str, int]:
        async with open_state(settings) as state:
            return await purge_expired(
                state.transaction,
                now=state.clock.now(),
                policy=protection_policy(settings),
                grace=grace,
            )

    with database_errors(settings.database_url):
        counts = asyncio.run(go())
    for table, count in counts.items():
        print(f"{table:<24} {count}")
    return 0


def cmd_dev_ca(_args: argparse.Namespace, settings: Settings) -> int:
    from keystead.devtls import ensure_dev_ca

    # Only the path on stdout, so `export SSL_CERT_FILE=$(keystead dev-ca)` works.
    print(ensure_dev_ca(settings.data_dir).resolve())
    return 0
