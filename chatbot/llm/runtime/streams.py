"""One request's token stream: its reader iterates it, the scheduler thread writes to it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from chatbot.errors import ModelUnavailableError
from chatbot.llm.runtime.sampling import Sampling

_END = object()


@dataclass(eq=False)
class TokenStream:
    """One request's generated token ids, in order, as the scheduler produces them.

    Iterating blocks until the next token; closing the stream (or leaving the loop early) cancels the request.
    """

    prompt_ids: list[int]
    sampling: Sampling
    eos_ids: frozenset[int]
    timeout_s: float = 600.0
    generated: list[int] = field(default_factory=list)
    _tokens: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def __iter__(self) -> Iterator[int]:
        try:
            while True:
                try:
                    item = self._tokens.get(timeout=self.timeout_s)
                except queue.Empty:
                    raise ModelUnavailableError(f"No token from the model in {self.timeout_s:.0f} s.") from None
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def emit(self, token: int) -> bool:
        """The scheduler's side: record a sampled token; False once the request is complete."""
        if token in self.eos_ids:
            return False
        self.generated.append(token)
        self._tokens.put(token)
        return len(self.generated) < self.sampling.max_new_tokens

    def finish(self, error: BaseException | None = None) -> None:
        """The scheduler's side: end the stream, with the error its reader will raise, if any."""
        self._tokens.put(error if error is not None else _END)
