"""Tenant file text → plain data: strict YAML or JSON, then `${VAR}` substitution in values."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from keystead.errors import ConfigError

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _load(text: str, source: str) -> Any:
    if source.endswith(".json"):
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        except ValueError as exc:  # duplicate key, from _unique_pairs
            raise ConfigError(f"{source}: invalid JSON: {exc}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and keeps dates as strings (JSON has no dates)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _substitute(node: Any, at: str, source: str, environ: Mapping[str, str]) -> Any:
    """Expand `${VAR}` in every string value (values only: keys and structure stay as written)."""
    if isinstance(node, dict):
        return {
            k: _substitute(v, f"{at}.{k}" if at else str(k), source, environ)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute(v, f"{at}[{i}]", source, environ) for i, v in enumerate(node)]
    if isinstance(node, str) and "$" in node:
        return expand_env(node, environ, lambda msg: ConfigError(f"{source}: {at}: {msg}"))
    return node


def expand_env(
    value: str,
    environ: Mapping[str, str],
    error: Callable[[str], Exception] = ConfigError,
) -> str:
    """`${VAR}` → environ[VAR] (must be set); `${VAR:-default}` → VAR when set and non-empty,
    else default; `$${` → a literal `${`; any other `$` stays."""
    out: list[str] = []
    i = 0
    while (j := value.find("$", i)) >= 0:
        out.append(value[i:j])
        if value.startswith("$${", j):
            out.append("${")
            i = j + 3
            continue
        if not value.startswith("${", j):
            out.append("$")
            i = j + 1
            continue
        end = value.find("}", j + 2)
        if end < 0:
            raise error("unterminated ${ (write $${ for a literal ${)")
        name, sep, default = value[j + 2 : end].partition(":-")
        if not _ENV_NAME_RE.match(name):
            raise error(f"${{{value[j + 2 : end]}}} is not a variable reference like ${{NAME}}")
        found = environ.get(name)
        if sep:
            out.append(found or default)
        elif found is None:
            raise error(f"environment variable {name} is not set (or write ${{{name}:-default}})")
        else:
            out.append(found)
        i = end + 1
    out.append(value[i:])
    return "".join(out)
