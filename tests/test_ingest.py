"""Ingest writes documents whole to registry, Chroma and keyword index, and is idempotent."""

import socket
from pathlib import Path

import pytest

from ingest.__main__ import main as ingest_cli
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.corpus import write_mixed_corpus
from tests.helpers.paths import SAMPLES

pytestmark = pytest.mark.both_databases  # SQLite and PostgreSQL


def chroma_ids(services, kb="default"):  # type: ignore[no-untyped-def]
    return set(services.knowledge.vector_store(kb)._collection.get()["ids"])


def keyword_ids(services, kb="default"):  # type: ignore[no-untyped-def]
    return {c.id for c in services.knowledge.keyword_index(kb).chunks}


def test_ingesting_the_same_files_twice_changes_nothing(services, pipeline: IngestPipeline) -> None:
    files = expand_paths([SAMPLES])
    first = pipeline.ingest_files(files, "default")
    ids_before = chroma_ids(services)
    second = pipeline.ingest_files(files, "default")

    assert {o.status for o in first.outcomes} == {"ingested"}
    assert {o.status for o in second.outcomes} == {"unchanged"}
    assert chroma_ids(services) == ids_before == keyword_ids(services)
    assert len(services.knowledge.list_documents("default")) == len(files) == 7


def test_changed_file_replaces_its_chunks_when_reingested(services, pipeline, tmp_path: Path) -> None:
    doc = tmp_path / "policy.md"
    doc.write_text("# Policy\n\nThe loyalty discount is 5 percent.")
    pipeline.ingest_files([doc], "default")
    old_ids = chroma_ids(services)
    doc.write_text("# Policy\n\nThe loyalty discount is 12 percent.")
    report = pipeline.ingest_files([doc], "default")

    assert report.outcomes[0].status == "replaced"
    assert chroma_ids(services).isdisjoint(old_ids)
    texts = [c.text for c in services.knowledge.keyword_index("default").chunks]
    assert any("12 percent" in t for t in texts)
    assert not any("5 percent" in t for t in texts)


