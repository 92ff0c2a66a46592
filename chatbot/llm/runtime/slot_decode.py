"""Decoding many answers at once through static cache slots, one captured CUDA graph per batch shape.

The dynamic batch (chatbot/llm/runtime/batch.py `Batch`) grows its mask and cache every step, so each step is a new
shape and runs eagerly: on a GPU that is ~1,000 kernel launches from Python per step, whatever the batch size.
Here every answer owns a slot of a preallocated cache, with cache column = position (no padding), and a step
reads only fixed tensors: the first `rows` slots, the first `columns` cache columns, each row's token and
position. A (rows, columns) pair, both rounded up to a power of two, is one shape, captured as a CUDA graph the
first time it is needed and replayed after that. Rows past the live answers are idle slots that write to their
own column 0, which the next answer loaded there overwrites. Off CUDA the same step runs eagerly (for tests).
"""

from __future__ import annotations

import logging
from typing import Any

from transformers.cache_utils import Cache, CacheLayerMixin

logger = logging.getLogger(__name__)

MIN_COLUMNS = 256


class SlotLayer(CacheLayerMixin):
    """One decoder layer's slots: keys/values [slots, heads, length, dim]; a step writes one column per row."""

    is_sliding = False
    keys: Any
    values: Any

    def __init__(self, owner: SlotCache, keys: Any, values: Any) -> None:
        super().__init__()
        self.owner = owner
        self.keys, self.values = keys, values
        self.is_initialized = True

    def lazy_initialization(self, key_states: Any, value_states: Any) -> None:  # allocated up front
        pass

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        rows, columns = self.owner.window
        at = self.owner.positions[:rows].view(rows, 1, 1, 1).expand_as(key_states)
        self.keys[:rows].scatter_(2, at, key_states)
        self.values[:rows].scatter_(2, at, value_states)
        return self.keys[:rows, :, :columns], self.values[:rows, :, :columns]

    def get_mask_sizes(self, *args: Any, **kwargs: Any) -> tuple[int, int]:  # its argument differs by version
        return self.owner.window[1], 0

    def get_seq_length(self) -> int:
        return 0  # positions are per row and passed in; nothing should derive them from here

    def get_max_length(self) -> int:
        return int(self.keys.shape[2])

    get_max_cache_shape = get_max_length  # its name in earlier transformers


class SlotCache(Cache):
    """The slots of every layer, and the window (rows, columns) the current step reads."""

    def __init__(self, shapes: list[tuple[int, int]], slots: int, length: int, dtype: Any, device: Any) -> None:
        import torch

        self.positions = torch.zeros(slots, dtype=torch.long, device=device)
        self.window = (slots, length)
        self.slot_layers: list[SlotLayer] = []
        for heads, dim in shapes:
            keys = torch.zeros((slots, heads, length, dim), dtype=dtype, device=device)
            self.slot_layers.append(SlotLayer(self, keys, torch.zeros_like(keys)))
        super().__init__(layers=list(self.slot_layers))


