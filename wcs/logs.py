"""Structured logging: one call at process start, key=value or JSON lines."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=processors,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
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
    structlog.configure(
        processors=[*processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
