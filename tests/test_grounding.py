"""The grounding check: hand-written answer/passage pairs, and an unsupported sentence never reaching a customer
through the chat page, the REST API or the OpenAI-compatible API, while the stored turn says why."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from app import build_web_app
from chatbot.conversation.conversation_search import ConversationQuery
from chatbot.conversation.grounding import GroundingCheck, split_sentences
from chatbot.settings import GroundingSettings, PortalSettings
from chatbot.ui.chat_panel import ChatPanel
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.paths import SAMPLES

RETURNS = (
    "You have 30 days from the delivery date to return an item for a full refund. The item must be\n"
    "unused, in its original packaging, and include all accessories and the receipt or order number.\n"
    "Return shipping is free for customers in the European Union and the United Kingdom."
)
DAMAGED = (
    "If your item arrived damaged, report it within 48 hours of delivery. You do not need to\n"
    "send the item back first: we ship a free replacement right away."
)
SHIPPING = (
    "We deliver to all EU countries, the United Kingdom, Norway and Switzerland. "
    "Delivery outside Europe is not available yet."
)
SUPPORTED = "You have 30 days from the delivery date to return an item."
INVENTED = "You can also return it by post to our Canada office."


@pytest.fixture(scope="module")
def check(embeddings: Any) -> GroundingCheck:
    return GroundingCheck(embeddings, GroundingSettings())


@pytest.mark.parametrize(
    ("question", "answer", "reason"),
    [
        ("How long do I have to return an item?", "You have 45 days to return an item.", "number 45"),
        ("Do I have to send a damaged item back?", "You need to send the item back first.", "leaves out"),
        ("Do you ship to Canada?", "Yes, we ship to Canada.", "'Canada'"),
        ("Can I return an opened item?", "Yes, you can return an opened item.", "'opened'"),
        ("Who pays for return shipping?", "Return shipping is free for customers in Japan.", "'Japan'"),
        ("How long do I have to return an item?", "I hope this helps!", "not in the documents"),
    ],
)
def test_a_sentence_the_passages_do_not_support_is_rejected_with_the_reason(
    check: GroundingCheck, question: str, answer: str, reason: str
) -> None:
    verdict = check.evidence([RETURNS, DAMAGED, SHIPPING], question).judge(answer)
    assert not verdict.supported
    assert reason in (verdict.reason or "")
    assert verdict.citations == ()


@pytest.mark.parametrize(
    ("question", "answer", "cited"),
    [
        ("How long do I have to return an item?", "You can return an item within 30 days of delivery.", 1),
        ("Do I have to send a damaged item back?", "No, you do not need to send it back first.", 2),
        ("Do you deliver to Norway?", "Yes, we deliver to Norway.", 3),
        ("What if my parcel arrives broken?", "Report the damage within 48 hours of delivery.", 2),
    ],
)
def test_a_faithful_paraphrase_passes_and_cites_its_passage(
    check: GroundingCheck, question: str, answer: str, cited: int
) -> None:
    verdict = check.evidence([RETURNS, DAMAGED, SHIPPING], question).judge(answer)
    assert verdict.supported, verdict.reason
    assert cited in verdict.citations


def test_sentences_are_split_as_they_stream_and_wrapped_lines_do_not_end_one() -> None:
    assert split_sentences("It is 2 years. Register to get") == (["It is 2 years."], "Register to get")
    assert split_sentences("Costs 4.95 euros") == ([], "Costs 4.95 euros")


def _scripted(make_services: Any, answer: str, **overrides: Any) -> Any:
    model = FakeListChatModel(responses=[answer])
    services = make_services(chat_model=model, **overrides)
    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    return services


def test_an_unsupported_sentence_never_reaches_the_rest_api_and_the_turn_records_why(make_services) -> None:
    services = _scripted(make_services, f"{SUPPORTED} {INVENTED}")
    client = TestClient(build_web_app(services, IngestPipeline(services.knowledge)))

    plain = client.post("/api/v1/chat", json={"question": "How long do I have to return an item?"}).json()
    stream = client.post("/api/v1/chat", json={"question": "How long do I have to return an item?", "stream": True})

    assert "Canada" not in plain["answer"]
    assert "Canada" not in stream.text
    assert plain["answer"].startswith("You have 30 days from the delivery date to return an item [1]")
    assert plain["citations"][0]["n"] == 1
    assert plain["citations"][0]["document"] == "returns-and-refunds.md"
    turn = services.conversations.transcript("local", plain["conversation_id"])[0]
    assert [(s.text, s.reason) for s in turn.dropped] == [(INVENTED, "the documents do not mention 'Canada'")]


def test_an_unsupported_sentence_never_reaches_the_openai_api(make_services) -> None:
    services = _scripted(make_services, f"{SUPPORTED} {INVENTED}")
    client = TestClient(build_web_app(services, IngestPipeline(services.knowledge)))
    body = {"model": "default", "messages": [{"role": "user", "content": "How long do I have to return an item?"}]}

    reply = client.post("/v1/chat/completions", json=body).json()
    streamed = client.post("/v1/chat/completions", json={**body, "stream": True}).text

    assert "Canada" not in reply["choices"][0]["message"]["content"]
    assert "Canada" not in streamed
    assert reply["citations"][0]["document"] == "returns-and-refunds.md"


def test_an_unsupported_sentence_is_never_on_the_chat_page_even_while_streaming(make_services) -> None:
    services = _scripted(make_services, f"{SUPPORTED} {INVENTED}")
    panel = ChatPanel(services.chat, PortalSettings())
    question = "How long do I have to return an item?"
    states = list(panel._send(question, "browser-1", None, [], "default", threading.Event()))

    shown = [str(message["content"]) for messages, *_ in states for message in messages]
    assert not any("Canada" in text for text in shown)
    assert any("30 days from the delivery date" in text for text in shown)


def test_refuse_stops_at_the_first_unsupported_sentence_and_hands_off_when_nothing_was_shown(make_services) -> None:
    services = _scripted(make_services, f"{INVENTED} {SUPPORTED}", grounding={"policy": "refuse"})
    conversation = services.chat.new_conversation("me")

    result = services.chat.answer("me", conversation.id, "How long do I have to return an item?")

    assert result.answer == services.templates.active("default").template.no_answer_reply
    assert result.refusal == "the documents do not support the model's answer"
    assert [s.text for s in result.checked] == [INVENTED]  # the model's next sentence was never read


def test_chinese_sentences_are_checked_by_their_characters_and_numbers(check: GroundingCheck) -> None:
    faq = (SAMPLES / "faq-zh.md").read_text(encoding="utf-8")
    evidence = check.evidence([faq], "退货期限是多久？")

    assert evidence.judge("自签收之日起30天内可以申请全额退款。").citations == (1,)  # 30 = 三十
    assert "45" in (evidence.judge("自签收之日起四十五天内可以退货。").reason or "")
    assert not evidence.judge("我们提供免费的上门取件服务。").supported


def test_a_thumbs_given_while_the_answer_is_written_lands_once_the_turn_is_saved(make_services) -> None:
    import gradio as gr

    services = _scripted(make_services, SUPPORTED)
    panel = ChatPanel(services.chat, PortalSettings())
    conversation = services.chat.new_conversation("browser-1")
    question = "How long do I have to return an item?"
    writing = panel._send(question, "browser-1", conversation.id, [], "default", threading.Event())
    shown, *_ = next(writing)  # the question and the typing sign: the turn is not saved yet
    liked = gr.LikeData(None, {"index": 1, "value": "", "liked": "Outdated"})
    panel._on_feedback("browser-1", conversation.id, shown, liked)
    list(writing)  # the answer ends and the turn is saved

    stored = services.conversations.search(ConversationQuery(thumbs_down_only=True))
    assert [row.id for row in stored.rows] == [conversation.id]
