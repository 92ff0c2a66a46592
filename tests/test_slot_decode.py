"""Batched decoding in static cache slots (the CUDA-graph path, run eagerly on the CPU): every answer gets the
same tokens as when it runs alone, through joins, early endings, a lone answer handed over, and a request too
long for a slot."""

import pytest
import torch

from chatbot.llm.runtime import decode_attention, slot_decode
from chatbot.llm.runtime.batching import BatchScheduler
from chatbot.llm.runtime.sampling import Sampling
from tests.helpers.batching import PROMPTS, company_joins_a_lone_answer, reference_greedy
from tests.helpers.tiny_model import HeldModel, sharp_llama


@pytest.fixture(scope="module", params=["sdpa", "cpu"])
def tiny_model(request):
    return sharp_llama("sdpa" if request.param == "sdpa" else decode_attention.register("cpu"))


@pytest.fixture(autouse=True)
def small_column_buckets(monkeypatch):
    """Buckets from 8 columns up, so short test answers cross several of them."""
    monkeypatch.setattr(slot_decode, "MIN_COLUMNS", 8)


def slot_scheduler(model, **kwargs) -> BatchScheduler:
    return BatchScheduler(model, model_name="tiny", max_batch=8, slot_decode="eager", **kwargs)


def test_concurrent_requests_in_slots_match_each_request_run_alone(tiny_model) -> None:
    held = HeldModel(tiny_model)
    scheduler = slot_scheduler(held, static_cache_len=128)
    held.pause()
    lengths = [20, 7, 30, 3, 12]  # rows end at different steps: the live ones move down to the first slots
    streams = [
        scheduler.submit(p, Sampling(max_new_tokens=n), frozenset()) for p, n in zip(PROMPTS, lengths, strict=True)
    ]
    held.resume()

    results = [list(s) for s in streams]

    assert results == [reference_greedy(tiny_model, p, n) for p, n in zip(PROMPTS, lengths, strict=True)]
    assert scheduler.largest_batch == 5
    assert scheduler._slots.cache is not None  # the slots really served them
    scheduler.close(wait_s=5)


def test_requests_joining_running_slots_match_too(tiny_model) -> None:
    held = HeldModel(tiny_model)
    held.pause_after = 10
    scheduler = slot_scheduler(held, static_cache_len=128)
    first = scheduler.submit(PROMPTS[1], Sampling(max_new_tokens=40), frozenset())
    tokens = iter(first)
    head = [next(tokens) for _ in range(10)]
    late = [scheduler.submit(p, Sampling(max_new_tokens=15), frozenset()) for p in PROMPTS[2:]]
    held.resume()

    late_results = [list(s) for s in late]

    assert head + list(tokens) == reference_greedy(tiny_model, PROMPTS[1], 40)
    assert late_results == [reference_greedy(tiny_model, p, 15) for p in PROMPTS[2:]]
    scheduler.close(wait_s=5)


def test_a_lone_answer_moves_into_a_slot_when_company_arrives(tiny_model) -> None:
    held = HeldModel(tiny_model)
    scheduler = slot_scheduler(held, lone_decode="static", static_cache_len=128)
    company_joins_a_lone_answer(scheduler, held, tiny_model, lone_tokens=50)
    scheduler.close(wait_s=5)


def test_a_request_too_long_for_a_slot_moves_the_batch_to_the_dynamic_cache(tiny_model) -> None:
    held = HeldModel(tiny_model)
    held.pause()
    scheduler = slot_scheduler(held, static_cache_len=64)
    short = [scheduler.submit(p, Sampling(max_new_tokens=30), frozenset()) for p in PROMPTS[:2]]
    held.resume(steps=6)  # the pair's prefill and five steps in slots
    tokens = iter(short[0])
    head = [next(tokens) for _ in range(6)]  # waits for those steps (no busy loop beside the scheduler)
    long = scheduler.submit(PROMPTS[4], Sampling(max_new_tokens=100), frozenset())  # 5 + 100 > 64
    held.resume()

    assert list(long) == reference_greedy(tiny_model, PROMPTS[4], 100)
    assert head + list(tokens) == reference_greedy(tiny_model, PROMPTS[0], 30)
    assert list(short[1]) == reference_greedy(tiny_model, PROMPTS[1], 30)
    scheduler.close(wait_s=5)


