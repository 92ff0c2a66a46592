"""Attention for the CPU: one query per row (a decode step) is two small matrix products; everything else is SDPA.

torch's fused CPU attention kernel is built for long queries: for a single query against 1,000 cached bf16 keys
it takes ~0.8 ms a layer, where a plain `q @ kᵀ`, softmax, `@ v` over the grouped heads takes ~0.2 ms. Prefill
(many queries) keeps transformers' SDPA path. Registered with transformers under ATTENTION, with SDPA's masks.
"""

from __future__ import annotations

from typing import Any

ATTENTION = "ragdesk_cpu"


def register() -> str:
    """Make ATTENTION known to transformers (idempotent); returns the name to load models with."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    return ATTENTION


def attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """query [rows, heads, queries, dim], key/value [rows, kv_heads, columns, dim]; mask bool (True = attend) or
    None; returns [rows, queries, heads, dim] like transformers' other attention functions."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    rows, heads, queries, dim = query.shape
    if queries != 1 or dropout or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    kv_heads, columns = key.shape[1], key.shape[2]
    grouped = query.reshape(rows, kv_heads, heads // kv_heads, dim)  # the query heads that share a key/value head
    scores = torch.matmul(grouped, key.transpose(-1, -2)).float() * (dim**-0.5 if scaling is None else scaling)
    if attention_mask is not None:  # bool (True = attend) or additive
        mask = attention_mask.reshape(rows, 1, 1, columns)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    weights = torch.softmax(scores, dim=-1).to(value.dtype)
    out = torch.matmul(weights, value)  # [rows, kv_heads, group, dim]
    return out.reshape(rows, 1, heads, dim), None
