"""An ASGI layer that answers 413 before Django reads a body above DATA_UPLOAD_MAX_MEMORY_SIZE.

Django's ASGI handler spools the whole body to a temporary file before any view runs, whatever
its size; the JSON parser then refuses it, but only after the disk was written. This layer
refuses a declared Content-Length at once, and stops a chunked body as soon as it passes the limit.
"""
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from rest_framework.utils import json

from sidus.exception_handler import request_too_large_detail

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodySizeLimitMiddleware:
    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value[:20]) > limit:
                return await self._refuse(send)
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}  # Django stops reading and answers nothing
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    async def _refuse(send: Send) -> None:
        body = json.dumps({"detail": request_too_large_detail()}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
