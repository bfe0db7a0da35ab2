"""Structured event logs: one JSON line per thing that happened (an import, a job state change).

``log_event("documents_import", files=2, user_id=7, duration_ms=41)`` writes, on the
``reims.events`` logger, one line such as::

    {"event": "documents_import", "ts": "2025-01-31T09:14:03.120Z", "level": "INFO", "files": 2, ...}

Secrets never reach a log line: any field (at any depth of nested dicts and lists) whose key
looks like a secret (password, token, secret, api_key, authorization, cookie, credential,
private key, session id) is replaced by ``"[redacted]"``, and so is any string value that
looks like a credential (``Token abc...``, ``Bearer ...``, ``Basic ...``). The guard runs twice:
in ``log_event`` and again in ``JsonFormatter``, so a record logged on ``reims.events`` by
other means is masked too.

This module stays Django-free: settings.LOGGING refers to ``JsonFormatter`` by dotted path.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

EVENT_LOGGER_NAME = "reims.events"
REDACTED = "[redacted]"
# Keys are matched after lower-casing and turning '-' into '_' (an HTTP header such as
# "X-Api-Key" reads as "x_api_key").
_SECRET_KEY_RE = re.compile(
    r"pass(word|wd|phrase)?|token|secret|api_?key|authori[sz]ation|cookie|credential|private_?key|sessionid|"
    r"session_key|csrf|signature"
)
_SECRET_VALUE_RE = re.compile(r"^\s*(token|bearer|basic)\s+\S+", re.IGNORECASE)
_RESERVED = frozenset({"event", "ts", "level", "logger"})
_MAX_DEPTH = 6  # nested fields deeper than this are summarised, not walked

logger = logging.getLogger(EVENT_LOGGER_NAME)


def is_secret_key(key: object) -> bool:
    """True for a field name that looks like it holds a secret."""
    return bool(_SECRET_KEY_RE.search(str(key).lower().replace("-", "_")))


def redact(value: Any, *, _depth: int = 0) -> Any:
    """A copy of ``value`` with secret-looking keys and credential-looking strings masked."""
    if _depth > _MAX_DEPTH:
        return "[nested]"
    if isinstance(value, Mapping):
        return {str(key): REDACTED if is_secret_key(key) else redact(item, _depth=_depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item, _depth=_depth + 1) for item in value]
    if isinstance(value, str) and _SECRET_VALUE_RE.match(value):
        return REDACTED
    return value


def log_event(event: str, /, *, level: int = logging.INFO, **fields: Any) -> dict[str, Any]:
    """Write one structured line for ``event`` on the ``reims.events`` logger and return its payload.

    ``fields`` become top-level keys of the JSON object (ids, counts, durations, a one-line
    reason); secrets are masked (see the module docstring). The keys ``event``, ``ts``, ``level``
    and ``logger`` belong to the line itself: a field of that name is prefixed with ``field_``.
    """
    safe = {(f"field_{key}" if key in _RESERVED else key): value for key, value in redact(fields).items()}
    payload = {"event": str(event), "ts": _timestamp(), **safe}
    logger.log(level, "%s", event, extra={"reims_event": payload})
    return payload


def _timestamp(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    # Decimal, datetime, date, UUID, Path...: their text form is what an operator wants to read.
    if isinstance(value, datetime):
        return _timestamp(value) if value.tzinfo else value.isoformat()
    return str(value)


class JsonFormatter(logging.Formatter):
    """Formats a record as ONE JSON line.

    Records written by ``log_event`` carry their payload; any other record becomes
    ``{"event": "log", "ts", "level", "logger", "message"}`` (plus ``exc_type``/``exc_message``
    when it carries an exception; no traceback, so the line stays one line).
    """

    def format(self, record: logging.LogRecord) -> str:
        payload = getattr(record, "reims_event", None)
        if isinstance(payload, Mapping):
            body = dict(redact(payload))
            body.setdefault("ts", _timestamp(datetime.fromtimestamp(record.created, UTC)))
            body = {"event": body.pop("event", record.getMessage()), "ts": body.pop("ts"), "level": record.levelname, **body}
        else:
            body = {
                "event": "log",
                "ts": _timestamp(datetime.fromtimestamp(record.created, UTC)),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
            if record.exc_info and record.exc_info[1] is not None:
                body["exc_type"] = type(record.exc_info[1]).__name__
                body["exc_message"] = " ".join(str(record.exc_info[1]).split())
            body = redact(body)
        return json.dumps(body, default=_json_default, separators=(",", ":"))  # ASCII: U+2028 cannot split a line
