"""Logging for `opshub serve`: text or JSON lines (HUB_LOG_FORMAT), a request id on every
line of a request, and no secret on any line.

- Request ids: taken from a valid `X-Request-ID` (up to 128 characters of letters, digits and
  `._:-`; anything else is replaced, so a caller cannot forge log lines) or generated, kept in
  a context variable for the request (copied into the threads and tasks it starts) and
  returned in the response header (hub/api/middleware.py).
- JSON: one object per line (python-json-logger): `time`, `level`, `logger`, `message`,
  `request_id` and whatever `extra=` a call passes (`source`, `run_id`, `delivery_id` ...).
- Redaction happens on the finished line, after formatting, so nothing escapes it: not a
  message argument, not an exception's traceback, not a library's DEBUG output (httpx,
  httpcore). It replaces every secret value of the loaded config and settings (tool tokens,
  API keys, webhook secrets, the metrics token, the database password) and, whatever the
  config, what looks like a credential: `Authorization` values, `Bearer`/`Basic` tokens, the
  hub's own API keys (`ohk_...`), Standard Webhooks secrets (`whsec_...`) and token-like query
  parameters.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from hub.config import HubConfig
    from hub.settings import Settings

REDACTED = "[REDACTED]"
REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_CHARS = 128
_VALID_REQUEST_ID = re.compile(rf"^[A-Za-z0-9._:-]{{1,{MAX_REQUEST_ID_CHARS}}}$")
_MIN_SECRET_CHARS = 6  # shorter values would redact ordinary words; no real token is this short

request_id_var: ContextVar[str | None] = ContextVar("opshub_request_id", default=None)

# What looks like a credential, whatever the config says. Group 1 is kept, the rest replaced.
_CREDENTIAL_PATTERNS = [
    re.compile(r"(?i)(\bauthorization[\"']?\s*[:=,]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)[^\s\"',;)\]}]+"),
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(\b)ohk_[0-9a-f]+_[A-Za-z0-9_-]+"),
    re.compile(r"(\b)whsec_[A-Za-z0-9+/=]+"),
    re.compile(
        r"(?i)([?&;](?:token|access_token|private_token|api_key|apikey|key|secret|password|signature|sig)=)[^&\s\"']+"
    ),
    re.compile(
        r"(?i)((?:private-token|x-redmine-api-key|x-api-key|x-gitlab-token)[\"']?\s*[:=,]\s*[\"']?)[^\s\"',;)]+"
    ),
]


# A random per-process prefix and a counter: unique across processes like a uuid4, but a
# fraction of its cost on every request (uuid4 reads os.urandom each time; it showed in the
# webhook intake's profile).
_REQUEST_ID_PREFIX = uuid.uuid4().hex[:16]
_request_counter = itertools.count(1)


def new_request_id() -> str:
    return f"{_REQUEST_ID_PREFIX}{next(_request_counter):016x}"


def accept_request_id(given: str | None) -> str:
    """The caller's X-Request-ID when it is a sane token, else a fresh one."""
    if given and _VALID_REQUEST_ID.match(given):
        return given
    return new_request_id()


class Redactor:
    """Replaces known secret values and credential-looking text in a finished log line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            if not secret or len(secret) < _MIN_SECRET_CHARS:
                continue
            # As written, as JSON escapes it, and as URL/percent or Basic auth would carry it.
            self._secrets.add(secret)
            self._secrets.add(json.dumps(secret)[1:-1])
        ordered = sorted(self._secrets, key=len, reverse=True)  # longest first: no partial leftovers
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        for pattern in _CREDENTIAL_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class _TextFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        # One record, one line: a newline in a value from outside (a tool's delivery id, a
        # path) cannot start a forged line. Tracebacks are added after this, as usual.
        record.message = record.message.replace("\r", "\\r").replace("\n", "\\n")
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} request_id={request_id}" if request_id else line


class RedactingFormatter(logging.Formatter):
    """Formats with `inner`, then redacts the whole line (message, extras, traceback)."""

    def __init__(self, inner: logging.Formatter, redact: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(self.inner.format(record))


def make_formatter(log_format: str, redact: Redactor) -> logging.Formatter:
    if log_format == "json":
        inner: logging.Formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's ANSI-coloured copy of the message
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    else:
        inner = _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    return RedactingFormatter(inner, redact)


# Loggers whose output goes through the hub's handler (uvicorn's too, with log_config=None).
_LOGGERS = ("opshub", "hub", "connectors", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore")


def configure_logging(
    level: str = "info",
    log_format: str = "text",
    *,
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every log line to `stream` (stderr) through one handler: the chosen format, the
    request id, redaction. Replaces a handler installed by an earlier call; returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("opshub")
    handler.setFormatter(make_formatter(log_format, Redactor(secrets)))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "opshub"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        # uvicorn's own handlers would print a second, unredacted copy.
        logger.handlers = [h for h in logger.handlers if h.get_name() == "opshub"]
        logger.propagate = True
    # httpx logs every request to a tool at INFO: shown only when DEBUG is asked for.
    logging.getLogger("httpx").setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)
    return handler


def config_secrets(models: Iterable[BaseModel]) -> Iterator[str]:
    """Every SecretStr in these models (nested ones too), and the Basic auth forms a tool
    would be sent (`user:secret` base64) for each string field next to it."""
    for model in models:
        plain: list[str] = []
        secret_values: list[str] = []
        for name in type(model).model_fields:
            value = getattr(model, name, None)
            if isinstance(value, SecretStr):
                secret_values.append(value.get_secret_value())
            elif isinstance(value, BaseModel):
                yield from config_secrets([value])
            elif isinstance(value, str):
                plain.append(value)
        for secret in secret_values:
            yield secret
            for user in plain:
                yield base64.b64encode(f"{user}:{secret}".encode()).decode()


def settings_secrets(database_url: str, metrics_token: SecretStr | None) -> Iterator[str]:
    try:
        password = make_url(database_url).password
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot read holds no password we can find
        password = None
    if password:
        yield str(password)
    if metrics_token is not None:
        yield metrics_token.get_secret_value()


def configure_for(settings: Settings, config: HubConfig, *, stream: IO[str] | None = None) -> logging.Handler:
    """The hub's logging for a server: settings' level and format, every secret of the config
    and the settings redacted."""
    secrets = [
        *config_secrets(source.config for source in config.sources.values()),
        *settings_secrets(settings.database_url, settings.metrics_token),
    ]
    return configure_logging(settings.log_level, settings.log_format, secrets=secrets, stream=stream)


def log_extra(**fields: Any) -> dict[str, Any]:
    """`extra=` for a log call: fields that JSON lines carry as their own keys."""
    return {k: v for k, v in fields.items() if v is not None}


__all__ = [
    "MAX_REQUEST_ID_CHARS",
    "REDACTED",
    "REQUEST_ID_HEADER",
    "Redactor",
    "accept_request_id",
    "config_secrets",
    "configure_for",
    "configure_logging",
    "log_extra",
    "request_id_var",
    "settings_secrets",
]
