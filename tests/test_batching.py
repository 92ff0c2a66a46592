"""Continuous batching on the CPU: a tiny random Llama, the real scheduler, real threads."""

import threading

import pytest
import torch

from chatbot.errors import ModelUnavailableError
from chatbot.llm.runtime.batching import PREFILL_TOKENS, BatchScheduler
from chatbot.llm.runtime.sampling import Sampling
from tests.helpers.batching import PROMPTS, company_joins_a_lone_answer, reference_greedy
from tests.helpers.tiny_model import HeldModel, sharp_llama


@pytest.fixture(scope="module")
def tiny_model():
    return sharp_llama()


def test_concurrent_requests_match_each_request_run_alone(tiny_model) -> None:
    held = HeldModel(tiny_model)
    scheduler = BatchScheduler(held, model_name="tiny", max_batch=8)
    held.pause()  # all five are queued before the first one's first step ends
    streams = [scheduler.submit(p, Sampling(max_new_tokens=20), frozenset()) for p in PROMPTS]
    held.resume()

    results = [list(s) for s in streams]

    assert results == [reference_greedy(tiny_model, p, 20) for p in PROMPTS]
    assert scheduler.largest_batch > 1  # they really shared forward passes


def test_on_the_cpu_long_prompts_are_prefilled_one_at_a_time_and_short_ones_together(tiny_model) -> None:
    """A CPU is saturated by one long prompt: prefilling several together only delays every first token to the
    last one's (and pads shorter prompts to the longest). Short prompts still share a prefill."""
    prefills: list[int] = []

    class Recording(HeldModel):
        def forward(self, **kwargs):  # type: ignore[no-untyped-def]
            if kwargs["input_ids"].shape[1] > 1:
                prefills.append(kwargs["input_ids"].shape[0])
            return super().forward(**kwargs)

    held = Recording(tiny_model)
    scheduler = BatchScheduler(held, model_name="tiny", max_batch=8)
    assert scheduler.prefill_tokens == PREFILL_TOKENS["cpu"]
    long_a = [(7 * i) % 60 + 4 for i in range(400)]
    long_b = [(11 * i) % 60 + 4 for i in range(400)]
    prompts = [long_a, long_b, PROMPTS[0], PROMPTS[1]]
    with scheduler._wake:  # the scheduler sees all four waiting at once
        streams = [scheduler.submit(p, Sampling(max_new_tokens=6), frozenset()) for p in prompts]

    results = [list(s) for s in streams]

    assert prefills == [1, 3]  # the first long prompt alone; the second with the two short ones (413 tokens)
    assert results == [reference_greedy(tiny_model, p, 6) for p in prompts]


def test_requests_joining_a_running_batch_match_too(tiny_model) -> None:
    """Requests admitted mid-flight are left-padded into a cache that has already grown."""
    held = HeldModel(tiny_model)
    held.pause_after = 10  # the prefill and 9 decode steps: 10 tokens, then the model waits
    scheduler = BatchScheduler(held, model_name="tiny", max_batch=8)
    first = scheduler.submit(PROMPTS[1], Sampling(max_new_tokens=40), frozenset())
    tokens = iter(first)
    head = [next(tokens) for _ in range(10)]
    late = [scheduler.submit(p, Sampling(max_new_tokens=15), frozenset()) for p in PROMPTS[2:]]
    held.resume()

    late_results = [list(s) for s in late]
    first_result = head + list(tokens)

    assert first_result == reference_greedy(tiny_model, PROMPTS[1], 40)
    assert late_results == [reference_greedy(tiny_model, p, 15) for p in PROMPTS[2:]]