def test_identical_content_under_another_name_is_a_duplicate(services, pipeline, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Store opening hours are 9 to 5.")
    (tmp_path / "b.txt").write_text("Store opening hours are 9 to 5.")
    report = pipeline.ingest_files([tmp_path / "a.txt", tmp_path / "b.txt"], "default")
    assert [o.status for o in report.outcomes] == ["ingested", "duplicate"]
    assert "a.txt" in report.outcomes[1].detail


def test_good_files_go_in_when_a_batch_has_broken_ones(services, pipeline, tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "good.md").write_text("# Good\n\nGift wrapping costs 3 euros.")
    (batch / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (batch / "empty.txt").write_bytes(b"")
    report = pipeline.ingest_files(sorted(batch.iterdir()), "default")

    statuses = {o.name: o.status for o in report.outcomes}
    assert statuses == {"broken.pdf": "failed", "empty.txt": "failed", "good.md": "ingested"}
    assert [d.name for d in services.knowledge.list_documents("default")] == ["good.md"]


def test_interrupted_ingest_and_removal_are_finished_when_the_service_starts(make_services, monkeypatch) -> None:
    services = make_services()
    IngestPipeline(services.knowledge).ingest_files([SAMPLES / "warranty.pdf", SAMPLES / "shipping.html"], "default")
    registry, collection = services.knowledge.registry, services.knowledge.vector_store("default")._collection
    monkeypatch.setattr("knowledge.registry.this_writer", lambda: f"{socket.gethostname()}:{2**31}:0")  # crashed
    # A crash between writing Chroma and completing the registry row...
    (half,) = registry.begin_documents("default", [("half.md", "hash", 10, None)])
    collection.add(ids=["half-1"], embeddings=[[0.1] * 384], documents=["x"], metadatas=[{"document_id": half}])
    # ...a crash in the middle of removing a document...
    registry.mark_deleting(registry.find_by_name("default", "shipping.html").id)
    # ...and a vector that no registry row owns.
    collection.add(ids=["stray"], embeddings=[[0.2] * 384], documents=["y"], metadatas=[{"document_id": 999}])

    restarted = make_services()
    assert [d.name for d in restarted.knowledge.list_documents("default")] == ["warranty.pdf"]
    assert chroma_ids(restarted) == keyword_ids(restarted)
    assert len(chroma_ids(restarted)) == restarted.knowledge.list_documents("default")[0].chunk_count


def test_cli_ingests_a_folder_and_reports_failures(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RAGDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGDESK_EMBEDDINGS__BACKEND", "fake")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "faq.md").write_text("# FAQ\n\nWe ship on Saturdays too.")
    (folder / "bad.csv").write_bytes(b"\x00\x01\x02")

    assert ingest_cli([str(folder), "--kb", "support"]) == 1
    out = capsys.readouterr().out
    assert "ingested  faq.md" in out
    assert "failed  bad.csv" in out
    assert "binary" in out

    assert ingest_cli(["--kb", "support", "--list"]) == 0
    assert "faq.md" in capsys.readouterr().out
    assert ingest_cli(["--kb", "support", "--delete", "faq.md"]) == 0
    assert ingest_cli(["--kb", "support", "--delete", "faq.md"]) == 1

    capsys.readouterr()
    assert ingest_cli(["--kb", "support", "--rename-to", "Support EU"]) == 0
    assert ingest_cli(["--knowledge-bases"]) == 0
    assert "Support EU\t0 documents" in capsys.readouterr().out
    assert ingest_cli(["--kb", "Support EU", "--delete-kb"]) == 2  # not without --yes
    assert ingest_cli(["--kb", "Support EU", "--delete-kb", "--yes"]) == 0
    assert ingest_cli(["--kb", "Support EU", "--list"]) == 1
    assert "no knowledge base named 'Support EU'" in capsys.readouterr().err


def test_cli_reports_files_of_unreadable_types_as_skipped_when_given_a_folder(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("RAGDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGDESK_EMBEDDINGS__BACKEND", "fake")
    folder = tmp_path / "docs"
    (folder / "tools").mkdir(parents=True)
    (folder / "faq.md").write_text("# FAQ\n\nWe ship on Saturdays too.")
    (folder / "program.exe").write_bytes(b"MZ\x90\x00\x03\x00")
    (folder / "tools" / "firmware.bin").write_bytes(b"\x00\x01\x02")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main")  # hidden: not a document, not reported

    assert ingest_cli([str(folder), "--kb", "support"]) == 0  # skipping is not a failure
    out = capsys.readouterr().out
    assert "ingested  faq.md  1 chunks" in out
    assert "skipped  program.exe (unsupported file type '.exe' (supported: .pdf," in out
    assert "skipped  firmware.bin (unsupported file type '.bin'" in out
    assert "1 ingested, 2 skipped" in out
    assert "HEAD" not in out
    assert ingest_cli(["--kb", "support", "--list"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["faq.md"]


def test_upload_report_names_a_file_of_an_unreadable_type_as_skipped_with_the_reason(
    services, pipeline, tmp_path: Path
) -> None:
    saved = tmp_path / "00000"  # an upload is saved under a number and ingested under the name it was sent with
    saved.write_bytes(b"MZ\x90\x00\x03\x00")
    good = tmp_path / "00001"
    good.write_text("# Hours\n\nThe shop opens at nine.")
    report = pipeline.ingest_files([(saved, "program.exe"), (good, "hours.md")], "default")

    assert [(o.name, o.status) for o in report.outcomes] == [("program.exe", "skipped"), ("hours.md", "ingested")]
    assert report.skipped[0].detail.startswith("unsupported file type '.exe' (supported: .pdf, .docx")
    assert report.failed == []
    assert report.summary() == "1 skipped, 1 ingested"
    assert [d.name for d in services.knowledge.list_documents("default")] == ["hours.md"]


@pytest.mark.parametrize("kb", ["default", "Support (EU) · 客服 & Co."])
def test_knowledge_bases_are_kept_apart(services, pipeline, tmp_path: Path, kb: str) -> None:
    (tmp_path / "a.md").write_text("# A\n\nThe secret word is marmalade.")
    services.knowledge.ensure_knowledge_base(kb)
    pipeline.ingest_files([tmp_path / "a.md"], kb)
    other = "other" if kb == "default" else "default"
    services.knowledge.ensure_knowledge_base(other)
    assert services.knowledge.retriever(other).invoke("marmalade") == []
    assert services.knowledge.retriever(kb).invoke("marmalade")[0].metadata["document"] == "a.md"


def test_two_uploads_at_once_leave_the_stores_in_agreement(services, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(12):
        (folder / f"note-{n:02d}.md").write_text(f"# Note {n}\n\nOpening hours of store {n} are {n + 8} to 18.")
    files = sorted(folder.iterdir())
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(
            lambda part: IngestPipeline(services.knowledge).ingest_files(part, "default"), [files[:8], files[4:]]
        )

    names = [d.name for d in services.knowledge.list_documents("default")]
    assert names == [f.name for f in files]  # each document once, none lost
    for outcome in first.outcomes + second.outcomes:
        assert outcome.status in {"ingested", "unchanged"} or "in progress" in outcome.detail
    assert chroma_ids(services) == keyword_ids(services)
    assert {d.status for d in services.knowledge.list_documents("default")} == {"ready"}


def test_mixed_folder_goes_in_except_the_broken_files_each_named_with_its_reason(services, pipeline, tmp_path) -> None:
    broken = write_mixed_corpus(tmp_path / "mixed")
    report = pipeline.ingest_files(expand_paths([tmp_path / "mixed"]), "default")

    failed = {o.name: o.detail for o in report.failed}
    assert set(failed) == set(broken)
    for name, reason in broken.items():
        assert reason in failed[name], (name, failed[name])
    assert [o.status for o in report.outcomes if o.name not in broken] == ["ingested"] * 42
    documents = services.knowledge.list_documents("default")
    assert len(documents) == 42
    assert {d.kind for d in documents} == {"MD", "TXT", "HTML", "CSV", "DOCX", "PDF", "XLSX", "PPTX"}
    assert chroma_ids(services) == keyword_ids(services)
    for n in (0, 5, 13, 41):  # md, pdf, docx, xlsx...
        hit = services.knowledge.retriever("default").invoke(f"Policy code QX{n:03d}")[0]
        assert f"QX{n:03d}" in hit.page_content
    gbk = services.knowledge.retriever("default").invoke("Note 1 policy code QX001")[0]
    assert "顾客服务说明" in gbk.page_content  # the GBK .txt read as Chinese, not mojibake
