"""Write leases: a replica (or a CLI ingest) starting while another process writes a document leaves that write
alone; what a crashed writer left is rolled back, at once when it ran on this host, when its lease runs out when
it ran on another; and an ingest refuses a database whose schema is older than its code."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from knowledge.database import open_database
from knowledge.errors import RagdeskError
from knowledge.service import ChunkDraft, DocumentDraft, build_knowledge_service
from knowledge.write_lease import abandoned

pytestmark = pytest.mark.both_databases
DEAD_WRITER = f"{socket.gethostname()}:{2**31}:0"  # this host, a process that cannot exist


def draft(name: str, text: str) -> DocumentDraft:
    return DocumentDraft(name, name.ljust(64, "0"), len(text), [ChunkDraft(text, {"title": name})])


def vector_ids(services: Any) -> set[str]:
    return set(services.knowledge.vector_store("default")._collection.get(include=[])["ids"])


def test_a_start_during_an_upload_leaves_the_upload_alone(make_services) -> None:  # type: ignore[no-untyped-def]
    writer = make_services()
    stored, go = threading.Event(), threading.Event()
    complete = writer.knowledge.registry.complete_documents

    def complete_later(records: Any) -> None:  # the vectors are written; the registry rows are not yet
        stored.set()
        go.wait(timeout=60)
        complete(records)

    writer.knowledge.registry.complete_documents = complete_later
    upload = threading.Thread(target=writer.knowledge.add_documents, args=("default", [draft("a.md", "Kettles boil.")]))
    upload.start()
    assert stored.wait(timeout=60)
    replica = make_services()  # its start reconciles: the upload is someone else's
    go.set()
    upload.join(timeout=60)

    assert [d.name for d in replica.knowledge.list_documents("default")] == ["a.md"]
    chunks = {c.id for c in replica.knowledge.keyword_index("default").chunks}
    assert len(chunks) == 1
    assert vector_ids(replica) == chunks


def test_a_crashed_writer_on_this_host_is_rolled_back_at_once(make_services, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    services = make_services()
    monkeypatch.setattr("knowledge.registry.this_writer", lambda: DEAD_WRITER)
    services.knowledge.registry.begin_documents("default", [("lost.md", "h" * 64, 10, None)])
    monkeypatch.undo()

    restarted = make_services()
    assert restarted.knowledge.registry.held_document_ids() == set()
    assert [d.name for d in restarted.knowledge.registry.list_documents("default")] == []


def test_another_hosts_write_is_kept_until_its_lease_runs_out(make_services, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    services = make_services()
    registry = services.knowledge.registry
    monkeypatch.setattr("knowledge.registry.this_writer", lambda: "another-host:7:123")
    (live,) = registry.begin_documents("default", [("live.md", "l" * 64, 10, None)])
    monkeypatch.setattr("knowledge.registry.LEASE", timedelta(seconds=-1))
    registry.begin_documents("default", [("lapsed.md", "x" * 64, 10, None)])
    monkeypatch.undo()

    make_services()  # a start
    assert registry.held_document_ids() == {live}
    assert [d.name for d in registry.unfinished_documents()] == []
    assert [d.name for d in registry.list_documents("default")] == ["live.md"]


def test_uploading_a_file_again_after_a_crash_replaces_what_the_crash_left(make_services, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    services = make_services()
    monkeypatch.setattr("knowledge.registry.this_writer", lambda: DEAD_WRITER)
    services.knowledge.registry.begin_documents("default", [("faq.md", "f" * 64, 10, None)])
    monkeypatch.undo()

    (info,) = services.knowledge.add_documents("default", [draft("faq.md", "Returns take 30 days.")])
    assert info.status == "ready"
    assert [d.name for d in services.knowledge.list_documents("default")] == ["faq.md"]


def test_an_ingest_refuses_a_database_older_than_its_code(make_services, make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings()
    make_services().close()
    engine = open_database(settings.sqlalchemy_url)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE documents DROP COLUMN lease_expires_at"))
    engine.dispose()

    with pytest.raises(RagdeskError, match=r"no documents\.lease_expires_at column.*chatbot\.migrations upgrade"):
        build_knowledge_service(settings)


def test_a_lease_read_back_in_another_time_zone_is_compared_as_the_same_instant() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    paris = timezone(timedelta(hours=1))  # PostgreSQL hands times back in its session's zone
    assert not abandoned("elsewhere:1:1", datetime(2026, 12, 7, 13, 0, 30, tzinfo=paris), now)
    assert abandoned("elsewhere:1:1", datetime(2026, 12, 7, 12, 59, 30, tzinfo=paris), now)
    assert not abandoned("elsewhere:1:1", datetime(2026, 12, 7, 12, 0, 30), now)  # SQLite: UTC without its zone
