"""The CPU path's pieces, each against what it replaces: the growing cache, the decode attention, packed linear
layers, the choice of dtype and the sharing of cores between threads."""

import threading

import pytest
import torch

from chatbot.llm.devices import load_options
from chatbot.llm.factory import build_local_model
from chatbot.llm.runtime import decode_attention
from chatbot.llm.runtime.batching import BatchScheduler
from chatbot.llm.runtime.cpu_linear import Int8DecodeLinear, PackedLinear, pack_linear_layers, uses_int8_decode
from chatbot.llm.runtime.cpu_threads import (
    PassingThreadEmbeddings,
    in_passing_thread,
    usable_cores,
    use_cores_in_this_thread,
)
from chatbot.llm.runtime.kv_cache import GrowingCache, GrowingLayer
from chatbot.llm.runtime.sampling import Sampling
from chatbot.settings import LLMSettings
from tests.helpers.batching import PROMPTS, reference_greedy
from tests.helpers.tiny_model import HeldModel, sharp_llama


def test_the_growing_cache_returns_what_concatenation_returns() -> None:
    layer, columns = GrowingLayer(), []
    for n in (5, 1, 1, 300, 1):  # past the first spare room, so it also regrows
        states = torch.randn(2, 3, n, 4)
        keys, values = layer.update(states, -states)
        columns.append(states)
        expected = torch.cat(columns, dim=2)
        assert torch.equal(keys, expected)
        assert torch.equal(values, -expected)
    assert layer.get_seq_length() == 308


def test_a_growing_layer_adopts_tensors_set_from_outside_and_grows_on() -> None:
    layer = GrowingLayer()
    first = torch.randn(3, 2, 6, 4)
    layer.update(first, first)
    layer.keys, layer.values = first[[0, 2], :, 2:], first[[0, 2], :, 2:]  # rows leave, leading columns trimmed
    step = torch.randn(2, 2, 1, 4)

    keys, _ = layer.update(step, step)

    assert torch.equal(keys, torch.cat([first[[0, 2], :, 2:], step], dim=2))


def test_replacing_the_keys_leaves_the_values_as_they_were() -> None:
    """A batch that joins a longer one pads its keys first, then reads its values to pad them too."""
    layer = GrowingLayer()
    states = torch.randn(1, 2, 5, 4)
    layer.update(states, -states)

    layer.keys = torch.cat([torch.zeros(1, 2, 3, 4), layer.keys], dim=2)

    assert torch.equal(layer.values, -states)  # not 8 columns, 3 of them the buffer's unused room


def test_a_decode_step_does_not_copy_the_cache() -> None:
    cache = GrowingCache()
    cache.update(torch.randn(1, 2, 10, 4), torch.randn(1, 2, 10, 4), 0)
    before = cache.layers[0].keys.data_ptr()

    cache.update(torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4), 0)

    assert cache.layers[0].keys.data_ptr() == before  # written into the spare room, not a new tensor
    assert cache.get_seq_length() == 11


def test_the_decode_attention_matches_sdpa_on_padded_batches() -> None:
    """Batched greedy decoding through the CPU attention equals each request alone through plain generate."""
    ours = sharp_llama(decode_attention.register("cpu"))
    plain = sharp_llama("sdpa")
    scheduler = BatchScheduler(ours, model_name="tiny", max_batch=8)

    results = [list(s) for s in [scheduler.submit(p, Sampling(max_new_tokens=20), frozenset()) for p in PROMPTS]]

    assert results == [reference_greedy(plain, p, 20) for p in PROMPTS]
    scheduler.close()


def test_a_longer_prompt_joining_a_running_batch_pads_the_running_rows() -> None:
    """The running request's cache is shorter than the newcomer's prompt: its rows are the ones left-padded."""
    model = sharp_llama(decode_attention.register("cpu"))
    held = HeldModel(model)
    held.pause_after = 3
    scheduler = BatchScheduler(held, model_name="tiny", max_batch=4)
    first = scheduler.submit(PROMPTS[2], Sampling(max_new_tokens=30), frozenset())
    tokens = iter(first)
    head = [next(tokens) for _ in range(3)]
    late = scheduler.submit(PROMPTS[1], Sampling(max_new_tokens=15), frozenset())
    held.resume()

    late_result = list(late)
    first_result = head + list(tokens)

    plain = sharp_llama("sdpa")
    assert first_result == reference_greedy(plain, PROMPTS[2], 30)
    assert late_result == reference_greedy(plain, PROMPTS[1], 15)
    scheduler.close()


def test_the_decode_attention_is_sdpa_to_rounding_for_one_query() -> None:
    module = torch.nn.Module()
    module.num_key_value_groups = 3
    query, key, value = torch.randn(2, 9, 1, 16), torch.randn(2, 3, 40, 16), torch.randn(2, 3, 40, 16)
    mask = torch.ones(2, 1, 1, 40, dtype=torch.bool)
    mask[1, ..., :7] = False  # the second row is left-padded
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, key.repeat_interleave(3, 1), value.repeat_interleave(3, 1), attn_mask=mask
    ).transpose(1, 2)

    out, _ = decode_attention.cpu_attention(module, query, key, value, mask)

    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_linear_layers_compute_the_same_products(dtype) -> None:
    layer = torch.nn.Linear(48, 24).to(dtype)
    x = torch.randn(3, 5, 48, dtype=dtype)
    with torch.inference_mode():
        expected = layer(x)
        packed = PackedLinear(layer)(x)
    assert torch.allclose(packed.float(), expected.float(), atol=1e-2 if dtype == torch.bfloat16 else 1e-5)


