"""Admission control: a bounded, honest queue in front of answering.

At most `answers_at_once` answers are written at a time; the next customers wait in line, in order, and are told
their place while they wait. A customer is admitted to the line only while the wait it would face, estimated from
the measured time answers take, is within `max_wait_s` (or, when `max_waiting` is set, while the line is shorter);
otherwise BusyError at once (the APIs answer 429 with Retry-After, the pages a busy reply in the customer's
language). A customer still in line after `max_wait_s` gets the busy reply too. A customer who leaves the line
(closed page, dropped connection) frees the place; on shutdown everyone still in line is told to come back.
Nothing of a turn refused for load is stored.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import Any

from chatbot.conversation.turns import TurnEvent, Waiting
from chatbot.errors import BusyError, ConversationBusyError, ServerStoppingError
from chatbot.settings import QueueSettings
from knowledge import metrics

FIRST_GUESS_S = 5.0  # how long an answer takes, until answers have been measured
SMOOTHING = 0.2  # weight of the latest answer's time in the running estimate


class Ticket:
    """One customer's place: in line, then answering, then gone (leave() is safe to call more than once)."""

    def __init__(self, queue: AnswerQueue) -> None:
        self._queue = queue
        self.admitted = False
        self.left = False
        self.since = time.monotonic()
        self.started = 0.0

    def wait(self, busy_message: str) -> Generator[Waiting, None, None]:
        """Yields the customer's place whenever it changes, until it is their turn;
        BusyError after the longest wait, ServerStoppingError when the server shuts down."""
        yield from self._queue.wait_for_turn(self, busy_message)

    def leave(self) -> None:
        self._queue.leave(self)


class _Admitted(Generator[TurnEvent, None, None]):
    """A turn's events behind its place in line; closing it frees the place even before the first event (a
    generator closed unstarted runs no `finally`)."""

    def __init__(self, events: Generator[TurnEvent, None, None], leave: Callable[[], None]) -> None:
        self._events = events
        self._leave = leave

    def send(self, value: None) -> TurnEvent:
        return self._events.send(value)

    def throw(self, *args: Any) -> TurnEvent:  # type: ignore[override]
        return self._events.throw(*args)

    def close(self) -> None:
        try:
            self._events.close()
        finally:
            self._leave()