class SlotDecoder:
    """Static cache slots for up to `slots` answers of up to `length` tokens each, and their decode step."""

    def __init__(self, model: Any, slots: int, length: int, graphs: bool) -> None:
        import torch

        self.model = model
        self.slots = slots
        self.length = length
        self.graphs = graphs
        self.cache: SlotCache | None = None  # allocated at the first answer, from its layers' shapes
        self.tokens = torch.zeros(slots, dtype=torch.long, device=model.device)
        self.lengths = [0] * slots  # tokens cached per slot: the column (and position) the next step writes
        self._columns = torch.arange(length, device=model.device)
        self._captured: dict[tuple[int, int], tuple[Any, Any]] = {}
        self._pool: Any = None

    def fits(self, prompt_tokens: int, max_new_tokens: int) -> bool:
        return prompt_tokens + max_new_tokens + 1 <= self.length

    def load(self, slot: int, layers: list[tuple[Any, Any]], token: Any, length: int) -> None:
        """Put one answer in a slot: per layer its keys/values [heads, length, dim], and its next input token."""
        if self.cache is None:
            keys = layers[0][0]
            shapes = [(k.shape[0], k.shape[-1]) for k, _ in layers]
            self.cache = SlotCache(shapes, self.slots, self.length, keys.dtype, keys.device)
        for layer, (keys, values) in zip(self.cache.slot_layers, layers, strict=True):
            layer.keys[slot, :, :length] = keys
            layer.values[slot, :, :length] = values
        self.tokens[slot] = token
        self._place(slot, length)

    def move(self, source: int, target: int) -> None:
        """Move an answer to another slot (the batch keeps its live answers in the first slots)."""
        assert self.cache is not None
        length = self.lengths[source]
        for layer in self.cache.slot_layers:
            layer.keys[target, :, :length] = layer.keys[source, :, :length]
            layer.values[target, :, :length] = layer.values[source, :, :length]
        self.tokens[target] = self.tokens[source]
        self._place(target, length)

    def free(self, slot: int) -> None:
        self._place(slot, 0)  # an idle slot writes to its own column 0 and attends to nothing else

    def cached(self, slot: int, layer: int) -> tuple[Any, Any]:
        """One answer's keys and values [heads, length, dim] in one layer."""
        assert self.cache is not None
        keys, values = self.cache.slot_layers[layer].keys, self.cache.slot_layers[layer].values
        return keys[slot, :, : self.lengths[slot]], values[slot, :, : self.lengths[slot]]

    def step(self, rows: int) -> Any:
        """One decode step for the answers in slots [0, rows): their next-token logits [rows, vocab]."""
        assert self.cache is not None
        shape = (_round_up(rows, 1, self.slots), _round_up(max(self.lengths[:rows]) + 1, MIN_COLUMNS, self.length))
        logits = self._replay(shape) if self.graphs else self._forward(shape)
        self.cache.positions[:rows] += 1
        for slot in range(rows):
            self.lengths[slot] += 1
        return logits[:rows].clone()

    def _forward(self, shape: tuple[int, int]) -> Any:
        assert self.cache is not None
        rows, columns = shape
        self.cache.window = shape
        positions = self.cache.positions[:rows]
        mask = (self._columns[None, :columns] <= positions[:, None]).view(rows, 1, 1, columns)
        out = self.model(
            input_ids=self.tokens[:rows, None],
            position_ids=positions[:, None],
            attention_mask=mask,
            past_key_values=self.cache,
            use_cache=True,
        )
        return out.logits[:, -1, :]

    def _replay(self, shape: tuple[int, int]) -> Any:
        if shape in self._captured:
            graph, logits = self._captured[shape]
            graph.replay()
            return logits
        try:
            return self._capture(shape)
        except Exception:  # broad: graphs are a speed-up, and whatever stops a capture (a CUDA error, an op that
            # cannot be captured, a library's own check), a step that cannot be captured runs eagerly from now on
            logger.warning(
                "could not capture the batched decode step %s as a CUDA graph; decoding eagerly", shape, exc_info=True
            )
            self.graphs = False
            return self._forward(shape)

    def _capture(self, shape: tuple[int, int]) -> Any:
        """Run the step eagerly on a side stream (its result is this step's), then capture it for next time.
        Capturing runs nothing, and rerunning a step writes the same keys/values: the cache stays right."""
        import torch

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            result = self._forward(shape)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
            logits = self._forward(shape)
        self._pool = graph.pool()
        self._captured[shape] = (graph, logits)
        logger.info("captured the batched decode step for %d rows x %d columns", *shape)
        return result

    def _place(self, slot: int, length: int) -> None:
        assert self.cache is not None
        self.cache.positions[slot] = length
        self.lengths[slot] = length


def _round_up(n: int, smallest: int, cap: int) -> int:
    size = smallest
    while size < n:
        size *= 2
    return min(size, cap)
