"""The local model path: a tiny random-weight Llama through the real loader, and the bundled SmolLM2 (slow)."""

import pytest

from chatbot.local_model import LocalChatModel
from chatbot.settings import LLMSettings
from ingest.pipeline import IngestPipeline, expand_paths
from tests.conftest import SAMPLES


@pytest.fixture(scope="module")
def tiny_llm(tiny_model_dir, tmp_path_factory) -> LocalChatModel:
    cfg = LLMSettings(backend="local", local={"model": str(tiny_model_dir), "device": "cpu"}, max_new_tokens=12)
    return LocalChatModel.load(cfg, tmp_path_factory.mktemp("unused-models"))


def test_tiny_model_streams_the_same_text_it_returns(tiny_llm) -> None:
    pieces = [chunk.content for chunk in tiny_llm.stream("you can return the item")]
    answer = tiny_llm.invoke("you can return the item").content
    assert len(pieces) > 1
    assert "".join(pieces) == answer
    assert answer.split()  # greedy output of random weights: words of the tiny vocabulary


def test_stop_sequence_cuts_the_answer_before_it(tiny_llm) -> None:
    full = tiny_llm.invoke("please help").content
    words = full.split()
    assert len(words) >= 3
    stop = f" {words[2]}"
    cut = tiny_llm.invoke("please help", stop=[stop]).content
    assert stop not in cut
    assert full.startswith(cut)


def test_tiny_model_counts_tokens_with_its_own_tokenizer(tiny_llm) -> None:
    assert tiny_llm.get_num_tokens("you can return the item") == 5
    assert tiny_llm.device == "cpu"


@pytest.mark.slow
def test_bundled_model_answers_the_return_question_from_the_samples(make_services, bundled_models_dir) -> None:
    services = make_services(llm={"backend": "local"}, models_dir=bundled_models_dir)
    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    conversation = services.chat.new_conversation("me")

    saved = services.chat.answer("me", conversation.id, "How long do I have to return an item?")

    assert "30 days" in saved.answer
    assert saved.sources[0].document == "returns-and-refunds.md"


def test_the_context_window_is_capped_at_the_models_own_limit(tiny_llm, make_services) -> None:
    assert tiny_llm.context_window == 1024  # the tiny model knows 1,024 positions; the setting says 8,192
    services = make_services(chat_model=tiny_llm)
    assert services.chat.context_window == 1024  # prompts are fitted to what the model can read
