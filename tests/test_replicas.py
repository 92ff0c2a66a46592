"""Two replicas, one truth: two `python app.py` processes on one PostgreSQL (a throwaway cluster) and one Chroma
server (`chroma run`), as behind a load balancer. A document uploaded on A is found by a question on B; a
conversation started on A continues on B; a knowledge base deleted on A is gone on B; the same file uploaded on
A and B at once is one document."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.helpers.browser import free_port, running_app
from tests.test_chroma_server import chroma_server

pytestmark = pytest.mark.slow
KEY = "replicas-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}
FACT = b"# Zorblax loyalty card\n\nThe Zorblax loyalty card gives 17 percent off every third Tuesday of the month."


@pytest.fixture
def replicas(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A and B, started one after the other (the first start makes the schema and the default knowledge base)."""
    server = request.getfixturevalue("postgres_server")
    with fresh_database(server) as url, chroma_server(tmp_path / "chroma-server", port := free_port()):
        env = {
            "RAGDESK_DATABASE_URL": url,
            "RAGDESK_VECTOR_STORE__MODE": "http",
            "RAGDESK_VECTOR_STORE__HOST": "127.0.0.1",
            "RAGDESK_VECTOR_STORE__PORT": str(port),
            "RAGDESK_LLM__BACKEND": "fake",
            "RAGDESK_INGEST_SAMPLES": "false",  # an empty knowledge base: the test uploads what it asks about
            "RAGDESK_GROUNDING__POLICY": "quote",  # answers are the documents' sentences: no model needed
            "RAGDESK_API_KEYS": json.dumps([{"key": KEY, "scope": "admin", "name": "replicas test"}]),
        }
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with running_app(tmp_path / "a", env) as a, running_app(tmp_path / "b", env) as b:
            yield a, b


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[str]:
    name = f"replicas_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def chat(url: str, question: str, **fields: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/api/v1/chat", json={"question": question, "user": "ann", **fields}, headers=ADMIN, timeout=120
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def upload(url: str, kb: str, name: str, content: bytes) -> dict[str, Any]:
    files = [("files", (name, content, "text/markdown"))]
    response = httpx.post(f"{url}/api/v1/knowledge-bases/{kb}/documents", files=files, headers=ADMIN, timeout=300)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_two_replicas_share_documents_conversations_and_deletions(replicas: tuple[str, str]) -> None:
    a, b = replicas
    assert upload(a, "default", "zorblax.md", FACT)["summary"] == "1 ingested"
    found = chat(b, "What discount does the Zorblax loyalty card give?")
    assert found["answered"]
    assert "17 percent" in found["answer"]
    assert found["sources"][0]["document"] == "zorblax.md"

    started = chat(a, "Which card gives a discount on Tuesdays?")
    continued = chat(b, "How much is it?", conversation_id=started["conversation_id"])
    assert continued["turn"] == 2
    transcript = httpx.get(
        f"{a}/api/v1/conversations/{started['conversation_id']}", params={"user": "ann"}, headers=ADMIN
    ).json()
    assert [t["question"] for t in transcript["turns"]] == [
        "Which card gives a discount on Tuesdays?",
        "How much is it?",
    ]

    assert httpx.post(f"{a}/api/v1/knowledge-bases", json={"name": "billing"}, headers=ADMIN).status_code == 201
    upload(b, "billing", "invoices.md", b"# Invoices\n\nInvoices are sent on the 3rd working day.")
    assert httpx.delete(f"{a}/api/v1/knowledge-bases/billing", headers=ADMIN).status_code == 204
    names = [kb["name"] for kb in httpx.get(f"{b}/api/v1/knowledge-bases", headers=ADMIN).json()]
    assert "billing" not in names
    gone = httpx.post(f"{b}/api/v1/chat", json={"question": "When are invoices sent?", "kb": "billing"}, headers=ADMIN)
    assert gone.status_code == 404

    reports: dict[str, dict[str, Any]] = {}
    twin = b"# Twin\n\nThe same file, uploaded twice at the same moment."
    uploads = [
        threading.Thread(target=lambda u=u: reports.update({u: upload(u, "default", "twin.md", twin)})) for u in (a, b)
    ]
    for thread in uploads:
        thread.start()
    for thread in uploads:
        thread.join()
    listed = [d["name"] for d in httpx.get(f"{b}/api/v1/knowledge-bases/default/documents", headers=ADMIN).json()]
    assert listed.count("twin.md") == 1
    statuses = sorted(r["files"][0]["status"] for r in reports.values())
    assert statuses.count("ingested") == 1, reports  # the other: unchanged, or told to try again
