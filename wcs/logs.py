"""Structured logging: one call at process start, key=value (logfmt) or JSON lines.

Three rules keep credentials out of the log and the log out of the event loop's way:

- Tracebacks are the standard library's text, one field of one line: never the local
  variables of each frame (a request's locals hold its ``Authorization`` header).
- Every record, ours or a library's, passes :func:`redact` last: values under
  sensitive keys, ``Bearer``/``Basic`` credentials, passwords in URLs, ``key=value``
  secrets, our own token format and the secret values of the settings are replaced
  by ``[redacted]``.
- The event loop only puts records on a queue; a thread of the logging module
  formats and writes them, so a slow terminal or a long traceback stalls nobody.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import queue
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"
# Keys whose value is a credential whatever it looks like (compared lower-case,
# ``-`` read as ``_``).
SENSITIVE_KEYS = re.compile(
    r"(authorization|cookie|password|passwd|secret|token|api_key|apikey|signature|credential)"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values, in any rendering (dicts, scope tuples, curl lines).
    (re.compile(r"(?i)\b(bearer|basic|digest)(\s+|'\s*,\s*b?')[A-Za-z0-9._~+/=:-]{4,}"), r"\1\2"),
    # Passwords in URLs: scheme://user:password@host
    (re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*:)[^@\s'\"/]+@"), r"\1"),
    # key=value and "key": "value" forms of sensitive names.
    (
        re.compile(
            r"(?i)((?:password|passwd|pwd|secret|token|api[_-]?key|authorization)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&)}]+"
        ),
        r"\1",
    ),
    # Bearer tokens this system issues.
    (re.compile(r"\bwcs_[A-Za-z0-9_-]{16,}"), "wcs_"),
)

_secrets: tuple[str, ...] = ()
_listener: logging.handlers.QueueListener | None = None
_queue: queue.Queue[logging.LogRecord] | None = None


def scrub(text: str) -> str:
    """``text`` with every credential it shows replaced by ``[redacted]``."""
    for value in _secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern, keep in _PATTERNS:
        text = pattern.sub(keep + REDACTED, text)
    return text


def _clean(key: str, value: Any) -> Any:
    if SENSITIVE_KEYS.search(key.lower().replace("-", "_")) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, bytes):
        return scrub(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        return {k: _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(key, v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value))


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: the last step before rendering, for every record."""
    for key in list(event_dict):
        if not key.startswith("_"):
            event_dict[key] = _clean(key, event_dict[key])
    return event_dict


class _AlreadyLogged(logging.Filter):
    """Drops the server's second report of an exception the API has logged already
    (Starlette re-raises what its 500 handler answered, so that uvicorn logs it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, "__wcs_logged__", False)


def mark_logged(exc: BaseException) -> None:
    """Note that ``exc`` has been logged, so that no later handler logs it again."""
    with contextlib.suppress(AttributeError):  # exceptions with __slots__ cannot be marked
        exc.__wcs_logged__ = True  # type: ignore[attr-defined]


class _Enqueue(logging.handlers.QueueHandler):
    """Hands records to the writer thread as they are: formatting (tracebacks
    included) happens there, not in the thread that logged."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def flush() -> None:
    """Wait until every record logged so far has been written."""
    if _queue is not None and _listener is not None:
        _queue.join()


def shutdown() -> None:
    """Write what is queued and end the writer thread (at exit, or to reconfigure)."""
    global _listener, _queue
    if _listener is not None:
        _listener.stop()  # writes what is queued, then ends the thread
    _listener = None
    _queue = None


atexit.register(shutdown)


def configure_logging(
    level: str = "INFO",
    *,
    json: bool = False,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> None:
    """Log to ``stream`` (stderr) as logfmt or JSON lines; ``secrets`` are values that
    must never appear (the settings' tokens and passwords)."""
    global _secrets, _listener, _queue
    shutdown()
    # Longest first, so that a secret containing another is replaced whole.
    _secrets = tuple(sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True))
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.processors.LogfmtRenderer(key_order=["timestamp", "level", "event"])
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # plain text, no local variables
            redact,
            renderer,
        ],
    )
    writer = logging.StreamHandler(stream or sys.stderr)
    writer.setFormatter(formatter)
    _queue = queue.Queue()
    _listener = logging.handlers.QueueListener(_queue, writer, respect_handler_level=False)
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [_Enqueue(_queue)]
    root.setLevel(level.upper())
    # Third-party chatter that floods INFO without telling an operator anything.
    for noisy in (
        "amqtt",
        "transitions",
        "pymodbus",
        "uvicorn.access",
        "aiosqlite",
        "alembic",
        "httpx",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # aiomqtt warns about every burst of in-flight publishes ("pending publish calls");
    # connection trouble reaches us as exceptions, which we log ourselves. Imported
    # first because aiomqtt sets its logger's level when it is imported.
    import aiomqtt  # noqa: F401

    logging.getLogger("mqtt").setLevel(logging.ERROR)
    # A logger's filter runs when the record is made, in the thread that logs.
    server = logging.getLogger("uvicorn.error")
    server.filters[:] = [f for f in server.filters if not isinstance(f, _AlreadyLogged)]
    server.addFilter(_AlreadyLogged())
    structlog.configure(
        processors=[*processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
