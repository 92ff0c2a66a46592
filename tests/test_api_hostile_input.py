"""The API under hostile input: text that is not text, out-of-range parameters, an oversized history, an unknown
model while streaming, and knowledge-base names that are paths. Each gets a clear 4xx and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from app import build_web_app
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.paths import SAMPLES

QUESTION = "How long do I have to return an item?"
ADMIN_KEY = "rd-admin-key-for-hostile-input-tests"


class _Limits(BaseCallbackHandler):
    """Records what each call to the chat model was asked for (max tokens, temperature)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.calls.append(dict(kwargs.get("invocation_params") or {}))


@pytest.fixture
def api(make_services: Any) -> Any:
    limits = _Limits()
    model = FakeListChatModel(responses=["You have 30 days from the delivery date."], callbacks=[limits])
    services = make_services(
        chat_model=model, grounding={"policy": "trim"}, api_keys=[{"key": ADMIN_KEY, "scope": "admin"}]
    )
    pipeline = IngestPipeline(services.knowledge)
    pipeline.ingest_files(expand_paths([SAMPLES]), "default")
    client = TestClient(build_web_app(services, pipeline), headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    client.limits = limits  # type: ignore[attr-defined]
    client.services = services  # type: ignore[attr-defined]
    return client


def _raw(client: TestClient, path: str, body: str | bytes) -> Any:
    headers = {"content-type": "application/json", "Authorization": f"Bearer {ADMIN_KEY}"}
    return client.post(path, content=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"question": "hi \\ud800 there"}', "surrogate"),  # JSON's escape for half a character
        ('{"question": "hi \\u0000 there"}', "NUL"),
        ('{"question": "ok", "user": "bad\\u0007bell"}', "control character"),
    ],
)
def test_text_that_is_not_text_is_a_422_and_stores_nothing(api: TestClient, body: str, says: str) -> None:
    response = _raw(api, "/api/v1/chat", body)

    assert response.status_code == 422
    assert says in json.dumps(response.json())
    assert api.get("/api/v1/conversations").json() == []


def test_a_body_that_is_not_utf8_is_a_400_that_says_so(api: TestClient) -> None:
    response = _raw(api, "/api/v1/chat", b'{"question": "\xff\xfe broken"}')

    assert response.status_code == 400
    assert "parsing the body" in response.text
    assert api.get("/api/v1/conversations").json() == []


def test_the_openai_api_refuses_a_lone_surrogate_in_any_message(api: TestClient) -> None:
    body = (
        '{"model": "default", "messages": [{"role": "assistant", "content": "x \\udfff"}, '
        '{"role": "user", "content": "hi"}]}'
    )
    assert _raw(api, "/v1/chat/completions", body).status_code == 422
    parts = '{"model": "default", "messages": [{"role": "user", "content": [{"type": "text", "text": "a\\u0000"}]}]}'
    assert _raw(api, "/v1/chat/completions", parts).status_code == 422


@pytest.mark.parametrize(
    "extra",
    [
        {"max_tokens": 10**12},
        {"max_tokens": -5},
        {"max_completion_tokens": 0},
        {"temperature": -3},
        {"user": "u" * 201},
    ],
)
def test_out_of_range_openai_parameters_are_a_422_naming_the_range(api: TestClient, extra: dict[str, Any]) -> None:
    body = {"model": "default", "messages": [{"role": "user", "content": QUESTION}], **extra}

    response = api.post("/v1/chat/completions", json=body)

    assert response.status_code == 422
    assert next(iter(extra)) in json.dumps(response.json())


def test_max_tokens_and_temperature_are_honoured_within_the_template_s_limits(api: TestClient) -> None:
    ask = {"model": "default", "messages": [{"role": "user", "content": QUESTION}]}

    assert api.post("/v1/chat/completions", json={**ask, "max_tokens": 40, "temperature": 0.5}).status_code == 200
    assert api.post("/v1/chat/completions", json={**ask, "max_tokens": 100_000}).status_code == 200

    asked, capped = api.limits.calls[-2], api.limits.calls[-1]  # type: ignore[attr-defined]
    assert (asked["max_completion_tokens"], asked["temperature"]) == (40, 0.5)
    assert capped["max_completion_tokens"] == 256  # the template's max new tokens


def test_the_whole_history_is_length_checked(api: TestClient) -> None:
    huge = {"role": "assistant", "content": "x" * 1_000_000}
    body = {
        "model": "default",
        "messages": [{"role": "user", "content": "hi"}, huge, {"role": "user", "content": QUESTION}],
    }

    response = api.post("/v1/chat/completions", json=body)

    assert response.status_code == 400
    assert "too long together" in response.json()["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_an_unknown_model_is_a_404_streaming_or_not(api: TestClient, stream: bool) -> None:
    body = {"model": "no-such-kb", "messages": [{"role": "user", "content": QUESTION}], "stream": stream}

    response = api.post("/v1/chat/completions", json=body)

    assert response.status_code == 404
    assert "no-such-kb" in response.json()["message"]


@pytest.mark.parametrize("name", ["../../evil", "a/b", "c\\d", ".hidden", "x" * 101])
def test_a_knowledge_base_name_that_is_a_path_is_a_clear_422(api: TestClient, name: str) -> None:
    response = api.post("/api/v1/knowledge-bases", json={"name": name})

    assert response.status_code == 422
    assert name not in [kb["name"] for kb in api.get("/api/v1/knowledge-bases").json()]


def test_a_knowledge_base_name_in_chinese_with_spaces_and_dots_is_fine(api: TestClient) -> None:
    assert api.post("/api/v1/knowledge-bases", json={"name": "售后 FAQ v2.1 (EU)"}).status_code == 201


@pytest.fixture
def small_uploads(make_services: Any) -> TestClient:
    services = make_services(max_upload_mb=1, api_keys=[{"key": ADMIN_KEY, "scope": "admin"}])
    app = build_web_app(services, IngestPipeline(services.knowledge))
    return TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"})


def test_an_upload_over_the_limit_is_refused_from_its_length_before_it_is_read(small_uploads: TestClient) -> None:
    big = b"x" * (2 * 2**20)

    response = small_uploads.post("/api/v1/knowledge-bases/default/documents", files={"files": ("big.txt", big)})

    assert response.status_code == 413
    assert "larger than 1 MB" in response.json()["message"]
    assert small_uploads.get("/api/v1/knowledge-bases/default/documents").json() == []


def test_a_chunked_upload_is_refused_once_it_passes_the_limit(small_uploads: TestClient) -> None:
    def body() -> Any:  # no Content-Length: the size is only known as it streams
        for _ in range(64):
            yield b"y" * (256 * 1024)

    response = small_uploads.post(
        "/api/v1/knowledge-bases/default/documents",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )

    assert response.status_code == 413
    assert small_uploads.get("/api/v1/knowledge-bases/default/documents").json() == []


def test_an_upload_within_the_limit_is_ingested(small_uploads: TestClient) -> None:
    small = b"Returns are free within 30 days.\n"

    response = small_uploads.post("/api/v1/knowledge-bases/default/documents", files={"files": ("faq.txt", small)})

    assert response.status_code == 200
    assert response.json()["files"][0]["status"] == "ingested"
