"""Attention for decode steps (one query per row), registered with transformers; everything else is SDPA.

CPU (CPU): torch's fused CPU attention kernel is built for long queries: for a single query against 1,000 cached
bf16 keys it takes ~0.8 ms a layer, where a plain `q @ kᵀ`, softmax, `@ v` over the grouped heads takes ~0.2 ms.

CUDA (CUDA, with batch graphs): given a mask (a batch of answers of different lengths) and grouped key/value heads,
transformers' SDPA path repeats every key/value head for each query head it serves (5.17 does; 5.23 packs
one-query steps itself): for a 7B model with 4 key/value heads, 28 query heads and 16 answers of 4,096 columns,
~1 GB copied per layer per step. Here the query heads that share a key/value head become that head's queries, and
the kernel reads the cache as it is.

Prefill (many queries) keeps transformers' SDPA path, and both use SDPA's masks.
"""

from __future__ import annotations

from typing import Any

CPU, CUDA = "ragdesk_cpu", "ragdesk_gpu"


def register(device: str) -> str:
    """Make the device's attention known to transformers (idempotent); returns the name to load models with."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    name, function = (CUDA, cuda_attention) if device == "cuda" else (CPU, cpu_attention)
    AttentionInterface.register(name, function)
    AttentionMaskInterface.register(name, sdpa_mask)
    return name


def cpu_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """query [rows, heads, queries, dim], key/value [rows, kv_heads, columns, dim]; mask bool (True = attend),
    additive or None; returns [rows, queries, heads, dim] like transformers' other attention functions."""
    import torch

    if not _decode_step(query, dropout, kwargs):
        return _sdpa(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    rows, heads, _, dim = query.shape
    kv_heads, columns = key.shape[1], key.shape[2]
    grouped = query.reshape(rows, kv_heads, heads // kv_heads, dim)  # the query heads that share a key/value head
    scores = torch.matmul(grouped, key.transpose(-1, -2)).float() * (dim**-0.5 if scaling is None else scaling)
    if attention_mask is not None:
        mask = attention_mask.reshape(rows, 1, 1, columns)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    weights = torch.softmax(scores, dim=-1).to(value.dtype)
    out = torch.matmul(weights, value)  # [rows, kv_heads, group, dim]
    return out.reshape(rows, 1, heads, dim), None


def cuda_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """The same contract as cpu_attention; one SDPA call over the grouped query heads."""
    import torch

    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    if not _decode_step(query, dropout, kwargs) or heads == kv_heads:
        return _sdpa(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    grouped = query.reshape(rows, kv_heads, heads // kv_heads, dim)
    if attention_mask is not None:
        attention_mask = attention_mask.reshape(rows, 1, 1, attention_mask.shape[-1])
    out = torch.nn.functional.scaled_dot_product_attention(grouped, key, value, attn_mask=attention_mask, scale=scaling)
    return out.reshape(rows, 1, heads, dim), None


def _decode_step(query: Any, dropout: float, kwargs: dict[str, Any]) -> bool:
    return query.shape[2] == 1 and not dropout and kwargs.get("position_bias") is None


def _sdpa(*args: Any, **kwargs: Any) -> Any:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(*args, **kwargs)
