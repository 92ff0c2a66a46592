"""Shared fixtures: real small components (bundled embeddings, tiny or bundled LLM, temp Chroma and SQLite)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

for _name in [n for n in os.environ if n.startswith("RAGDESK_")]:
    del os.environ[_name]
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from chatbot.settings import Settings  # noqa: E402
from chatbot.wiring import Services, build_services  # noqa: E402
from ingest.pipeline import IngestPipeline  # noqa: E402
from knowledge.embeddings import build_embeddings  # noqa: E402
from knowledge.settings import EmbeddingSettings  # noqa: E402


@pytest.fixture(autouse=True)
def _torch_threads_given_back() -> Iterator[None]:
    """A local model on the CPU takes the cores for its own thread (chatbot/llm/runtime/cpu_threads.py); later
    tests get them back."""
    import torch

    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def embeddings() -> Any:
    """The bundled all-MiniLM-L6-v2, loaded once."""
    return build_embeddings(EmbeddingSettings())


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "llm": {"backend": "fake"}, **overrides}
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def make_services(make_settings: Callable[..., Settings], embeddings: Any) -> Callable[..., Services]:
    def make(chat_model: Any = None, **overrides: Any) -> Services:
        return build_services(make_settings(**overrides), llm=chat_model, embeddings=embeddings)

    return make


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    return make_services()


@pytest.fixture
def pipeline(services: Services) -> IngestPipeline:
    return IngestPipeline(services.knowledge)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random-weight Llama with a word-level tokenizer and a chat template (~100 KiB)."""
    from tests.helpers.tiny_model import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def bundled_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bundled SmolLM2 converted once per test session (about a minute on 2 cores)."""
    from chatbot.llm.local_model import prepare_bundled_model

    path = tmp_path_factory.mktemp("models")
    prepare_bundled_model(path)
    return path


@pytest.fixture
def page():  # type: ignore[no-untyped-def]
    """A page in Debian's Chromium driven by Playwright (tests using it skip when chromium is missing)."""
    from playwright.sync_api import sync_playwright

    from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        yield page
        browser.close()
