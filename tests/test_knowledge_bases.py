"""Knowledge bases are first-class: created, renamed and deleted whole, each with its own collection and index."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.errors import ConversationNotFoundError
from ingest.pipeline import IngestPipeline
from knowledge.errors import KnowledgeBaseBusyError, KnowledgeBaseNameError, KnowledgeBaseNotFoundError
from knowledge.service import build_knowledge_service
from tests.helpers.paths import SAMPLES


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_default_knowledge_base_exists_when_the_service_first_starts(services) -> None:
    assert [kb.name for kb in services.knowledge.knowledge_bases()] == ["default"]


def test_created_knowledge_bases_are_listed_with_counts_when_filled(services, pipeline, tmp_path: Path) -> None:
    services.knowledge.create_knowledge_base("  Billing   team ")
    pipeline.ingest_files([write(tmp_path, "a.md", "# Invoices\n\nInvoices are emailed monthly.")], "Billing team")
    listed = {kb.name: kb for kb in services.knowledge.knowledge_bases()}
    assert set(listed) == {"default", "Billing team"}
    assert (listed["Billing team"].documents, listed["Billing team"].chunks) == (1, 1)
    assert listed["default"].documents == 0


@pytest.mark.parametrize(
    ("name", "reason"),
    [("", "name"), ("   ", "name"), ("x" * 101, "at most 100"), ("bad\x07name", "control"), ("DEFAULT", "exists")],
)
def test_invalid_or_taken_name_is_refused_when_creating(services, name: str, reason: str) -> None:
    with pytest.raises(KnowledgeBaseNameError, match=reason):
        services.knowledge.create_knowledge_base(name)
    assert [kb.name for kb in services.knowledge.knowledge_bases()] == ["default"]


def test_unknown_knowledge_base_is_named_in_the_error_when_used(services, pipeline, tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseNotFoundError, match="'nowhere'"):
        pipeline.ingest_files([write(tmp_path, "a.md", "text")], "nowhere")
    with pytest.raises(KnowledgeBaseNotFoundError):
        services.chat.new_conversation("alice", "nowhere")


def test_rename_keeps_documents_searchable_and_conversations_attached(services, pipeline, tmp_path: Path) -> None:
    pipeline.ingest_files([write(tmp_path, "gift.md", "# Gift cards\n\nGift cards never expire.")], "default")
    conversation = services.chat.new_conversation("alice", "default")
    services.chat.answer("alice", conversation.id, "Do gift cards expire?")

    services.knowledge.rename_knowledge_base("default", "Lumora Support")

    assert [kb.name for kb in services.knowledge.knowledge_bases()] == ["Lumora Support"]
    hits = services.knowledge.retriever("Lumora Support").invoke("gift cards expire")
    assert hits[0].metadata["document"] == "gift.md"
    assert [d.name for d in services.knowledge.list_documents("Lumora Support")] == ["gift.md"]
    assert services.conversations.get("alice", conversation.id).kb == "Lumora Support"
    services.chat.answer("alice", conversation.id, "And store credit?")  # the conversation goes on
    with pytest.raises(KnowledgeBaseNotFoundError):
        services.knowledge.retriever("default")
    services.knowledge.create_knowledge_base("default")  # the old name is free again, with an empty collection
    assert services.knowledge.retriever("default").invoke("gift cards expire") == []


def test_rename_to_a_taken_name_changes_nothing(services) -> None:
    services.knowledge.create_knowledge_base("Sales")
    with pytest.raises(KnowledgeBaseNameError, match="exists"):
        services.knowledge.rename_knowledge_base("default", "sales")
    assert [kb.name for kb in services.knowledge.knowledge_bases()] == ["Sales", "default"]
    services.knowledge.rename_knowledge_base("Sales", "SALES")  # a change of case of its own name is fine


def test_delete_removes_vectors_documents_and_conversations(services, pipeline, tmp_path: Path) -> None:
    services.knowledge.create_knowledge_base("Old")
    pipeline.ingest_files([write(tmp_path, "a.md", "# Old\n\nThe old policy was strict.")], "Old")
    collection = services.knowledge.knowledge_base("Old").collection
    conversation = services.chat.new_conversation("bob", "Old")

    services.knowledge.delete_knowledge_base("Old")

    assert [kb.name for kb in services.knowledge.knowledge_bases()] == ["default"]
    chroma = services.knowledge._chroma
    assert collection not in [c.name for c in chroma.list_collections()]
    with pytest.raises(ConversationNotFoundError):
        services.conversations.get("bob", conversation.id)
    services.knowledge.create_knowledge_base("Old")
    assert services.knowledge.list_documents("Old") == []


def test_rename_and_delete_wait_for_an_upload_in_progress(services) -> None:
    services.knowledge.registry.begin_documents("default", [("big.pdf", "hash", 10, 3)])
    with pytest.raises(KnowledgeBaseBusyError, match="upload in progress"):
        services.knowledge.rename_knowledge_base("default", "Other")
    with pytest.raises(KnowledgeBaseBusyError):
        services.knowledge.delete_knowledge_base("default")


def test_interrupted_deletion_is_finished_when_the_service_starts(make_services, pipeline) -> None:
    services = make_services()
    services.knowledge.create_knowledge_base("Doomed")
    IngestPipeline(services.knowledge).ingest_files([SAMPLES / "warranty.pdf"], "Doomed")
    collection = services.knowledge.knowledge_base("Doomed").collection
    services.knowledge.registry.mark_knowledge_base_deleting("Doomed")  # ...and the process dies here

    restarted = build_knowledge_service(services.settings, embeddings=services.knowledge.embeddings)

    assert "Doomed" not in restarted.registry.knowledge_base_names()
    assert collection not in [c.name for c in restarted._chroma.list_collections()]


def test_chunk_preview_shows_what_the_retriever_sees_with_positions(services, pipeline) -> None:
    pipeline.ingest_files([SAMPLES / "aurora-kettle-manual.pdf"], "default")
    chunks = services.knowledge.document_chunks("default", "aurora-kettle-manual.pdf")
    assert [c.metadata["ordinal"] for c in chunks] == list(range(len(chunks)))
    assert {c.metadata["position"] for c in chunks} == {"page 1", "page 2"}
    (document,) = services.knowledge.list_documents("default")
    assert (document.kind, document.pages, document.chunk_count) == ("PDF", 2, len(chunks))


def test_cli_style_ensure_names_the_real_problem_with_a_name(services) -> None:
    assert services.knowledge.ensure_knowledge_base("  default ").name == "default"
    with pytest.raises(KnowledgeBaseNameError, match="'default' already exists"):
        services.knowledge.ensure_knowledge_base("DEFAULT")  # not "no knowledge base named 'DEFAULT'"
