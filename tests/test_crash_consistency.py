"""A document is either fully searchable or absent, even when ingest is killed with SIGKILL at random points."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge.registry import READY
from knowledge.service import build_knowledge_service
from knowledge.settings import KnowledgeSettings
from tests.helpers.paths import REPO

pytestmark = pytest.mark.slow
TOPICS = ["returns", "shipping", "warranty", "passwords", "kettles", "invoices", "stores", "gift cards"]


def write_corpus(folder: Path, documents: int) -> None:
    folder.mkdir()
    for n in range(documents):
        topic = TOPICS[n % len(TOPICS)]
        paragraphs = [
            f"Policy {n}.{p} about {topic}: customers in region {p} get answer {n * 31 + p} within {p + 2} days." * 6
            for p in range(8)
        ]
        (folder / f"policy-{n:03d}.md").write_text(f"# Policy {n} ({topic})\n\n" + "\n\n".join(paragraphs))


def start_ingest(corpus: Path, data: Path) -> subprocess.Popen:
    env = {**os.environ, "RAGDESK_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "ingest", str(corpus), "--kb", "crash"]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_first_row(process: subprocess.Popen, database: Path) -> None:
    """Block until the ingest has registered a document (or finished), so the kill lands inside the ingest."""
    while process.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)
        if database.exists():
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
                try:
                    if connection.execute("select count(*) from documents").fetchone()[0]:
                        return
                except sqlite3.OperationalError:
                    pass  # tables not created yet


def kill_after(process: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL the process after `seconds` unless it ends first; returns whether it was killed."""
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return True


def assert_stores_agree(data: Path, embeddings) -> int:  # type: ignore[no-untyped-def]
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # see what is on disk, not what an earlier client cached
    knowledge = build_knowledge_service(KnowledgeSettings(_env_file=None, data_dir=data), embeddings=embeddings)
    documents = knowledge.list_documents("crash")
    registry_ids = {c.id for c in knowledge.registry.ready_chunks("crash")}
    chroma_ids = set(knowledge.vector_store("crash")._collection.get(include=[])["ids"])
    keyword_ids = {c.id for c in knowledge.keyword_index("crash").chunks}

    assert all(d.status == READY for d in documents)
    assert sum(d.chunk_count for d in documents) == len(registry_ids)
    assert registry_ids == chroma_ids, "orphan vectors or missing vectors"
    assert registry_ids == keyword_ids
    return len(documents)


def test_stores_agree_after_ingest_is_killed_at_random_points(tmp_path: Path, embeddings) -> None:
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    write_corpus(corpus, documents=48)
    rng = random.Random(20261122)
    killed = 0
    for _ in range(3):
        with start_ingest(corpus, data) as process:  # closes its stderr pipe once it is gone
            wait_for_first_row(process, data / "ragdesk.sqlite3")
            killed += kill_after(process, rng.uniform(0.0, 3.0))
        assert_stores_agree(data, embeddings)
    assert killed >= 2, "the kills should land inside the ingest"

    with start_ingest(corpus, data) as process:
        _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert assert_stores_agree(data, embeddings) == 48