class AnswerQueue:
    def __init__(self, settings: QueueSettings) -> None:
        self.settings = settings
        self._lock = threading.Condition()
        self._line: deque[Ticket] = deque()
        self._answering = 0
        self._answer_s = FIRST_GUESS_S
        self._closed = False
        self._conversations: set[str] = set()  # conversations with a question in line or being answered

    # ---- what the server reports -------------------------------------------------------
    def state(self) -> dict[str, float | int | bool]:
        with self._lock:
            return {
                "answering": self._answering,
                "waiting": len(self._line),
                "answers_at_once": self.settings.answers_at_once,
                "answer_s_estimate": round(self._answer_s, 2),
                "full": self._full(),
            }

    # ---- a customer's way through ------------------------------------------------------
    def admit(
        self, events: Iterator[TurnEvent], busy_message: str, conversation_id: str | None = None
    ) -> Generator[TurnEvent, None, None]:
        """The turn's events behind a place in line: BusyError (or ConversationBusyError, for a second question in
        a conversation still answering one) is raised here, before any event; then Waiting events while in line,
        then the turn's own. However the events end (answered, refused, closed unread), the place is freed."""
        self._claim(conversation_id)
        try:
            ticket = self.enter(busy_message)
        except BaseException:
            self._release(conversation_id)
            raise

        def leave() -> None:
            ticket.leave()
            self._release(conversation_id)

        admitted = _Admitted(self._through(ticket, events, busy_message, leave), leave)
        weakref.finalize(admitted, leave)  # a stream dropped unread frees its place too
        return admitted

    @staticmethod
    def _through(
        ticket: Ticket, events: Iterator[TurnEvent], busy_message: str, leave: Callable[[], None]
    ) -> Generator[TurnEvent, None, None]:
        try:
            yield from ticket.wait(busy_message)
            yield from events
        finally:
            leave()

    def _claim(self, conversation_id: str | None) -> None:
        with self._lock:
            if conversation_id in self._conversations:
                raise ConversationBusyError(
                    "This conversation is still answering your previous question. Please wait for that answer."
                )
            if conversation_id is not None:
                self._conversations.add(conversation_id)

    def _release(self, conversation_id: str | None) -> None:
        with self._lock:
            self._conversations.discard(conversation_id)  # type: ignore[arg-type]

    def enter(self, busy_message: str) -> Ticket:
        """A place in line, or BusyError when the wait would be too long (or the server is shutting down)."""
        with self._lock:
            if self._closed:
                raise ServerStoppingError("The assistant is restarting. Please ask again in a moment.")
            if self._full():
                metrics.QUEUE_REJECTED.inc()
                raise BusyError(busy_message, retry_after_s=self._retry_after_s())
            ticket = Ticket(self)
            self._line.append(ticket)
            self._admit()
            metrics.QUEUE_WAITING.set(len(self._line))
            return ticket

    def wait_for_turn(self, ticket: Ticket, busy_message: str) -> Generator[Waiting, None, None]:
        shown = 0
        while True:
            with self._lock:
                place = self._place(ticket, busy_message)
                if place is None:
                    return
                if place.position == shown:  # no news: wait for a change (or re-check the clock now and then)
                    self._lock.wait(timeout=1.0)
                    continue
            shown = place.position
            yield place  # outside the lock: the customer's page is updated meanwhile

    def leave(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket.left:
                return
            ticket.left = True
            if ticket.admitted:
                self._answering -= 1
                took = time.monotonic() - ticket.started
                self._answer_s = (1 - SMOOTHING) * self._answer_s + SMOOTHING * took
                metrics.QUEUE_ANSWER_SECONDS.observe(took)
            elif ticket in self._line:
                self._line.remove(ticket)
            self._admit()
            metrics.QUEUE_WAITING.set(len(self._line))

    def close(self) -> None:
        """Shutting down: nobody new gets in line, and everyone in line is told to come back."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    # ---- inside the lock ---------------------------------------------------------------
    def _admit(self) -> None:
        while self._line and self._answering < self.settings.answers_at_once:
            ticket = self._line.popleft()
            ticket.admitted, ticket.started = True, time.monotonic()
            self._answering += 1
            metrics.QUEUE_WAIT_SECONDS.observe(ticket.started - ticket.since)
        self._lock.notify_all()

    def _place(self, ticket: Ticket, busy_message: str) -> Waiting | None:
        """The ticket's place in line; None once admitted; raises when the server closes or the wait ran out."""
        if ticket.admitted:
            return None
        if self._closed:
            self._drop(ticket)
            raise ServerStoppingError("The assistant is restarting. Please ask again in a moment.")
        if time.monotonic() - ticket.since > self.settings.max_wait_s:
            self._drop(ticket)
            metrics.QUEUE_TIMED_OUT.inc()
            raise BusyError(busy_message, retry_after_s=self._retry_after_s())
        position = self._line.index(ticket) + 1
        return Waiting(position, self._estimate_s(position))

    def _drop(self, ticket: Ticket) -> None:
        ticket.left = True
        if ticket in self._line:
            self._line.remove(ticket)
        metrics.QUEUE_WAITING.set(len(self._line))
        self._lock.notify_all()

    def _estimate_s(self, position: int) -> float:
        """Seconds until the customer at `position` in line starts: rounds of answers ahead of them."""
        return math.ceil(position / self.settings.answers_at_once) * self._answer_s

    def _full(self) -> bool:
        if self._answering < self.settings.answers_at_once:
            return False
        waiting = len(self._line)
        if self.settings.max_waiting is not None:
            return waiting >= self.settings.max_waiting
        return self._estimate_s(waiting + 1) > self.settings.max_wait_s

    def _retry_after_s(self) -> int:
        return max(5, math.ceil(self._answer_s))
