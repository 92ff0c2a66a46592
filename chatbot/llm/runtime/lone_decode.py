"""The lone fast path: one request at a time through a static cache and, on CUDA, a compiled decode step
replayed as a CUDA graph; when company arrives its cache is handed to a shared batch."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from chatbot.llm.runtime.batch import Batch
from chatbot.llm.runtime.streams import TokenStream


class LoneDecoder:
    """One request at a time through a static cache and a compiled decode step (CUDA graphs on CUDA)."""

    def __init__(self, model: Any, length: int, compiled: bool) -> None:
        import torch
        from transformers import StaticCache

        self.model = model
        self.length = length
        self.cache = StaticCache(config=model.config, max_cache_len=length)
        self.compiled = compiled
        self.step = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True) if compiled else model.forward

    def fits(self, stream: TokenStream) -> bool:
        return len(stream.prompt_ids) + stream.sampling.max_new_tokens + 1 <= self.length

    def prefill(self, stream: TokenStream) -> LoneBatch:
        import torch

        device = self.model.device
        self.cache.reset()
        n = len(stream.prompt_ids)
        out = self.model(
            input_ids=torch.tensor([stream.prompt_ids], device=device),
            cache_position=torch.arange(n, device=device),
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        batch = LoneBatch(self, stream, n)
        batch.sample_and_emit(out.logits[:, -1, :])
        return batch


class LoneBatch(Batch):
    """A batch of one on the static cache; turns into an ordinary batch when company arrives."""

    def __init__(self, decoder: LoneDecoder, stream: TokenStream, length: int) -> None:
        import torch

        device = decoder.model.device
        super().__init__([stream], None, None, None, torch.tensor([length], device=device))
        self.decoder = decoder
        self.length = length

    def decode(self, model: Any) -> None:
        import torch

        position = self.positions[:, None].clone()
        if self.decoder.compiled:
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's outputs may be overwritten now
        out = self.decoder.step(
            input_ids=self.tokens[:, None].clone(),
            position_ids=position,
            cache_position=position[0],
            past_key_values=self.decoder.cache,
            use_cache=True,
        )
        logits = out.logits[:, -1, :].clone()
        self.positions = self.positions + 1
        self.length += 1
        self.sample_and_emit(logits)

    def dynamic(self) -> Batch:
        import torch

        from chatbot.llm.runtime.kv_cache import GrowingCache

        cache = GrowingCache()
        layers: list[Any] = list(self.decoder.cache.layers)
        for index, layer in enumerate(layers):
            cache.update(layer.keys[:, :, : self.length].clone(), layer.values[:, :, : self.length].clone(), index)
        mask = torch.ones((1, self.length), dtype=torch.long, device=self.positions.device)
        return Batch(self.streams, cache, mask, self.tokens, self.positions)

    def without_finished(self) -> Batch | None:
        return self if self.end_finished() is None else None


def prepare_cudagraph_thread() -> None:
    """Give this thread the thread-local state torch's CUDA-graph trees look for: torch before 2.13 sets it up
    only in the main thread (and autograd's), and fails an assertion in any other thread."""
    import torch

    try:
        from torch._inductor import cudagraph_trees
    except ImportError:
        return
    local = cudagraph_trees.local
    if hasattr(local, "tree_manager_containers"):
        return
    local.tree_manager_containers = {}
    local.tree_manager_locks = defaultdict(threading.Lock)
    torch._C._stash_obj_in_tls("tree_manager_containers", local.tree_manager_containers)
    torch._C._stash_obj_in_tls("tree_manager_locks", local.tree_manager_locks)
