"""Serving with a bounded, graceful shutdown. On SIGTERM (or Ctrl-C) the server stops accepting connections and
answers any further request on an open one with 503 and Retry-After; answers being written get `grace_s` seconds
to finish and are saved whole; then the rest are stopped (their model slots freed, nothing half saved, the
customer told to ask again) and the process exits 0, the signal handled rather than raised again."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

import uvicorn
from fastapi import Request, Response
from fastapi.responses import JSONResponse

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOPPED_ANSWERS_S = 3.0  # after the grace period: time for the stopped answers to tell their customers


class Draining:
    """Set once shutdown has begun; the middleware below answers 503 from then on."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def begin(self) -> None:
        self._event.set()

    @property
    def started(self) -> bool:
        return self._event.is_set()

    def middleware(self) -> Callable[..., Any]:
        async def refuse_while_draining(request: Request, call_next: Any) -> Response:
            if self.started:
                body = {"error": "ServerStopping", "message": "The assistant is restarting. Please try again shortly."}
                return JSONResponse(body, status_code=503, headers={"Retry-After": "30", "Connection": "close"})
            return await call_next(request)

        return refuse_while_draining


class GracefulServer(uvicorn.Server):
    """uvicorn's server whose shutdown is bounded by `grace_s` (then `stop_answers` is called) and exits 0; the
    customers waiting in line are sent away at once (`close_line`)."""

    def __init__(
        self,
        config: uvicorn.Config,
        draining: Draining,
        grace_s: float,
        stop_answers: Callable[[], None],
        close_line: Callable[[], None] = lambda: None,
    ) -> None:
        config.timeout_graceful_shutdown = int(grace_s + STOPPED_ANSWERS_S) + 1
        super().__init__(config)
        self._draining = draining
        self._grace_s = grace_s
        self._stop_answers = stop_answers
        self._close_line = close_line

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self._draining.started:
            self._draining.begin()
            self._close_line()  # customers still waiting in line are told to come back now
            timer = threading.Timer(self._grace_s, self._stop_answers)
            timer.daemon = True
            timer.start()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """As uvicorn's, but a signal that led to a clean shutdown is not raised again (uvicorn does, so the
        process would end by the signal rather than with status 0)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
