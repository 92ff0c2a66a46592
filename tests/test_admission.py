"""The line in front of answering: places in order, told while waiting, refused honestly when full (429 with
Retry-After from the APIs), timed out with the busy reply, freed by a customer who leaves, closed on shutdown, one
question at a time per conversation; nothing of a refused question is stored."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from chatbot.conversation.admission import AnswerQueue
from chatbot.conversation.turns import AnswerDelta, TurnResult, Waiting
from chatbot.errors import BusyError, ConversationBusyError, ServerStoppingError
from chatbot.settings import QueueSettings
from tests.test_api import RETURNS, client_for

BUSY = "busy now"


def events(*names: str) -> Any:
    yield from (AnswerDelta(name) for name in names)


def test_customers_wait_in_order_and_are_told_their_place() -> None:
    queue = AnswerQueue(QueueSettings(answers_at_once=1))
    first = queue.admit(events("a"), BUSY)
    second = queue.admit(events("b"), BUSY)
    third = queue.admit(events("c"), BUSY)
    assert next(first) == AnswerDelta("a")  # answering
    assert next(second) == Waiting(1, pytest.approx(5.0))
    assert next(third) == Waiting(2, pytest.approx(10.0))
    assert queue.state()["waiting"] == 2
    list(first)  # the first answer ends: the second is next, the third moves up
    assert next(second) == AnswerDelta("b")
    assert next(third) == Waiting(1, pytest.approx(queue.state()["answer_s_estimate"], abs=0.01))
    second.close()
    assert list(third) == [AnswerDelta("c")]
    assert queue.state() | {"answer_s_estimate": 0} == {
        "answering": 0,
        "waiting": 0,
        "answers_at_once": 1,
        "answer_s_estimate": 0,
        "full": False,
    }


def test_a_full_line_refuses_at_once_with_a_time_to_come_back() -> None:
    queue = AnswerQueue(QueueSettings(answers_at_once=1, max_waiting=1))
    answering, waiting = queue.admit(events("a"), BUSY), queue.admit(events("b"), BUSY)
    next(answering)
    assert queue.state()["full"]
    with pytest.raises(BusyError) as refused:
        queue.admit(events("c"), BUSY)
    assert str(refused.value) == BUSY
    assert refused.value.retry_after_s >= 5
    answering.close()  # a place frees up: the next customer gets in line
    assert next(waiting) == AnswerDelta("b")
    queue.admit(events("d"), BUSY).close()


def test_the_line_is_as_long_as_the_longest_wait_allows() -> None:
    """Answers take about 5 s until measured: with two answered at once and a 12 s longest wait, four may wait."""
    queue = AnswerQueue(QueueSettings(answers_at_once=2, max_wait_s=12))
    admitted = [queue.admit(events(str(n)), BUSY) for n in range(6)]
    with pytest.raises(BusyError):
        queue.admit(events("late"), BUSY)
    assert queue.state()["waiting"] == 4
    for stream in admitted:
        stream.close()


def test_a_customer_who_waited_the_longest_wait_gets_the_busy_reply() -> None:
    queue = AnswerQueue(QueueSettings(answers_at_once=1, max_wait_s=0.3, max_waiting=5))
    answering = queue.admit(events("a"), BUSY)
    next(answering)
    waiting = queue.admit(events("b"), BUSY)
    assert isinstance(next(waiting), Waiting)
    with pytest.raises(BusyError, match=BUSY):
        next(waiting)
    assert queue.state()["waiting"] == 0


def test_a_customer_who_leaves_frees_the_place_even_unread() -> None:
    queue = AnswerQueue(QueueSettings(answers_at_once=1, max_waiting=0))
    unread = queue.admit(events("a"), BUSY, "conversation-1")  # a client gone before the first event
    with pytest.raises(BusyError):
        queue.admit(events("b"), BUSY)
    del unread
    gc.collect()
    assert queue.state()["answering"] == 0
    queue.admit(events("c"), BUSY, "conversation-1").close()


def test_one_question_at_a_time_per_conversation() -> None:
    queue = AnswerQueue(QueueSettings())
    first = queue.admit(events("a"), BUSY, "conversation-1")
    with pytest.raises(ConversationBusyError):
        queue.admit(events("again"), BUSY, "conversation-1")  # sent twice by an impatient customer
    queue.admit(events("b"), BUSY, "conversation-2").close()
    list(first)
    assert list(queue.admit(events("next"), BUSY, "conversation-1")) == [AnswerDelta("next")]


def test_on_shutdown_the_line_is_told_to_come_back() -> None:
    queue = AnswerQueue(QueueSettings(answers_at_once=1))
    answering, waiting = queue.admit(events("a"), BUSY), queue.admit(events("b"), BUSY)
    next(answering)
    assert isinstance(next(waiting), Waiting)
    told: list[Exception] = []
    reader = threading.Thread(target=lambda: told.extend(_raised(waiting)))
    reader.start()
    queue.close()
    reader.join(5)
    assert [type(e) for e in told] == [ServerStoppingError]
    with pytest.raises(ServerStoppingError):
        queue.admit(events("c"), BUSY)


def _raised(stream: Any) -> list[Exception]:
    try:
        list(stream)
    except Exception as e:
        return [e]
    return []


def test_a_question_refused_for_load_is_not_stored(make_services: Any) -> None:
    services = make_services(queue={"answers_at_once": 1, "max_waiting": 0})
    from ingest.pipeline import IngestPipeline, expand_paths
    from tests.helpers.paths import SAMPLES

    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    ann = services.chat.new_conversation("ann")
    bob = services.chat.new_conversation("bob")
    answering = services.chat.stream_answer("ann", ann.id, RETURNS)
    with pytest.raises(BusyError, match="Many customers"):
        services.chat.stream_answer("bob", bob.id, RETURNS)
    assert services.chat.transcript("bob", bob.id) == []
    assert services.chat.conversation("bob", bob.id).title == "New conversation"  # untitled: nothing was asked
    assert isinstance(list(answering)[-1], TurnResult)
    assert services.chat.answer("bob", bob.id, RETURNS).answered  # the line is free again


def test_the_apis_answer_429_with_retry_after_and_healthz_says_busy(make_services: Any) -> None:
    client, services = client_for(make_services, queue={"answers_at_once": 1, "max_waiting": 0})
    rejected_before = _rejected(client)
    answering = services.chat.stream_reply("default", RETURNS, [])  # holds the one place
    rest = client.post("/api/v1/chat", json={"question": RETURNS, "user": "bob"})
    assert rest.status_code == 429
    assert int(rest.headers["retry-after"]) >= 5
    assert "Many customers" in rest.json()["message"]
    openai = client.post(
        "/v1/chat/completions",
        json={"model": "default", "stream": True, "messages": [{"role": "user", "content": RETURNS}]},
    )
    assert openai.status_code == 429  # before the stream starts
    health = client.get("/healthz").json()
    assert health["status"] == "busy"
    assert health["queue"]["answering"] == 1
    assert _rejected(client) == rejected_before + 2
    conversations = client.get("/api/v1/conversations", params={"user": "bob"}).json()
    assert all(c["title"] != RETURNS for c in conversations)
    answering.close()
    assert client.post("/api/v1/chat", json={"question": RETURNS, "user": "bob"}).status_code == 200


def _rejected(client: Any) -> float:
    line = next(x for x in client.get("/metrics").text.splitlines() if x.startswith("ragdesk_queue_rejected_total"))
    return float(line.split()[-1])
