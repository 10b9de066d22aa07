"""Request guards as plain ASGI middleware (cheap on the hot path).

- Body size: a declared ``Content-Length`` over the limit is refused before reading;
  a streamed (chunked) body is read here up to the limit and refused past it; a body
  longer than it declared is cut off at the limit. Every one of them is a 413.
  Multipart uploads get their own, larger limit.
- No NUL character in the path or the query string (422), on every database alike.
- Media type: a body sent to a JSON endpoint must be ``application/json`` (or a
  ``+json`` type); upload endpoints take ``multipart/form-data``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BODY_METHODS = {"POST", "PUT", "PATCH"}


class BodyTooLarge(Exception):
    pass


async def _send_problem(send: Send, status: int, title: str, detail: str, code: str) -> None:
    body = json.dumps(
        {"type": f"urn:wcs:problem:{code}", "title": title, "status": status, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuards:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_json_bytes: int,
        max_upload_bytes: int,
        upload_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_json = max_json_bytes
        self.max_upload = max_upload_bytes
        self.upload_paths = [re.compile(p) for p in upload_paths]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"].lower():
            # No id, name or filter holds a NUL; PostgreSQL could not even compare one.
            await _send_problem(
                send, 422, "Unprocessable content", "the URL holds a NUL character", "nul"
            )
            return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        is_upload = any(p.fullmatch(path) for p in self.upload_paths)
        limit = self.max_upload if is_upload else self.max_json
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _send_problem(
                    send, 400, "Bad request", "Content-Length is not a number", "bad-length"
                )
                return
            if int(declared) > limit:
                await _send_problem(
                    send,
                    413,
                    "Payload too large",
                    f"request body is {int(declared)} bytes; the limit here is {limit} bytes",
                    "too-large",
                )
                return
        has_body = (declared is not None and int(declared) > 0) or "transfer-encoding" in headers
        if has_body and path.startswith("/api/"):
            media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            wanted_ok = (
                media == "multipart/form-data"
                if is_upload
                else media == "application/json" or media.endswith("+json")
            )
            if not wanted_ok:
                expected = "multipart/form-data" if is_upload else "application/json"
                await _send_problem(
                    send,
                    415,
                    "Unsupported media type",
                    f"send the body as {expected}, not {media or 'no Content-Type'}",
                    "media-type",
                )
                return

        if declared is None:
            # A streamed (chunked) body: read it here, up to the limit, so that an
            # oversized one is a 413 whatever the endpoint does with a failed read
            # (FastAPI turns any error while reading a body into a 400).
            body = await _read_at_most(receive, limit)
            if body is None:
                await _send_problem(
                    send,
                    413,
                    "Payload too large",
                    f"request body exceeds the limit of {limit} bytes",
                    "too-large",
                )
                return
            await self.app(scope, _replay(body, receive), send)
            return

        received = 0
        response_started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await _send_problem(
                    send,
                    413,
                    "Payload too large",
                    f"request body exceeds the limit of {limit} bytes",
                    "too-large",
                )


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the body over once, then waits as the server's would."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
