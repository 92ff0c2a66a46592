"""The dynamic batch: the running requests in one left-padded, growing key/value cache. Its sampling and
ending of rows are shared by the other batch kinds (lone_decode.py, slot_batch.py)."""

from __future__ import annotations

import logging
from typing import Any

from chatbot.errors import ModelUnavailableError
from chatbot.llm.runtime.sampling import sample
from chatbot.llm.runtime.streams import TokenStream

logger = logging.getLogger(__name__)


class Batch:
    """The running requests: one left-padded key/value cache, its attention mask and each row's next input."""

    def __init__(self, streams: list[TokenStream], cache: Any, mask: Any, tokens: Any, positions: Any) -> None:
        self.streams = streams
        self.cache = cache
        self.mask = mask  # [rows, columns]: 1 where a row has a real token in that cache column
        self.tokens = tokens  # [rows]: each row's last sampled token, the next step's input
        self.positions = positions  # [rows]: position id of that token
        self.live = [True] * len(streams)

    @classmethod
    def prefill(cls, model: Any, streams: list[TokenStream], running: Batch | None) -> Batch:
        """Prefill these requests together (left-padded to the longest prompt) and join them to `running`."""
        from chatbot.llm.runtime.kv_cache import GrowingCache

        ids, mask = _left_padded([s.prompt_ids for s in streams], model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = GrowingCache()
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        new = cls(streams, cache, mask, ids[:, -1], mask.sum(-1))
        new.sample_and_emit(out.logits[:, -1, :])
        return new if running is None else running.joined(new)

    def dynamic(self) -> Batch:
        """This batch with a growable cache (it has one already)."""
        return self

    def decode(self, model: Any) -> None:
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.streams), 1))], dim=-1)
        out = model(
            input_ids=self.tokens[:, None],
            attention_mask=self.mask,
            position_ids=self.positions[:, None],
            past_key_values=self.cache,
            use_cache=True,
        )
        self.positions = self.positions + 1
        self.sample_and_emit(out.logits[:, -1, :])

    def sample_and_emit(self, logits: Any) -> None:
        import torch

        broken = torch.isnan(logits).any(dim=-1).tolist()  # a numerical fault: never stream its argmax as text
        chosen = sample(logits, [(s.sampling, s.generated) for s in self.streams])
        self.tokens = chosen
        for row, (stream, token) in enumerate(zip(self.streams, chosen.tolist(), strict=True)):
            if broken[row]:
                logger.error("the model's output for one answer was not a number; that answer was stopped")
                stream.finish(ModelUnavailableError("The model failed while writing this answer. Please try again."))
                self.live[row] = False
            elif stream.cancelled or not stream.emit(token):
                self.live[row] = False

    def without_finished(self) -> Batch | None:
        """Drop rows that ended or were cancelled, then the cache columns no remaining row uses."""
        import torch

        keep = self.end_finished()
        if keep is None:
            return self
        if not keep:
            return None
        index = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.streams = [self.streams[row] for row in keep]
        self.mask, self.tokens, self.positions = self.mask[index], self.tokens[index], self.positions[index]
        self.live = [True] * len(keep)
        unused = int(self.mask.any(dim=0).int().argmax())  # leading columns that are padding in every row
        if unused:
            self.mask = self.mask[:, unused:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, unused:], layer.values[:, :, unused:]
        return self

    def end_finished(self) -> list[int] | None:
        """End the streams of rows that finished or were cancelled; the rows still live, or None if all are."""
        for row, stream in enumerate(self.streams):
            if self.live[row] and stream.cancelled:
                self.live[row] = False
        if all(self.live):
            return None
        for row, stream in enumerate(self.streams):
            if not self.live[row]:
                stream.finish()
        return [row for row, live in enumerate(self.live) if live]

    def joined(self, other: Batch) -> Batch:
        """One batch holding both: the shorter cache is left-padded to the longer one's width."""
        import torch

        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([pad_left(mine.keys, width, 2), pad_left(theirs.keys, width, 2)])
            mine.values = torch.cat([pad_left(mine.values, width, 2), pad_left(theirs.values, width, 2)])
        self.mask = torch.cat([pad_left(self.mask, width, 1), pad_left(other.mask, width, 1)])
        self.tokens = torch.cat([self.tokens, other.tokens])
        self.positions = torch.cat([self.positions, other.positions])
        self.streams = [*self.streams, *other.streams]
        self.live = [*self.live, *other.live]
        return self


def pad_left(tensor: Any, width: int, dim: int) -> Any:
    """The tensor widened to `width` along `dim` by zeros in front."""
    import torch

    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _left_padded(prompts: list[list[int]], device: Any) -> tuple[Any, Any]:
    """The prompts as one [rows, longest] id tensor, right-aligned, and its mask (1 on real tokens)."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, device=device)
        mask[row, width - len(prompt) :] = 1
    return ids, mask
