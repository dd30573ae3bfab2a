"""Sources configuration: one TOML file (`opshub.toml`), one table per source.

    [sources.acme-jira]
    tool = "jira"
    base_url = "https://acme.atlassian.net"
    email = "ops@acme.com"
    api_token = "${JIRA_API_TOKEN}"      # ${NAME} is read from the environment
    projects = ["PROJ"]
    webhook_secret = "${JIRA_WEBHOOK_SECRET}"
    schedule = "15m"

    [sources.acme-jira.mapping]          # overrides of mappings/jira.yaml
    status = { "In Review" = "in_progress" }

Each source's table is validated by its connector's config model; a bad file fails at start
with one line naming the source and the key (`ConfigError`).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from connectors.base import Connector, ConnectorConfig, parse_duration
from connectors.registry import connector_class
from mappings import check as check_mapping
from mappings import load_spec
from mappings.errors import SpecError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class ConfigError(Exception):
    """A one-line, user-facing description of what is wrong in the config."""


@dataclass
class SourceDefinition:
    name: str
    tool: str
    connector_cls: type[Connector]
    config: ConnectorConfig

    @property
    def schedule(self) -> timedelta | None:
        return parse_duration(self.config.schedule) if self.config.schedule else None

    @property
    def overlap(self) -> timedelta:
        return parse_duration(self.config.overlap)

    def connector(self) -> Connector:
        return self.connector_cls(self.name, self.config)


@dataclass
class HubConfig:
    sources: dict[str, SourceDefinition] = field(default_factory=dict)
    path: Path | None = None

    def source(self, name: str) -> SourceDefinition:
        try:
            return self.sources[name]
        except KeyError:
            raise KeyError(f"no source named {name!r} in {self.path or 'the config'}") from None


def _substitute(value: Any, where: str) -> Any:
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV_REF.sub(lookup, value)
    if isinstance(value, dict):
        return {k: _substitute(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _first_error(exc: ValidationError, where: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(part) for part in err["loc"])
    # Never echo the offending value: it may be a secret.
    return f"{where}.{loc}: {err['msg']}" if loc else f"{where}: {err['msg']}"


def parse_config(data: dict[str, Any], path: Path | None = None) -> HubConfig:
    unknown = set(data) - {"sources"}
    if unknown:
        raise ConfigError(f"{path or 'config'}: unknown top-level key {sorted(unknown)[0]!r} (expected [sources.NAME])")
    raw_sources = data.get("sources", {})
    if not isinstance(raw_sources, dict):
        raise ConfigError("sources: expected tables [sources.NAME]")
    config = HubConfig(path=path)
    for name, table in raw_sources.items():
        where = f"sources.{name}"
        if not _SOURCE_NAME.match(name):
            raise ConfigError(f"{where}: a source name may hold only letters, digits, '.', '_' and '-'")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table")
        tool = table.get("tool")
        if not isinstance(tool, str):
            raise ConfigError(f'{where}.tool: required (e.g. tool = "jira")')
        try:
            cls = connector_class(tool)
        except KeyError as exc:
            raise ConfigError(f"{where}.tool: {exc.args[0]}") from None
        values = _substitute(table, where)
        try:
            source_config = cls.config_model.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(_first_error(exc, where)) from None
        try:
            problems = check_mapping(load_spec(tool), source_config.mapping)
        except (SpecError, FileNotFoundError) as exc:
            problems = [f"mapping: no usable mapping spec for tool {tool!r} ({exc})"]
        if problems:
            raise ConfigError(f"{where}.{problems[0]}")
        config.sources[name] = SourceDefinition(name, tool, cls, source_config)
    return config


def load_config(path: Path | None) -> HubConfig:
    """Read the sources file; no path (and no ./opshub.toml) means no sources."""
    if path is None:
        default = Path("opshub.toml")
        if not default.exists():
            return HubConfig()
        path = default
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_config(data, path)
