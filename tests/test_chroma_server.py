"""The knowledge base on a real Chroma server (`chroma run`, from the chromadb package, on a loopback port), as
replicas use it: ingest, search and delete go through HTTP; with the server down an upload fails with a message
that says so and leaves nothing half-written, while customers are still answered from the keyword index; once
the server is back, the next start tidies up and uploads work again."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import IngestPipeline, expand_paths
from knowledge.errors import VectorStoreUnavailableError
from tests.helpers.browser import free_port
from tests.helpers.paths import SAMPLES

pytestmark = pytest.mark.slow
CHROMA = Path(sys.executable).parent / "chroma"


@contextlib.contextmanager
def chroma_server(path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`chroma run` on 127.0.0.1:port, its data in `path`; stopped afterwards."""
    log = (path.parent / f"chroma-{port}.log").open("wb")
    command = [str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).close()
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"chroma run did not start: {(path.parent / f'chroma-{port}.log').read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def on_server(make_services: Any, port: int) -> Any:
    return make_services(vector_store={"mode": "http", "host": "127.0.0.1", "port": port})


def ask(services: Any, question: str) -> Any:
    return services.chat.answer("customer", services.chat.new_conversation("customer").id, question)


def test_ingest_search_and_delete_go_through_the_server(make_services: Any, tmp_path: Path) -> None:
    port = free_port()
    with chroma_server(tmp_path / "chroma-server", port):
        services = on_server(make_services, port)
        report = IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
        assert not report.failed
        collection = services.knowledge.vector_store("default")._collection
        stored = collection.count()
        assert stored == sum(d.chunk_count for d in services.knowledge.list_documents("default"))

        [best, *_] = services.knowledge.search("default", ["How long do I have to return an item?"], 3)
        assert best.metadata["document"] == "returns-and-refunds.md"
        assert "vector_score" in best.metadata  # found by the server's vector search, not only by keywords

        returns = services.knowledge.registry.find_by_name("default", "returns-and-refunds.md")
        assert services.knowledge.remove_document("default", "returns-and-refunds.md")
        assert collection.count() == stored - returns.chunk_count
        assert not collection.get(where={"document_id": returns.id})["ids"]


def test_with_the_server_down_uploads_say_so_and_customers_are_still_answered(
    make_services: Any, tmp_path: Path
) -> None:
    port, data = free_port(), tmp_path / "chroma-server"
    with chroma_server(data, port):
        services = on_server(make_services, port)
        IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES / "returns-and-refunds.md"]), "default")
    before = [d.name for d in services.knowledge.list_documents("default")]
    registry = services.knowledge.registry

    report = IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES / "shipping.html"]), "default")
    [failed] = report.failed
    assert "The vector store could not store the chunks" in failed.detail
    assert "Is the Chroma server running?" in failed.detail
    assert "nothing of it was kept" in failed.detail
    assert [d.name for d in services.knowledge.list_documents("default")] == before  # nothing half-written shows
    assert registry.unfinished_documents() == []
    assert services.health()["vector_store"] != "ok"

    reply = ask(services, "What is the refund for damaged or defective items?")  # found by keywords alone
    assert reply.answered
    assert reply.sources[0].document == "returns-and-refunds.md"
    with pytest.raises(VectorStoreUnavailableError, match="Our document search is not answering right now"):
        ask(services, "What is the airspeed velocity of an unladen swallow?")  # not "not in our documents"

    with chroma_server(data, port):
        services = on_server(make_services, port)  # the next start: reconcile() finishes what the outage left
        assert services.knowledge.registry.unfinished_documents() == []
        report = IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES / "shipping.html"]), "default")
        assert [o.status for o in report.outcomes] == ["ingested"]
        assert sorted(d.name for d in services.knowledge.list_documents("default")) == sorted(
            [*before, "shipping.html"]
        )
