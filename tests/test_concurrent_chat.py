"""Many customers at once on one in-process model: every answer streams, and they share forward passes."""

from __future__ import annotations

import threading

from chatbot.conversation.turns import AnswerDelta, TurnResult
from chatbot.llm.factory import build_local_model
from chatbot.llm.local_model import LocalChatModel, load_local_weights
from chatbot.llm.runtime.batching import BatchScheduler
from chatbot.llm.runtime.sampling import Sampling
from chatbot.settings import LLMSettings
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.paths import SAMPLES
from tests.helpers.tiny_model import HeldModel

QUESTIONS = [
    "How long do I have to return an item?",
    "Can I return an item that arrived damaged?",
    "How do I reset my password?",
    "How long does shipping take?",
    "Do you ship internationally?",
    "How do I change my delivery address?",
    "What payment methods do you accept?",
    "How do I cancel my order?",
]


def test_eight_customers_at_once_all_get_streamed_answers(make_services, tiny_model_dir, tmp_path) -> None:
    cfg = LLMSettings(backend="local", local={"model": str(tiny_model_dir), "device": "cpu"})
    llm = build_local_model(cfg, tmp_path)
    # answers of 24 tokens; a random-weight model's words are not checked against the documents
    services = make_services(
        chat_model=llm, llm={"backend": "local", "max_new_tokens": 24}, grounding={"policy": "off"}
    )
    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    events: dict[int, list] = {}

    def customer(i: int) -> None:
        owner = f"customer-{i}"
        conversation = services.chat.new_conversation(owner)
        events[i] = list(services.chat.stream_answer(owner, conversation.id, QUESTIONS[i]))

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(len(QUESTIONS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert sorted(events) == list(range(len(QUESTIONS)))
    for i, customer_events in events.items():
        saved = customer_events[-1]
        assert isinstance(saved, TurnResult), f"customer {i}: {customer_events[-1]!r}"
        if saved.answered:
            deltas = [e.text for e in customer_events if isinstance(e, AnswerDelta)]
            assert len(deltas) > 1
            assert "".join(deltas) == saved.answer
    assert sum(isinstance(events[i][-1], TurnResult) and events[i][-1].answered for i in events) >= 4
    assert llm.scheduler.largest_batch > 1  # answers were generated together, not one after another
    llm.scheduler.close()


def test_a_customer_who_leaves_mid_answer_frees_the_slot(make_services, tiny_model_dir, tmp_path) -> None:
    """Closing the answer stream (what the web server does when the browser goes away) reaches the model."""
    cfg = LLMSettings(backend="local", local={"model": str(tiny_model_dir), "device": "cpu"})
    weights = load_local_weights(cfg, tmp_path)
    held = HeldModel(weights.model)
    held.pause_after = 8  # a few tokens of the answer, then the model waits for the test
    scheduler = BatchScheduler(held, model_name="tiny", max_batch=1)
    llm = LocalChatModel.from_weights(weights, scheduler, context_window=1024)
    services = make_services(
        chat_model=llm, llm={"backend": "local", "max_new_tokens": 200}, grounding={"policy": "off"}
    )
    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    conversation = services.chat.new_conversation("leaver")
    answer = services.chat.stream_answer("leaver", conversation.id, QUESTIONS[0])
    next(e for e in answer if isinstance(e, AnswerDelta))  # the answer is streaming

    answer.close()
    held.resume()

    after = list(llm.scheduler.submit([5, 6, 7], Sampling(max_new_tokens=2), frozenset()))
    assert len(after) == 2  # the only slot was given up
    assert llm.scheduler.steps < 20  # the left answer stopped; it did not run on to its 200 tokens
    llm.scheduler.close()