def test_a_new_request_streams_before_a_long_one_finishes(tiny_model) -> None:
    held = HeldModel(tiny_model)
    held.pause_after = 2
    scheduler = BatchScheduler(held, model_name="tiny", max_batch=4)
    long = scheduler.submit(PROMPTS[0], Sampling(max_new_tokens=400), frozenset())
    next(iter(long))
    short_stream = scheduler.submit(PROMPTS[2], Sampling(max_new_tokens=3), frozenset())
    held.resume(steps=10)  # enough for the short answer, far too few for the long one

    short = list(short_stream)

    assert len(short) == 3
    assert len(long.generated) < 400  # the long answer was still being written
    long.close()
    held.resume()


def test_a_reader_that_goes_away_frees_its_slot(tiny_model) -> None:
    scheduler = BatchScheduler(tiny_model, model_name="tiny", max_batch=1)
    abandoned = scheduler.submit(PROMPTS[0], Sampling(max_new_tokens=100_000), frozenset())
    next(iter(abandoned))  # streaming; leaving the loop closes the stream

    waiting = scheduler.submit(PROMPTS[2], Sampling(max_new_tokens=5), frozenset())

    assert len(list(waiting)) == 5  # got the only slot once the abandoned request left it
    assert len(abandoned.generated) < 100_000


def test_each_request_stops_at_its_own_end_token_and_length(tiny_model) -> None:
    scheduler = BatchScheduler(tiny_model, model_name="tiny", max_batch=8)
    free = reference_greedy(tiny_model, PROMPTS[3], 12)
    end = free[4]

    stopped = list(scheduler.submit(PROMPTS[3], Sampling(max_new_tokens=12), frozenset({end})))
    short = list(scheduler.submit(PROMPTS[3], Sampling(max_new_tokens=2), frozenset()))

    assert stopped == free[: free.index(end)]
    assert short == free[:2]


def test_sampled_and_greedy_requests_share_a_batch(tiny_model) -> None:
    scheduler = BatchScheduler(tiny_model, model_name="tiny", max_batch=8)
    torch.manual_seed(1)
    greedy = scheduler.submit(PROMPTS[0], Sampling(max_new_tokens=20), frozenset())
    sampled = [
        scheduler.submit(PROMPTS[0], Sampling(max_new_tokens=20, temperature=1.5, top_p=1.0), frozenset())
        for _ in range(3)
    ]

    assert list(greedy) == reference_greedy(tiny_model, PROMPTS[0], 20)
    outputs = {tuple(s) for s in sampled}
    assert len(outputs) > 1 or next(iter(outputs)) != tuple(reference_greedy(tiny_model, PROMPTS[0], 20))


def test_repetition_penalty_changes_only_the_rows_that_ask_for_it(tiny_model) -> None:
    scheduler = BatchScheduler(tiny_model, model_name="tiny", max_batch=8)
    plain = scheduler.submit(PROMPTS[4], Sampling(max_new_tokens=30), frozenset())
    penalised = scheduler.submit(PROMPTS[4], Sampling(max_new_tokens=30, repetition_penalty=2.0), frozenset())

    plain_tokens, penalised_tokens = list(plain), list(penalised)

    assert plain_tokens == reference_greedy(tiny_model, PROMPTS[4], 30)
    assert len(set(penalised_tokens)) > len(set(plain_tokens))


def test_a_model_failure_reaches_every_request_in_flight_and_serving_goes_on(tiny_model) -> None:
    failing = threading.Event()

    class Flaky(torch.nn.Module):
        device = tiny_model.device

        def forward(self, **kwargs):  # type: ignore[no-untyped-def]
            if failing.is_set():
                raise RuntimeError("device lost")
            return tiny_model(**kwargs)

    scheduler = BatchScheduler(Flaky(), model_name="tiny", max_batch=4)
    failing.set()
    broken = [scheduler.submit(p, Sampling(max_new_tokens=5), frozenset()) for p in PROMPTS[:2]]
    for stream in broken:
        with pytest.raises(ModelUnavailableError, match="'tiny' failed while generating"):
            list(stream)

    failing.clear()
    assert list(scheduler.submit(PROMPTS[0], Sampling(max_new_tokens=5), frozenset())) == reference_greedy(
        tiny_model, PROMPTS[0], 5
    )


