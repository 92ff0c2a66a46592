"""A key/value cache that grows in place: a decode step writes one column instead of copying the whole cache.

transformers' DynamicCache appends with `torch.cat`, so every step copies every layer's keys and values. With a
1,000-token prompt that copy was a third of a CPU decode step. Here each layer keeps spare room past its last
column and hands attention views of the filled part; the cache is copied only when that room runs out (it then
grows by a quarter, at least 256 columns), or when the batch replaces its tensors (rows leave, a batch joins).
"""

from __future__ import annotations

from typing import Any

from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

MIN_ROOM = 256


class GrowingLayer(DynamicLayer):
    """A DynamicLayer whose `keys`/`values` are views of buffers with room to grow along the sequence."""

    def __init__(self, **kwargs: Any) -> None:
        self._key_buffer: Any = None
        self._value_buffer: Any = None
        self._key_length = self._value_length = 0  # apart: code that replaces both sets one, then reads the other
        super().__init__(**kwargs)

    @property  # type: ignore[override]
    def keys(self) -> Any:
        return None if self._key_buffer is None else self._key_buffer[:, :, : self._key_length]

    @keys.setter
    def keys(self, tensor: Any) -> None:  # someone replaced the tensor (trim, join, select rows): adopt it
        self._key_buffer, self._key_length = _adopt(tensor)

    @property  # type: ignore[override]
    def values(self) -> Any:
        return None if self._value_buffer is None else self._value_buffer[:, :, : self._value_length]

    @values.setter
    def values(self, tensor: Any) -> None:
        self._value_buffer, self._value_length = _adopt(tensor)

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        if self._key_length != self._value_length:
            raise RuntimeError(f"cache keys ({self._key_length}) and values ({self._value_length}) differ in length")
        start, end = self._key_length, self._key_length + key_states.shape[-2]
        if self._key_buffer is None or end > self._key_buffer.shape[-2]:
            self._key_buffer = _with_room(self.keys, key_states, end)
            self._value_buffer = _with_room(self.values, value_states, end)
        self._key_buffer[:, :, start:end] = key_states
        self._value_buffer[:, :, start:end] = value_states
        self._key_length = self._value_length = end
        return self.keys, self.values


class GrowingCache(DynamicCache):
    """A DynamicCache made of GrowingLayers, one per decoder layer as the model first writes to it."""

    def __init__(self) -> None:
        super().__init__()
        self.layer_class_to_replicate = GrowingLayer


def _adopt(tensor: Any) -> tuple[Any, int]:
    if tensor is None or tensor.dim() < 4:  # DynamicLayer starts from an empty 1-d tensor
        return None, 0
    return tensor, tensor.shape[-2]


def _with_room(filled: Any, states: Any, needed: int) -> Any:
    """A new buffer holding `filled`, with room for `needed` columns and a quarter more (at least MIN_ROOM)."""
    import torch

    capacity = needed + max(MIN_ROOM, needed // 4)
    batch, heads, _, width = states.shape
    buffer = torch.empty((batch, heads, capacity, width), dtype=states.dtype, device=states.device)
    if filled is not None and filled.shape[-2]:
        buffer[:, :, : filled.shape[-2]] = filled
    return buffer
