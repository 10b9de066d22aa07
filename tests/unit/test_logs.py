"""The log never shows a credential and never a frame's local variables."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Iterator

import pytest
import structlog

from wcs.logs import REDACTED, configure_logging, flush, scrub, shutdown

SECRET = "s3cr3t-value-known-to-settings-77"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging("INFO", secrets=[SECRET, None, ""], stream=out)
    yield out
    shutdown()
    root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("Authorization: Bearer abcdef123456", "abcdef123456"),
        ("(b'authorization', b'Bearer wcs_AbCdEfGhIjKlMnOpQrStUv')", "wcs_AbCdEfGhIjKlMnOpQrStUv"),
        ("{'authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
        ("connecting to postgresql+asyncpg://wcs:hunter2hunter@db:5432/wcs", "hunter2hunter"),
        ("mqtt://controller:Zx9-pass_word@broker:1883 refused", "Zx9-pass_word"),
        ("smtp login failed password=opensesame42 user=ops", "opensesame42"),
        ('{"token": "tok-123456789", "n": 1}', "tok-123456789"),
        ("api_key: ak_live_99887766", "ak_live_99887766"),
        ("issued wcs_abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz0123"),
        (f"value {SECRET} seen", SECRET),
    ],
)
def test_scrub_removes_credentials(stream: io.StringIO, text: str, gone: str) -> None:
    cleaned = scrub(text)
    assert gone not in cleaned and REDACTED in cleaned


def test_scrub_leaves_ordinary_text_alone(stream: io.StringIO) -> None:
    text = "order o-1 moved to packed; 3 tokens left; http://127.0.0.1:8000/status"
    assert scrub(text) == text


def test_a_traceback_has_no_locals_and_no_secret(stream: io.StringIO) -> None:
    def handler(authorization: str) -> None:
        headers = {"authorization": authorization, "x-request-id": "r-1"}  # noqa: F841
        raise RuntimeError(f"failed for {authorization}")

    try:
        handler(f"Bearer {SECRET}")
    except RuntimeError:
        logging.getLogger("api").exception("unhandled error")
    flush()
    out = stream.getvalue()
    lines = out.strip().splitlines()
    assert len(lines) == 1, out  # one record, one line
    assert "Traceback" in out and "RuntimeError" in out
    assert SECRET not in out
    assert "x-request-id" not in out  # frames' locals are not shown


def test_structured_fields_with_sensitive_names_are_redacted(stream: io.StringIO) -> None:
    log = structlog.get_logger("carrier")
    log.warning("booking failed", password="pw-123", token="t-456", url="http://u:p4ss@h/x", n=3)
    logging.getLogger("lib").warning("login %s", {"Authorization": "Bearer zzz-top"})
    flush()
    out = stream.getvalue()
    for gone in ("pw-123", "t-456", "p4ss", "zzz-top"):
        assert gone not in out
    assert "n=3" in out and "level=warning" in out


def test_json_lines(stream: io.StringIO) -> None:
    out = io.StringIO()
    configure_logging("INFO", json=True, secrets=[SECRET], stream=out)
    logging.getLogger("x").error("boom %s", SECRET)
    flush()
    record = json.loads(out.getvalue())
    assert record["event"] == f"boom {REDACTED}" and record["level"] == "error"


class _SlowTerminal(io.StringIO):
    """A stream that takes its time, as a terminal or a pipe nobody reads does."""

    def write(self, text: str) -> int:
        time.sleep(0.05)
        return super().write(text)


async def test_errors_are_logged_without_holding_up_the_event_loop() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = _SlowTerminal()
    configure_logging("INFO", stream=out)
    try:
        log = structlog.get_logger("api")
        started = time.perf_counter()
        for n in range(40):
            try:
                raise RuntimeError(f"boom {n}")
            except RuntimeError:
                log.exception("unhandled error", path="/api/v1/orders")
            await asyncio.sleep(0)
        spent = time.perf_counter() - started
        # Written inline, 40 records would hold the loop for 2 s or more.
        assert spent < 0.5, spent
        flush()
        assert out.getvalue().count("unhandled error") == 40
    finally:
        shutdown()
        root.handlers[:], root.level = handlers, level
