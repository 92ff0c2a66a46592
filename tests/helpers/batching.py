"""What the batching tests share: their prompts, the plain-generate reference, and a lone answer joined mid-way."""

import torch

from chatbot.llm.runtime.sampling import Sampling

PROMPTS = [
    [5, 9, 12, 7],
    [11, 4, 6, 20, 21, 8, 9, 10, 13],
    [14],
    [7, 7, 15, 16, 17, 18],
    [19, 22, 23, 5, 6],
]


def reference_greedy(model, prompt: list[int], n: int) -> list[int]:
    """One request alone through plain transformers generate (no padding, no batch)."""
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([prompt]), max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0
        )
    return out[0, len(prompt) :].tolist()


def company_joins_a_lone_answer(scheduler, held, model, lone_tokens: int) -> None:
    """One answer decodes alone for 8 tokens, a second customer arrives: both match their requests run alone."""
    held.pause_after = held.calls + 8  # the lone prefill and 7 decode steps, then the model waits
    tokens = iter(scheduler.submit(PROMPTS[0], Sampling(max_new_tokens=lone_tokens), frozenset()))
    head = [next(tokens) for _ in range(8)]
    second = scheduler.submit(PROMPTS[3], Sampling(max_new_tokens=20), frozenset())
    held.resume()

    assert list(second) == reference_greedy(model, PROMPTS[3], 20)
    assert head + list(tokens) == reference_greedy(model, PROMPTS[0], lone_tokens)
