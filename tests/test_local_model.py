"""The local model path: a tiny random-weight Llama through the real loader, and the bundled SmolLM2 (slow)."""

import pytest

from chatbot.llm.local_model import LocalChatModel
from chatbot.settings import LLMSettings
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.paths import SAMPLES


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
    template = services.templates.active("default").template
    assert services.drafts.budget(template).context_window == 1024  # prompts are fitted to what the model can read


def test_a_cuda_graph_part_that_fails_to_warm_up_leaves_the_other_in_service(monkeypatch) -> None:
    """On CUDA, compiled lone decode and batch graphs are both speed-ups: one failing keeps the other."""
    from types import SimpleNamespace

    from chatbot.llm import local_model
    from chatbot.settings import LocalLLMSettings

    tried: list[tuple[str, str]] = []

    class Scheduler:
        def __init__(self, model, *, lone_decode: str = "off", slot_decode: str = "off", **kwargs) -> None:  # type: ignore[no-untyped-def]
            self.parts = (lone_decode, slot_decode)

        def warm_up(self) -> None:
            tried.append(self.parts)
            if self.parts[0] == "compiled":
                raise RuntimeError("inductor: no C compiler")

        def close(self) -> None:
            pass

    monkeypatch.setattr(local_model, "BatchScheduler", Scheduler)
    gpu_model = SimpleNamespace(device=SimpleNamespace(type="cuda"))
    both = LocalLLMSettings(compile=True, batch_graphs=True)
    chosen = local_model._scheduler(gpu_model, "m", both, 4096)
    assert chosen.parts == ("off", "graphs")
    assert tried == [("compiled", "graphs"), ("off", "graphs")]

    tried.clear()
    chosen = local_model._scheduler(gpu_model, "m", LocalLLMSettings(compile=True, batch_graphs=False), 4096)
    assert chosen.parts == ("off", "off")  # the only part failed: eager decoding, still serving
    assert tried == [("compiled", "off")]

    tried.clear()
    cpu_model = SimpleNamespace(device=SimpleNamespace(type="cpu"))
    assert local_model._scheduler(cpu_model, "m", both, 4096).parts == ("off", "off")
    assert tried == []  # nothing to warm up on the CPU
