"""REST API v1, the OpenAI-compatible endpoints (with the official openai client), API keys, metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app import build_web_app
from chatbot.conversation.templates import ENGLISH_DEFAULT
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.paths import SAMPLES

pytestmark = pytest.mark.both_databases  # SQLite and PostgreSQL

ADMIN_KEY = "admin-key-for-tests-0123456789"
RETURNS = "How long do I have to return an item?"


def client_for(make_services, **overrides: Any) -> tuple[TestClient, Any]:  # type: ignore[no-untyped-def]
    services = make_services(llm={"backend": "fake", "fake_responses": ["You have 30 days."]}, **overrides)
    pipeline = IngestPipeline(services.knowledge)
    pipeline.ingest_files(expand_paths([SAMPLES]), "default")
    return TestClient(build_web_app(services, pipeline)), services


@pytest.fixture
def open_api(make_services) -> TestClient:  # type: ignore[no-untyped-def]
    """On loopback with no key anywhere: the chat API is open for local development."""
    return client_for(make_services)[0]


@pytest.fixture
def keyed(make_services):  # type: ignore[no-untyped-def]
    client, services = client_for(make_services, api_keys=[{"key": ADMIN_KEY, "scope": "admin"}])
    chat_key, _ = services.api_keys.create("portal", "chat")
    return client, services, chat_key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_chat_answers_with_sources_and_continues_the_conversation(open_api: TestClient) -> None:
    first = open_api.post("/api/v1/chat", json={"question": RETURNS}).json()
    assert first["answer"] == "You have 30 days [1]."
    assert first["sources"][0]["document"] == "returns-and-refunds.md"
    assert first["turn"] == 1
    again = open_api.post(
        "/api/v1/chat", json={"question": "And damaged items?", "conversation_id": first["conversation_id"]}
    )
    assert again.json()["turn"] == 2
    turns = open_api.get(f"/api/v1/conversations/{first['conversation_id']}").json()["turns"]
    assert [t["question"] for t in turns] == [RETURNS, "And damaged items?"]


def test_chat_streams_server_sent_events(open_api: TestClient) -> None:
    with open_api.stream("POST", "/api/v1/chat", json={"question": RETURNS, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("event: ") for line in response.iter_lines() if line.startswith("event: ")]
    assert events[0] == "sources"
    assert events[-1] == "done"
    assert "delta" in events


def test_bad_question_is_a_clear_400_and_creates_nothing(open_api: TestClient) -> None:
    response = open_api.post("/api/v1/chat", json={"question": "x" * 1_000_000})
    assert response.status_code == 400
    assert "too long" in response.json()["message"]
    assert open_api.get("/api/v1/conversations").json() == []


def test_keys_are_required_scoped_and_revocable(keyed) -> None:  # type: ignore[no-untyped-def]
    client, services, chat_key = keyed
    assert client.post("/api/v1/chat", json={"question": RETURNS}).status_code == 401
    assert client.post("/api/v1/chat", json={"question": RETURNS}, headers=auth("wrong")).status_code == 401
    assert client.post("/api/v1/chat", json={"question": RETURNS}, headers=auth(chat_key)).status_code == 200
    assert client.get("/api/v1/knowledge-bases/default/documents", headers=auth(chat_key)).status_code == 403
    listed = client.get("/api/v1/knowledge-bases/default/documents", headers={"X-API-Key": ADMIN_KEY})
    assert "warranty.pdf" in [d["name"] for d in listed.json()]
    (info,) = services.api_keys.list()
    assert chat_key.startswith(info.shown)
    assert services.api_keys.revoke(info.id)
    assert client.post("/api/v1/chat", json={"question": RETURNS}, headers=auth(chat_key)).status_code == 401


def test_admin_key_manages_knowledge_bases_and_documents(keyed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = keyed
    admin = auth(ADMIN_KEY)
    assert client.post("/api/v1/knowledge-bases", json={"name": "Billing"}, headers=admin).status_code == 201
    files = [
        ("files", ("invoices.md", b"# Invoices\n\nSent on the 3rd working day.", "text/markdown")),
        ("files", ("broken.pdf", b"%PDF-1.4 nope", "application/pdf")),
    ]
    report = client.post("/api/v1/knowledge-bases/Billing/documents", files=files, headers=admin).json()
    assert report["summary"] == "1 ingested, 1 failed"
    assert "corrupt PDF" in next(f["detail"] for f in report["files"] if f["name"] == "broken.pdf")
    assert client.delete("/api/v1/knowledge-bases/Billing/documents/invoices.md", headers=admin).status_code == 204
    missing = client.delete("/api/v1/knowledge-bases/Billing/documents/invoices.md", headers=admin)
    assert missing.status_code == 404
    assert client.patch("/api/v1/knowledge-bases/Billing", json={"name": "Invoices"}, headers=admin).json() == {
        "name": "Invoices"
    }
    assert client.delete("/api/v1/knowledge-bases/Invoices", headers=admin).status_code == 204


def test_one_user_cannot_read_or_delete_another_users_conversation(keyed) -> None:  # type: ignore[no-untyped-def]
    client, _, chat_key = keyed
    alice = client.post("/api/v1/chat", json={"question": RETURNS, "user": "alice"}, headers=auth(chat_key)).json()
    path = f"/api/v1/conversations/{alice['conversation_id']}"
    assert client.get(path, params={"user": "bob"}, headers=auth(chat_key)).status_code == 404
    assert client.delete(path, params={"user": "bob"}, headers=auth(chat_key)).status_code == 404
    assert client.get("/api/v1/conversations", params={"user": "bob"}, headers=auth(chat_key)).json() == []
    assert client.get(path, headers={"X-API-Key": ADMIN_KEY}).status_code == 404  # another key: another owner
    assert client.get(path, params={"user": "alice"}, headers=auth(chat_key)).status_code == 200


def test_feedback_is_stored_with_the_turn(open_api: TestClient, make_services) -> None:  # type: ignore[no-untyped-def]
    turn = open_api.post("/api/v1/chat", json={"question": RETURNS}).json()
    body = {"conversation_id": turn["conversation_id"], "turn": 1, "rating": "down", "reason": "too short"}
    assert open_api.post("/api/v1/feedback", json=body).status_code == 204
    assert open_api.post("/api/v1/feedback", json={**body, "turn": 5}).status_code == 400
    services = make_services()  # the same data directory, read afresh
    assert services.conversations.feedback(turn["conversation_id"]) == {1: ("down", "too short")}


def test_openai_client_round_trip_with_streaming(open_api: TestClient) -> None:
    from openai import OpenAI

    client = OpenAI(base_url="http://testserver/v1", api_key="unused-on-loopback", http_client=open_api)
    assert [m.id for m in client.models.list()] == ["default"]
    reply = client.chat.completions.create(model="default", messages=[{"role": "user", "content": RETURNS}])
    assert reply.choices[0].message.content == "You have 30 days [1]."
    assert reply.model_extra["sources"][0]["document"] == "returns-and-refunds.md"

    stream = client.chat.completions.create(
        model="default",
        messages=[
            {"role": "system", "content": "ignored: the knowledge base's template applies"},
            {"role": "user", "content": RETURNS},
            {"role": "assistant", "content": "You have 30 days."},
            {"role": "user", "content": "And if it arrived damaged?"},
        ],
        stream=True,
    )
    chunks = list(stream)
    # The scripted model says "30 days" again; the passages about damaged items do not: it is never shown, and
    # the passages' own sentences answer instead.
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "30 days" not in streamed
    assert streamed.startswith(ENGLISH_DEFAULT.quote_lead)
    assert "report it within 48 hours of delivery" in streamed
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["sources"]


def test_metrics_count_a_chat_and_health_reports_the_stores(open_api: TestClient) -> None:
    def turns() -> float:
        return REGISTRY.get_sample_value("ragdesk_chat_turns_total", {"kb": "default", "outcome": "answered"}) or 0.0

    before = turns()
    open_api.post("/api/v1/chat", json={"question": RETURNS})
    assert turns() == before + 1
    completion = {"model": "default", "messages": [{"role": "user", "content": RETURNS}]}
    open_api.post("/v1/chat/completions", json=completion)
    assert turns() == before + 2  # OpenAI-compatible chats are counted too
    text = open_api.get("/metrics").text
    assert "ragdesk_time_to_first_token_seconds_count" in text
    assert 'ragdesk_request_latency_seconds_count{method="POST",route="/api/v1/chat"}' in text
    health = open_api.get("/healthz").json()
    assert (health["status"], health["database"], health["vector_store"]) == ("ok", "ok", "ok")
    assert health["llm"]["backend"] == "fake"
    assert json.loads(open_api.get("/openapi.json").text)["paths"]["/api/v1/chat"]


def test_admin_pages_need_the_password_when_one_is_set(make_services) -> None:  # type: ignore[no-untyped-def]
    from chatbot.access.admin_login import hash_password

    client, _ = client_for(make_services, admin={"password_hash": hash_password("a-long-admin-password")})
    assert client.get("/admin/config").status_code == 401
    assert client.get("/config").status_code == 200  # the customers' page stays open
    refused = client.post("/admin/login", data={"username": "admin", "password": "wrong"})
    assert refused.status_code == 400
    client.post("/admin/login", data={"username": "admin", "password": "a-long-admin-password"})
    assert client.get("/admin/config").status_code == 200


def test_health_names_the_remote_model_server_without_calling_it(make_services) -> None:
    services = make_services(llm={"backend": "openai-compatible", "openai": {"base_url": "http://127.0.0.1:9/v1"}})
    health = services.health()
    assert health["llm"] == {"backend": "openai-compatible", "model": "default", "base_url": "http://127.0.0.1:9/v1"}
    assert (health["database"], health["vector_store"]) == ("ok", "ok")
