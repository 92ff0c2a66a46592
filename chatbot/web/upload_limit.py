"""UploadLimit: a request body larger than the limit is refused with 413 as soon as that is known: at once from its
Content-Length, or while it streams in (chunked), so a 10 GB upload is never written to a temporary folder."""

from __future__ import annotations

import json
from typing import Any

Message = dict[str, Any]

_REFUSAL_STATUS = 413


class UploadLimit:
    """Pure ASGI middleware around the whole app (the API and the pages' upload routes)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send)
            return
        await _Counted(self, scope, receive, send).run()

    async def _refuse(self, send: Any) -> None:
        limit_mb = self.max_bytes // 2**20
        body = json.dumps(
            {"error": "UploadTooLarge", "message": f"The upload is larger than {limit_mb:,} MB; send fewer files."}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": _REFUSAL_STATUS, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _Counted:
    """One request whose body is counted as it arrives; past the limit the app is told the client went away."""

    def __init__(self, limit: UploadLimit, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.limit, self.scope, self.receive, self.send = limit, scope, receive, send
        self.seen, self.started, self.refused = 0, False, False

    async def run(self) -> None:
        try:
            await self.limit.app(self.scope, self._receive, self._send)
        except Exception:
            if not self.refused:
                raise  # the app's own failure; ours was already answered

    async def _receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message: Message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit.max_bytes:
                self.refused = True
                if not self.started:
                    await self.limit._refuse(self.send)
                return {"type": "http.disconnect"}
        return message

    async def _send(self, message: Message) -> None:
        if self.refused:
            return  # the 413 went out; whatever the app says after the body stopped is dropped
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)