def test_a_lone_request_on_the_static_cache_matches_and_hands_over_to_the_batch(tiny_model) -> None:
    """The single-customer fast path (static cache; compiled on CUDA) gives the same tokens, also when a
    second customer arrives mid-answer and the lone cache is copied into a shared batch."""
    held = HeldModel(tiny_model)
    scheduler = BatchScheduler(held, model_name="tiny", max_batch=8, lone_decode="static", static_cache_len=256)
    alone = list(scheduler.submit(PROMPTS[1], Sampling(max_new_tokens=30), frozenset()))
    assert alone == reference_greedy(tiny_model, PROMPTS[1], 30)

    company_joins_a_lone_answer(scheduler, held, tiny_model, lone_tokens=200)
    assert scheduler.largest_batch == 2

    too_long = list(scheduler.submit(PROMPTS[0], Sampling(max_new_tokens=300), frozenset()))  # past the static cache
    assert too_long == reference_greedy(tiny_model, PROMPTS[0], 300)


def test_a_scheduler_whose_thread_dies_fails_its_requests_instead_of_hanging(tiny_model) -> None:
    class Broken(BatchScheduler):
        def _next_admissions(self):  # type: ignore[no-untyped-def]
            with self._wake:
                while not self._waiting:
                    self._wake.wait()
            raise RuntimeError("a bug in the scheduler")

    scheduler = Broken(tiny_model, model_name="tiny")
    stream = scheduler.submit(PROMPTS[0], Sampling(max_new_tokens=5), frozenset(), timeout_s=60)

    with pytest.raises(ModelUnavailableError, match="'tiny' failed while generating"):
        list(stream)
    with pytest.raises(ModelUnavailableError, match="not serving"):
        scheduler.submit(PROMPTS[0], Sampling(max_new_tokens=5), frozenset())


def test_out_of_memory_during_generation_names_the_model_and_the_memory(tiny_model) -> None:
    class OutOfMemory(torch.nn.Module):
        device = tiny_model.device

        def forward(self, **kwargs):  # type: ignore[no-untyped-def]
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    scheduler = BatchScheduler(OutOfMemory(), model_name="Qwen/Qwen2.5-7B-Instruct", max_batch=4)
    streams = [scheduler.submit(p, Sampling(max_new_tokens=5), frozenset()) for p in PROMPTS[:3]]

    for stream in streams:
        with pytest.raises(ModelUnavailableError, match=r"'Qwen/Qwen2.5-7B-Instruct' ran out of GPU memory") as e:
            list(stream)
        assert "GiB free of" in str(e.value)
        assert "MAX_BATCH" in str(e.value)


class NaNAfter:
    """The tiny model, except that from its `step`-th forward pass on, row 0's logits are not numbers while
    another row shares the batch."""

    def __init__(self, model, step: int) -> None:
        self.inner, self.config, self.device = model, model.config, model.device
        self.step, self.calls = step, 0

    def __call__(self, **kwargs):
        self.calls += 1
        out = self.inner(**kwargs)
        if self.calls >= self.step and out.logits.shape[0] > 1:
            out.logits[0] = float("nan")
        return out


def test_an_answer_whose_numbers_break_fails_alone_and_the_others_go_on(tiny_model) -> None:
    held = HeldModel(NaNAfter(tiny_model, step=4))
    scheduler = BatchScheduler(held, model_name="tiny", max_batch=4)
    held.pause()
    broken, healthy = (scheduler.submit(p, Sampling(max_new_tokens=12), frozenset()) for p in PROMPTS[:2])
    held.resume()

    with pytest.raises(ModelUnavailableError, match="failed while writing this answer"):
        list(broken)

    assert list(healthy) == reference_greedy(tiny_model, PROMPTS[1], 12)
    assert len(broken.generated) == 3  # the tokens before the fault, none after
