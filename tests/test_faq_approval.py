"""From a knowledge gap to an answer, through the real chat path (real Chroma, real embeddings, a SQLite file, the
quote policy): customers' unanswered questions become a topic, an admin approves an answer, it becomes a document
of the knowledge base, and the next customer asking is answered from it. And what goes wrong on the way: two
admins approving one topic, a knowledge base deleted while a draft waits, an empty answer, a removed FAQ."""

from __future__ import annotations

from typing import Any

import pytest

from chatbot.insights.faq import FaqError
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.paths import SAMPLES

CANADA = ["Do you ship to Canada?", "Can you deliver my order to Canada?", "Is shipping to Canada available?"]
ANSWER = "Yes, we ship to Canada. Delivery to Canada takes 7 to 10 business days and costs 15 euros."


@pytest.fixture
def quoting(make_services: Any) -> Any:
    """The product on the bundled samples with the quote policy: the answer is the documents' own sentences, so
    no model is needed to answer (the fake one would only be asked for drafts)."""
    services = make_services(grounding={"policy": "quote"})
    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    return services


def ask(services: Any, question: str, kb: str = "default") -> Any:
    conversation = services.chat.new_conversation("customer", kb)
    return services.chat.answer("customer", conversation.id, question)


def canada_topic(services: Any, kb: str = "default") -> Any:
    for question in CANADA:
        assert not ask(services, question, kb).answered, question
    [topic] = [t for t in services.insights.gaps.topics(kb) if CANADA[0] in t.examples]
    return topic


def test_an_approved_answer_answers_the_next_customer(quoting: Any) -> None:
    topic = canada_topic(quoting)
    assert sorted(topic.examples) == sorted(CANADA)
    draft = quoting.insights.draft(topic.key, ANSWER, by="ana")
    assert (draft.status, draft.written_by) == ("draft", "ana")
    assert not ask(quoting, "Do you ship to Canada?").answered  # a draft is not live

    entry = quoting.insights.approve(draft.id, ANSWER, "ana")
    assert (entry.status, entry.approved_by) == ("approved", "ana")
    documents = {d.name for d in quoting.knowledge.list_documents("default")}
    assert entry.document in documents

    reply = ask(quoting, "Can you ship my parcel to Canada?")
    assert reply.answered
    assert "7 to 10 business days" in reply.answer
    assert reply.citations[0].document == entry.document
    still_open = {q.message_id for t in quoting.insights.gaps.topics() for q in t.questions}
    assert not still_open & {q.message_id for q in topic.questions}  # the topic's questions are no longer gaps
    [case] = quoting.insights.sets.cases("default")
    assert (case.question, case.expected, case.origin) == (topic.examples[0], ANSWER, "faq")


def test_two_admins_approving_one_topic_add_one_entry_and_keep_the_second_text(quoting: Any) -> None:
    topic = canada_topic(quoting)
    first = quoting.insights.draft(topic.key, ANSWER, by="ana")
    second = quoting.insights.draft(topic.key, "We deliver to Canada in about a week.", by="ben")
    quoting.insights.approve(first.id, ANSWER, "ana")
    with pytest.raises(
        FaqError, match=f"Another admin just answered this topic .*#{first.id} by ana.*draft #{second.id}"
    ):
        quoting.insights.approve(second.id, "We deliver to Canada in about a week.", "ben")
    kept = quoting.insights.faq.get(second.id)
    assert (kept.status, kept.answer) == ("draft", "We deliver to Canada in about a week.")
    faq_documents = [d.name for d in quoting.knowledge.list_documents("default") if d.name.startswith("FAQ")]
    assert len(faq_documents) == 1
    with pytest.raises(FaqError, match="already approved by ana"):
        quoting.insights.approve(first.id, ANSWER, "ben")


def test_a_knowledge_base_deleted_while_a_draft_waits_keeps_the_draft(quoting: Any) -> None:
    quoting.knowledge.create_knowledge_base("shop")
    IngestPipeline(quoting.knowledge).ingest_files(expand_paths([SAMPLES / "shipping.html"]), "shop")
    topic = canada_topic(quoting, "shop")
    draft = quoting.insights.draft(topic.key, ANSWER, by="ana")
    quoting.knowledge.delete_knowledge_base("shop")
    with pytest.raises(FaqError, match=f"'shop' no longer exists, so nothing was added; .* draft #{draft.id}"):
        quoting.insights.approve(draft.id, ANSWER + " Edited.", "ana")
    kept = quoting.insights.faq.get(draft.id)
    assert (kept.status, kept.answer) == ("draft", ANSWER + " Edited.")


def test_an_empty_or_huge_answer_is_refused_and_the_draft_kept(quoting: Any) -> None:
    topic = canada_topic(quoting)
    draft = quoting.insights.draft(topic.key, ANSWER, by="ana")
    with pytest.raises(FaqError, match="The answer is empty"):
        quoting.insights.approve(draft.id, "   ", "ana")
    with pytest.raises(FaqError, match="5,000 characters; an FAQ answer holds at most 4,000"):
        quoting.insights.approve(draft.id, "x" * 5000, "ana")
    assert quoting.insights.faq.get(draft.id).answer == ANSWER
    assert not any(d.name.startswith("FAQ") for d in quoting.knowledge.list_documents("default"))


def test_a_removed_faq_document_makes_its_questions_a_gap_again(quoting: Any) -> None:
    topic = canada_topic(quoting)
    entry = quoting.insights.approve(quoting.insights.draft(topic.key, ANSWER, by="ana").id, ANSWER, "ana")
    assert quoting.knowledge.remove_document("default", entry.document)
    assert quoting.insights.faq.get(entry.id).status == "approved"
    assert [e.status for e in quoting.insights.faq.entries("default")] == ["removed"]
    assert any(CANADA[0] in t.examples for t in quoting.insights.gaps.topics())


def test_the_model_s_draft_is_marked_and_nothing_goes_live(make_services: Any) -> None:
    services = make_services(llm={"backend": "fake", "fake_responses": ["We ship to Canada in [number of days]."]})
    topic = canada_topic(services)
    draft = services.insights.draft(topic.key)
    assert (draft.written_by, draft.status, draft.answer) == (
        "model",
        "draft",
        "We ship to Canada in [number of days].",
    )
    assert services.knowledge.list_documents("default") == []
    with pytest.raises(FaqError, match="no longer a knowledge gap"):
        services.insights.topic("default:999999")
