"""How an answer picks its tokens: its sampling settings, and the pick for every row of a batch at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sampling:
    """How one request picks its tokens: temperature 0 is greedy."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0


def sample(logits: Any, rows: list[tuple[Sampling, list[int]]]) -> Any:
    """Each row's next token under its own sampling settings, given with the tokens it generated so far (the
    repetition penalty applies to the answer's own tokens only)."""
    import torch

    logits = logits.float()
    for row, (sampling, generated) in enumerate(rows):
        penalty = sampling.repetition_penalty
        if penalty != 1.0 and generated:
            seen_ids = torch.tensor(generated, device=logits.device)
            seen = logits[row, seen_ids]
            logits[row, seen_ids] = torch.where(seen < 0, seen * penalty, seen / penalty)
    chosen = logits.argmax(dim=-1)
    for row, (sampling, _) in enumerate(rows):
        if sampling.temperature > 0:
            chosen[row] = _nucleus(logits[row] / sampling.temperature, sampling.top_p)
    return chosen


def _nucleus(logits: Any, top_p: float) -> Any:
    import torch

    probs = torch.softmax(logits, dim=-1)
    ordered, order = probs.sort(descending=True)
    outside = ordered.cumsum(-1) - ordered > top_p
    ordered[outside] = 0
    return order[torch.multinomial(ordered / ordered.sum(), 1)[0]]
