"""Attention for batched decoding on CUDA: one query per row attends over the key/value heads, not copies of them.

With an attention mask (a batch of answers of different lengths) and grouped key/value heads, transformers' SDPA
path repeats every key and value head for each query head it serves before calling the kernel (newer releases
avoid it). For a 7B model with 4 key/value heads, 28 query heads and 16 answers of 4,096 columns that is ~1 GB
copied per layer per step. Here the query heads that share a key/value head become that head's queries, so the
kernel reads the cache as it is. Prefill (many queries) keeps transformers' SDPA path. Registered under ATTENTION.
"""

from __future__ import annotations

from typing import Any

ATTENTION = "ragdesk_gpu"


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
    """query [rows, heads, queries, dim], key/value [rows, kv_heads, columns, dim], mask broadcastable to
    [rows, 1, queries, columns] or None; returns [rows, queries, heads, dim] like transformers' attention."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    rows, heads, queries, dim = query.shape
    kv_heads = key.shape[1]
    if queries != 1 or heads == kv_heads or dropout or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    grouped = query.reshape(rows, kv_heads, heads // kv_heads, dim)  # the query heads that share a key/value head
    if attention_mask is not None:
        attention_mask = attention_mask.reshape(rows, 1, 1, attention_mask.shape[-1])
    out = torch.nn.functional.scaled_dot_product_attention(grouped, key, value, attn_mask=attention_mask, scale=scaling)
    return out.reshape(rows, 1, heads, dim), None
