"""The GPU path: NF4 loading, streaming, batched and compiled decoding on CUDA (skipped without CUDA).

Self-contained (runs with `pytest --noconftest tests/test_gpu.py` on a GPU machine that has only torch,
transformers, bitsandbytes and langchain-core).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from tests.helpers.tiny_model import write_tiny_model

pytestmark = pytest.mark.gpu

if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)
bnb = pytest.importorskip("bitsandbytes")

from chatbot.llm.factory import build_local_model  # noqa: E402
from chatbot.llm.local_model import LocalChatModel  # noqa: E402
from chatbot.llm.runtime.batching import BatchScheduler  # noqa: E402
from chatbot.llm.runtime.sampling import Sampling  # noqa: E402
from chatbot.settings import LLMSettings  # noqa: E402

SHORT = {"max_completion_tokens": 24}  # what the answer chain binds from its template, kept short here
PROMPTS = [[5, 9, 12, 7], [11, 4, 6, 20, 21, 8, 9, 10, 13], [14], [7, 7, 15, 16, 17, 18], [19, 22, 23, 5, 6]]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Big enough that weights dominate memory; sharp attention so wrong masks change tokens."""
    return write_tiny_model(tmp_path_factory.mktemp("gpu-llama"), hidden=512, layers=4, initializer_range=0.2)


def load(model_dir: Path, tmp_path: Path, **local: object) -> LocalChatModel:
    cfg = LLMSettings(backend="local", local={"model": str(model_dir), "device": "cuda", **local})
    return build_local_model(cfg, tmp_path)


@pytest.fixture(scope="module")
def fp32_nf4_model(model_dir: Path):
    """NF4 weights with fp32 compute: batch-1 (gemv) and batched (dequantize + matmul) kernels agree to ~1e-6,
    so greedy tokens must match exactly."""
    return load_fp32_nf4(model_dir)


@pytest.fixture(scope="module", params=["sdpa", "grouped"])
def fp32_nf4_any_attention(model_dir: Path, fp32_nf4_model, request):
    """The same NF4 model with transformers' SDPA, and with the grouped decode attention the app uses with batch
    graphs (chatbot/llm/runtime/decode_attention.py)."""
    if request.param == "sdpa":
        return fp32_nf4_model
    from chatbot.llm.runtime import decode_attention

    return load_fp32_nf4(model_dir, attn_implementation=decode_attention.register("cuda"))


def load_fp32_nf4(model_dir: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    return AutoModelForCausalLM.from_pretrained(
        model_dir, quantization_config=config, device_map="cuda", **kwargs
    ).eval()


def reference(model, prompt: list[int], n: int) -> list[int]:
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([prompt], device="cuda"), max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0
        )
    return out[0, len(prompt) :].tolist()