def test_a_cancelled_answer_leaves_its_slot_and_the_others_go_on(tiny_model) -> None:
    held = HeldModel(tiny_model)
    held.pause()
    scheduler = slot_scheduler(held, static_cache_len=128)
    streams = [scheduler.submit(p, Sampling(max_new_tokens=25), frozenset()) for p in PROMPTS[:3]]
    held.resume()
    middle = iter(streams[1])
    next(middle)
    streams[1].close()

    assert [list(streams[0]), list(streams[2])] == [
        reference_greedy(tiny_model, p, 25) for p in (PROMPTS[0], PROMPTS[2])
    ]
    assert len(streams[1].generated) < 25
    scheduler.close(wait_s=5)


def test_round_up_picks_power_of_two_buckets_within_the_cap() -> None:
    assert [slot_decode._round_up(n, 1, 12) for n in (1, 2, 3, 5, 9, 12)] == [1, 2, 4, 8, 12, 12]
    assert slot_decode._round_up(300, 256, 8192) == 512


def test_slot_step_rows_past_the_live_ones_do_not_change_live_logits() -> None:
    """Idle slots in the rounded-up batch write only to their own column 0."""
    model = sharp_llama()
    decoder = slot_decode.SlotDecoder(model, slots=4, length=32, graphs=False)
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([PROMPTS[3]]), use_cache=True)
        layers = [(k[0], v[0]) for k, v in ((layer.keys, layer.values) for layer in out.past_key_values.layers)]
        for slot in range(3):
            decoder.load(slot, layers, torch.tensor(PROMPTS[3][-1]), len(PROMPTS[3]))
        decoder.free(2)  # a slot with garbage in it, now idle
        alone = decoder.step(1)  # rounded to 1 row
        decoder.free(0)
        decoder.load(0, layers, torch.tensor(PROMPTS[3][-1]), len(PROMPTS[3]))
        decoder.load(1, layers, torch.tensor(PROMPTS[3][-1]), len(PROMPTS[3]))
        pair = decoder.step(2)
        decoder.load(0, layers, torch.tensor(PROMPTS[3][-1]), len(PROMPTS[3]))
        padded = decoder.step(3)  # rounded to 4 rows; slots 2 and 3 hold no answer

    torch.testing.assert_close(pair[0], alone[0])
    torch.testing.assert_close(padded[0], alone[0])


def test_many_customers_arriving_and_leaving_at_random_all_get_their_own_answer(tiny_model) -> None:
    """More requests than slots, arriving from threads at random moments; some readers leave early."""
    import random
    import threading

    scheduler = slot_scheduler(tiny_model, static_cache_len=96)
    scheduler.max_batch = 4  # the decoder has 8 slots; admissions stop at 4, so rows come and go often
    rng = random.Random(5)
    jobs = [(rng.choice(PROMPTS), rng.randint(1, 40), rng.random() < 0.25, rng.random() * 0.05) for _ in range(14)]
    results: dict[int, list[int]] = {}

    def customer(i: int) -> None:
        prompt, n, leaves, delay = jobs[i]
        threading.Event().wait(delay)
        stream = scheduler.submit(prompt, Sampling(max_new_tokens=n), frozenset())
        tokens = []
        for token in stream:
            tokens.append(token)
            if leaves and len(tokens) == n // 2:
                stream.close()
                break
        results[i] = tokens

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    for i, (prompt, n, leaves, _) in enumerate(jobs):
        expected = reference_greedy(tiny_model, prompt, n)
        assert results[i] == (expected[: n // 2] if leaves and n // 2 else expected), i
    assert scheduler.largest_batch > 1
    scheduler.close(wait_s=5)


def test_grouped_decode_attention_for_cuda_equals_sdpa_over_repeated_heads() -> None:
    module = torch.nn.Module()
    module.num_key_value_groups = 3
    query, key, value = torch.randn(2, 9, 1, 16), torch.randn(2, 3, 40, 16), torch.randn(2, 3, 40, 16)
    mask = torch.ones(2, 1, 1, 40, dtype=torch.bool)
    mask[1, ..., 30:] = False  # the second row is shorter (a slot's unused columns)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, key.repeat_interleave(3, 1), value.repeat_interleave(3, 1), attn_mask=mask
    ).transpose(1, 2)

    out, _ = decode_attention.cuda_attention(module, query, key, value, mask)

    torch.testing.assert_close(out, expected)


def test_slots_through_the_grouped_attention_match_each_request_alone() -> None:
    model = sharp_llama(decode_attention.register("cuda"))
    held = HeldModel(model)
    scheduler = slot_scheduler(held, static_cache_len=128)
    held.pause()
    streams = [scheduler.submit(p, Sampling(max_new_tokens=15), frozenset()) for p in PROMPTS]
    held.resume()

    plain = sharp_llama()  # the same weights, transformers' own SDPA
    assert [list(s) for s in streams] == [reference_greedy(plain, p, 15) for p in PROMPTS]
    scheduler.close(wait_s=5)
