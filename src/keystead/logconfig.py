"""Logging for `keystead` and uvicorn: one format on stderr, level from settings, no secrets.

Access lines drop the query string: `/authorize`, `/v2/logout` and friends carry `id_token_hint`,
`code`, `state` and similar values there that have no place in a log file.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from keystead.errors import ConfigError

# uvicorn adds "trace" below debug; the rest are the standard names.
LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def check_level(level: str) -> str:
    """Return the level in lower case, or raise ConfigError naming the allowed ones."""
    low = level.strip().lower()
    if low not in LEVELS:
        raise ConfigError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    return low


class DropQueryString(logging.Filter):
    """Cut the query string off uvicorn's access-log path argument."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access record: (client, method, path_with_query, http_version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


def log_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` document, also handed to uvicorn for its workers."""
    name = check_level(level)
    # "trace" is uvicorn's own level (5); the stdlib knows it only once uvicorn is imported.
    numeric = "DEBUG" if name == "trace" else name.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"drop_query": {"()": "keystead.logconfig.DropQueryString"}},
        "formatters": {"plain": {"format": FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
                "filters": ["drop_query"],
            },
        },
        "loggers": {
            "keystead": {"handlers": ["stderr"], "level": numeric, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": numeric, "propagate": False},
            "uvicorn.error": {"level": numeric},
            "uvicorn.access": {"handlers": ["access"], "level": numeric, "propagate": False},
        },
    }


def configure(level: str) -> None:
    logging.config.dictConfig(log_config(level))