def test_nf4_loading_uses_4bit_layers_and_less_memory_than_bf16(model_dir: Path, tmp_path: Path) -> None:
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    nf4 = load(model_dir, tmp_path, compile=False)
    nf4_bytes = torch.cuda.memory_allocated() - before
    linears = [m for m in nf4._model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(linears) == 4 * 7  # q, k, v, o, gate, up, down in each of the 4 layers
    assert nf4.quantization.startswith("nf4")
    assert nf4.device == "cuda"
    nf4.scheduler.close()
    del nf4, linears
    torch.cuda.empty_cache()

    before = torch.cuda.memory_allocated()
    bf16 = load(model_dir, tmp_path, compile=False, load_in_4bit=False)
    bf16_bytes = torch.cuda.memory_allocated() - before
    bf16.scheduler.close()

    assert nf4_bytes < 0.5 * bf16_bytes


def test_nf4_model_streams_on_cuda(model_dir: Path, tmp_path: Path) -> None:
    llm = load(model_dir, tmp_path)  # compiled lone decode, warmed up at load
    assert llm.scheduler.compiled  # compilation did not fail over to eager decoding
    pieces = [str(c.content) for c in llm.stream("you can return the item", **SHORT)]
    assert len(pieces) > 1
    assert "".join(pieces) == llm.invoke("you can return the item", **SHORT).content
    assert llm.health()["gpu_memory_gib"]  # /healthz shows the GPU memory this process holds
    llm.scheduler.close()


def test_batched_concurrent_generation_matches_sequential_greedy(fp32_nf4_model) -> None:
    scheduler = BatchScheduler(fp32_nf4_model, model_name="tiny", max_batch=8)
    streams = [scheduler.submit(p, Sampling(max_new_tokens=24), frozenset()) for p in PROMPTS]

    assert [list(s) for s in streams] == [reference(fp32_nf4_model, p, 24) for p in PROMPTS]
    assert scheduler.largest_batch > 1
    scheduler.close()


def test_compiled_lone_decode_matches_and_hands_over_to_the_batch(fp32_nf4_model) -> None:
    scheduler = BatchScheduler(
        fp32_nf4_model, model_name="tiny", max_batch=8, lone_decode="compiled", static_cache_len=512
    )
    scheduler.warm_up()
    assert list(scheduler.submit(PROMPTS[1], Sampling(max_new_tokens=24), frozenset())) == reference(
        fp32_nf4_model, PROMPTS[1], 24
    )
    first = scheduler.submit(PROMPTS[0], Sampling(max_new_tokens=300), frozenset())
    tokens = iter(first)
    head = [next(tokens) for _ in range(5)]
    second = list(scheduler.submit(PROMPTS[3], Sampling(max_new_tokens=24), frozenset()))

    assert second == reference(fp32_nf4_model, PROMPTS[3], 24)
    assert head + list(tokens) == reference(fp32_nf4_model, PROMPTS[0], 300)
    scheduler.close()


def test_batch_graphs_match_sequential_greedy_through_joins_and_endings(fp32_nf4_any_attention, fp32_nf4_model) -> None:
    """Concurrent answers in cache slots, each step a replayed CUDA graph: the same tokens as each alone (the
    reference always through transformers' SDPA)."""
    scheduler = BatchScheduler(
        fp32_nf4_any_attention,
        model_name="tiny",
        max_batch=8,
        lone_decode="compiled",
        slot_decode="graphs",
        static_cache_len=512,
    )
    scheduler.warm_up()
    first = scheduler.submit(PROMPTS[0], Sampling(max_new_tokens=300), frozenset())
    tokens = iter(first)
    head = [next(tokens) for _ in range(5)]  # alone on the compiled step, then handed over to a slot
    lengths = [24, 7, 40, 3]
    late = [
        scheduler.submit(p, Sampling(max_new_tokens=n), frozenset()) for p, n in zip(PROMPTS[1:], lengths, strict=True)
    ]

    assert [list(s) for s in late] == [
        reference(fp32_nf4_model, p, n) for p, n in zip(PROMPTS[1:], lengths, strict=True)
    ]
    assert head + list(tokens) == reference(fp32_nf4_model, PROMPTS[0], 300)
    assert scheduler.batch_graphs  # no capture failed over to eager steps
    assert len(scheduler._slots._captured) >= 2  # several batch shapes were captured and replayed
    scheduler.close()


@pytest.mark.parametrize("batch_graphs", [False, True])
def test_sixteen_customers_at_once_all_stream(model_dir: Path, tmp_path: Path, batch_graphs: bool) -> None:
    llm = load(model_dir, tmp_path, batch_graphs=batch_graphs)
    assert llm.scheduler.batch_graphs == batch_graphs
    answers: dict[int, list[str]] = {}

    def customer(i: int) -> None:
        answers[i] = [
            str(c.content) for c in llm.stream(f"customer {i}: can you return the item within 30 days", **SHORT)
        ]

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert len(answers) == 16
    assert all(len(pieces) > 1 for pieces in answers.values())
    assert llm.scheduler.largest_batch >= 8
    llm.scheduler.close()
