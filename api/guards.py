"""Request guards as plain ASGI middleware (cheap on the hot path).

- Body size: a declared ``Content-Length`` over the limit is refused before reading;
  a streamed body is counted and cut off at the limit. Multipart uploads get their
  own, larger limit.
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
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
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
