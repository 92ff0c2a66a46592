"""The local model path: a tiny random-weight Llama through the real loader, and the bundled SmolLM2 (slow)."""

from collections.abc import Iterator

import pytest

from chatbot.errors import ModelUnavailableError
from chatbot.llm.factory import build_local_model, build_scheduler, describe_model
from chatbot.llm.local_model import LocalChatModel, effective_context_window, load_local_weights
from chatbot.llm.runtime.batching import BatchScheduler
from chatbot.settings import LLMSettings, LocalLLMSettings

SHORT = {"max_completion_tokens": 12}  # what the answer chain binds from its template, kept short here


@pytest.fixture(scope="module")
def tiny_llm(tiny_model_dir, tmp_path_factory) -> Iterator[LocalChatModel]:
    cfg = LLMSettings(backend="local", local={"model": str(tiny_model_dir), "device": "cpu"})
    weights = load_local_weights(cfg, tmp_path_factory.mktemp("unused-models"))
    scheduler = BatchScheduler(weights.model, model_name=weights.name, max_batch=2)
    window = effective_context_window(weights.model, cfg.context_window)
    yield LocalChatModel.from_weights(weights, scheduler, context_window=window)
    scheduler.close()


def test_tiny_model_streams_the_same_text_it_returns(tiny_llm) -> None:
    pieces = [chunk.content for chunk in tiny_llm.stream("you can return the item", **SHORT)]
    answer = tiny_llm.invoke("you can return the item", **SHORT).content
    assert len(pieces) > 1
    assert "".join(pieces) == answer
    assert answer.split()  # greedy output of random weights: words of the tiny vocabulary


def test_stop_sequence_cuts_the_answer_before_it(tiny_llm) -> None:
    full = tiny_llm.invoke("please help", **SHORT).content
    words = full.split()
    assert len(words) >= 3
    stop = f" {words[2]}"
    cut = tiny_llm.invoke("please help", stop=[stop], **SHORT).content
    assert stop not in cut
    assert full.startswith(cut)


def test_tiny_model_counts_tokens_with_its_own_tokenizer(tiny_llm) -> None:
    assert tiny_llm.get_num_tokens("you can return the item") == 5
    assert tiny_llm.device == "cpu"


def test_health_shows_the_model_and_its_batch_when_local(tiny_model_dir, tmp_path) -> None:
    cfg = LLMSettings(backend="local", local={"model": str(tiny_model_dir), "device": "cpu", "max_batch": 2})
    model = build_local_model(cfg, tmp_path)  # its own scheduler: no other test's answer is in progress on it
    health = model.health()
    model.scheduler.close()

    assert health["backend"] == "local"
    assert health["device"] == "cpu"
    assert "gpu_memory_gib" not in health  # no GPU memory to report on the CPU
    assert health["batching"] == {
        "max_batch": 2,
        "answers_in_progress": 0,
        "compiled_decode": False,
        "batch_graphs": False,
    }


def test_the_context_window_is_capped_at_the_models_own_limit(tiny_model_dir, tmp_path) -> None:
    cfg = LLMSettings(backend="local", local={"model": str(tiny_model_dir), "device": "cpu"})
    llm = build_local_model(cfg, tmp_path)
    try:
        assert llm.context_window == 1024  # the tiny model knows 1,024 positions; the setting says 8,192
        assert describe_model(llm, cfg).context_window == 1024  # the window prompts are fitted to
    finally:
        llm.scheduler.close()


def test_a_cuda_graph_part_that_fails_to_warm_up_leaves_the_other_in_service() -> None:
    """On CUDA, compiled lone decode and batch graphs are both speed-ups: one failing keeps the other."""
    from types import SimpleNamespace

    tried: list[tuple[str, str]] = []

    class Scheduler:
        def __init__(self, model, *, lone_decode: str = "off", slot_decode: str = "off", **kwargs) -> None:  # type: ignore[no-untyped-def]
            self.parts = (lone_decode, slot_decode)

        def warm_up(self) -> None:
            tried.append(self.parts)
            if self.parts[0] == "compiled":  # as a real scheduler reports a step that failed in its thread
                raise ModelUnavailableError("The model 'm' failed while generating. Please try again.")

        def close(self) -> None:
            pass

    gpu_model = SimpleNamespace(device=SimpleNamespace(type="cuda"))
    both = LocalLLMSettings(compile=True, batch_graphs=True)
    chosen = build_scheduler(gpu_model, "m", both, 4096, make_scheduler=Scheduler)
    assert chosen.parts == ("off", "graphs")
    assert tried == [("compiled", "graphs"), ("off", "graphs")]

    tried.clear()
    compiled_only = LocalLLMSettings(compile=True, batch_graphs=False)
    chosen = build_scheduler(gpu_model, "m", compiled_only, 4096, make_scheduler=Scheduler)
    assert chosen.parts == ("off", "off")  # the only part failed: eager decoding, still serving
    assert tried == [("compiled", "off")]

    tried.clear()
    cpu_model = SimpleNamespace(device=SimpleNamespace(type="cpu"))
    assert build_scheduler(cpu_model, "m", both, 4096, make_scheduler=Scheduler).parts == ("off", "off")
    assert tried == []  # nothing to warm up on the CPU