def test_a_packed_model_generates_what_the_plain_model_generates() -> None:
    plain, packed = sharp_llama(), sharp_llama()
    assert pack_linear_layers(packed) == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer, and the vocabulary

    assert [reference_greedy(packed, p, 12) for p in PROMPTS] == [reference_greedy(plain, p, 12) for p in PROMPTS]


def test_int8_decode_layers_use_int8_weights_for_decode_steps_and_bf16_for_prefill() -> None:
    layer = torch.nn.Linear(64, 96).to(torch.bfloat16)
    int8 = Int8DecodeLinear(layer)
    dequantized = int8.int8.float() * int8.scales.float()[:, None]
    step, prefill = torch.randn(2, 1, 64, dtype=torch.bfloat16), torch.randn(1, 3, 64, dtype=torch.bfloat16)
    with torch.inference_mode():
        decoded, prefilled = int8(step).float(), int8(prefill)
        expected = step.float() @ dequantized.T + layer.bias.float()
        exact = layer(step).float()

    assert (decoded - expected).norm() < 0.01 * expected.norm()  # the int8 weights, to bf16 rounding
    assert (decoded - exact).norm() < 0.02 * exact.norm()  # and close to the bf16 layer
    assert torch.equal(prefilled, PackedLinear(layer)(prefill))  # more rows than a decode step: the bf16 weights


def test_int8_decode_packs_the_decoder_of_a_bf16_model_only() -> None:
    model = sharp_llama(dtype=torch.bfloat16)
    fp32 = sharp_llama()

    pack_linear_layers(model, int8_decode=True)
    pack_linear_layers(fp32, int8_decode=True)

    assert sum(isinstance(m, Int8DecodeLinear) for m in model.modules()) == 2 * 7
    assert type(model.lm_head) is PackedLinear  # the vocabulary projection: int8 is slower there
    assert not uses_int8_decode(fp32)  # the int8 kernel is slower than fp32's packed one
    assert reference_greedy(model, PROMPTS[1], 12)  # and the model still generates


def test_the_cpu_dtype_follows_the_setting_and_the_cpu(monkeypatch) -> None:
    monkeypatch.setattr("chatbot.llm.devices.cpu_does_bf16", lambda: False)
    assert load_options("cpu", True, "auto")[1] == "none (fp32 on CPU)"
    monkeypatch.setattr("chatbot.llm.devices.cpu_does_bf16", lambda: True)
    assert load_options("cpu", True, "auto")[1] == "none (bf16 on CPU)"
    assert load_options("cpu", True, "float32")[0]["dtype"] == torch.float32
    assert load_options("cpu", True, "bfloat16")[0]["attn_implementation"] == decode_attention.CPU


@pytest.mark.parametrize("cpu_dtype", ["float32", "bfloat16"])
def test_the_loaded_cpu_model_reports_what_it_runs(tiny_model_dir, tmp_path, cpu_dtype) -> None:
    cfg = LLMSettings(backend="local", local={"model": str(tiny_model_dir), "device": "cpu", "cpu_dtype": cpu_dtype})
    llm = build_local_model(cfg, tmp_path)

    assert llm.dtype == cpu_dtype
    assert any(isinstance(m, PackedLinear) for m in llm._model.modules())
    bf16 = cpu_dtype == "bfloat16"
    assert llm.quantization == ("int8 decode weights (bf16 on CPU)" if bf16 else "none (fp32 on CPU)")
    assert llm.invoke("you can return the item").content  # it still answers
    llm.scheduler.close()


def test_a_thread_takes_the_cores_without_changing_other_threads() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    seen = {}

    def worker() -> None:
        seen["worker"] = use_cores_in_this_thread(2)

    def bystander() -> None:
        torch.ones(1 << 16).sum()
        seen["bystander"] = torch.get_num_threads()

    try:
        for target in (worker, bystander):
            thread = threading.Thread(target=target)
            thread.start()
            thread.join()
        assert seen == {"worker": 2, "bystander": 1}
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_work_in_a_passing_thread_returns_its_result_or_raises_its_error() -> None:
    caller = threading.get_ident()
    assert in_passing_thread(threading.get_ident) != caller
    with pytest.raises(ZeroDivisionError):
        in_passing_thread(lambda: 1 / 0)


def test_passing_thread_embeddings_are_the_inner_embeddings(embeddings) -> None:
    wrapped = PassingThreadEmbeddings(embeddings)
    assert wrapped.embed_query("refund") == embeddings.embed_query("refund")
    assert wrapped.embed_documents(["a", "b"]) == embeddings.embed_documents(["a", "b"])


def test_more_threads_than_usable_cores_are_not_given(caplog) -> None:
    got = in_passing_thread(use_cores_in_this_thread, usable_cores() + 3)

    assert got == usable_cores()
    assert "may use" in caplog.text
