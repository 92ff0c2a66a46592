"""The openai-compatible backend: a real `transformers serve` on the bundled model, and servers that fail."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatbot.conversation.turns import AnswerDelta, TurnResult
from chatbot.errors import ModelUnavailableError
from chatbot.llm.local_model import BUNDLED_DIR_NAME
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.browser import free_port, wait_until_healthy
from tests.helpers.paths import SAMPLES


@pytest.fixture(scope="module")
def transformers_server(bundled_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`transformers serve` on the CPU with the bundled SmolLM2 (converted by the app's own loader)."""
    model = str(bundled_models_dir / BUNDLED_DIR_NAME)
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    cli = Path(sys.executable).parent / "transformers"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(cli), "serve", model, "--device", "cpu", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process, log, path="/health")
        yield f"http://127.0.0.1:{port}/v1|{model}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def remote(url: str, model: str = "unused", timeout_s: float = 120.0) -> dict:
    return {
        "backend": "openai-compatible",
        "openai": {"base_url": url, "model": model, "timeout_s": timeout_s},
        "max_new_tokens": 48,
    }


@pytest.mark.slow
def test_chat_through_a_real_transformers_serve_streams_a_grounded_answer(make_services, transformers_server) -> None:
    url, model = transformers_server.split("|")
    # the transport is under test here, not the 135M model's faithfulness: its words are not checked
    services = make_services(llm=remote(url, model), grounding={"policy": "off"})
    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    conversation = services.chat.new_conversation("me")

    events = list(services.chat.stream_answer("me", conversation.id, "How long do I have to return an item?"))

    deltas = [e.text for e in events if isinstance(e, AnswerDelta)]
    assert len(deltas) > 1  # streamed token by token from the server
    saved = events[-1]
    assert isinstance(saved, TurnResult)
    assert saved.answered
    assert saved.answer.strip()
    assert saved.answer == "".join(deltas)
    assert saved.sources[0].document == "returns-and-refunds.md"


def test_a_server_that_is_down_gives_a_clear_message(make_services) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    services = make_services(llm=remote(url, timeout_s=5))
    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    conversation = services.chat.new_conversation("me")

    with pytest.raises(ModelUnavailableError, match=r"cannot be reached") as caught:
        services.chat.answer("me", conversation.id, "How long do I have to return an item?")
    assert url in str(caught.value)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and reads requests, but never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    listener.close()
    for connection in accepted:
        connection.close()


def test_a_server_that_does_not_answer_gives_up_after_the_timeout(make_services, silent_server) -> None:
    services = make_services(llm=remote(silent_server, timeout_s=2))
    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    conversation = services.chat.new_conversation("me")
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            services.chat.answer("me", conversation.id, "How long do I have to return an item?")
        except BaseException as e:
            outcome.append(e)

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    asker.join(timeout=60)  # liveness only: a hung call would never come back

    assert not asker.is_alive(), "the chat hung on a server that never answers"
    assert isinstance(outcome[0], ModelUnavailableError)
    assert "did not answer within 2.0 s" in str(outcome[0])
