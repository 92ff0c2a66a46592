"""Linear layers with their weights packed once for oneDNN, the CPU matrix library torch ships.

A decode step multiplies one row per answer by every weight matrix. torch's ordinary `linear` re-reads each weight
in its stored layout; oneDNN's packed (blocked) layout makes that product about twice as fast on the CPU (0.055
against 0.12 ms for a 576x1536 bf16 layer, 2.2 against 4.5 ms for SmolLM2's vocabulary projection) and prefill
about a tenth faster. The products are the same to rounding. Packing uses torch's own oneDNN operators (the ones its
compiler uses for frozen CPU models); where this torch lacks them, the model keeps its ordinary layers.

A decode step of a bf16 model is bound by reading the weights (SmolLM2: 270 MB a token). With `int8_decode`, each
decoder layer also keeps an int8 copy of its weight, one scale per output row, for steps of at most DECODE_ROWS rows
(torch's weight-only int8 kernel, ATen `_weight_int8pack_mm`): half the bytes, a decode step ~17% faster. Prefill
and larger batches, where that kernel is slower, keep the packed bf16 weight; so does the vocabulary projection.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

logger = logging.getLogger(__name__)


class PackedLinear(torch.nn.Module):
    """`nn.Linear` for inference on the CPU, weight held in oneDNN's packed layout."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        self.register_buffer("packed", torch.ops.mkldnn._reorder_linear_weight(weight, 1), persistent=False)
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


class Int8DecodeLinear(PackedLinear):
    """A packed bf16 layer that multiplies decode steps (at most DECODE_ROWS rows) by an int8 copy of its weight."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__(linear)
        weight = linear.weight.detach().float()
        scales = weight.abs().amax(dim=1).clamp(min=1e-12) / 127
        self.register_buffer("int8", (weight / scales[:, None]).round().to(torch.int8), persistent=False)
        self.register_buffer("scales", scales.to(linear.weight.dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows > DECODE_ROWS or x.dtype != torch.bfloat16:
            return super().forward(x)
        out = torch.ops.aten._weight_int8pack_mm(x.reshape(rows, x.shape[-1]), self.int8, self.scales)
        out = out.reshape(*x.shape[:-1], self.out_features)
        return out if self.bias is None else out + self.bias


DECODE_ROWS = 2  # measured: at 4 rows the int8 kernel only breaks even with the packed one, at 8 it is slower


def pack_linear_layers(model: Any, int8_decode: bool = False) -> int:
    """Replace the model's linear layers (decoder and vocabulary projection) by packed ones; returns how many.
    With int8_decode (bf16 models), the decoder's layers also decode through int8 weights."""
    if not _available(PackedLinear):
        logger.info("this torch has no oneDNN linear packing; the CPU model keeps its ordinary layers")
        return 0
    int8_decode = int8_decode and _available(Int8DecodeLinear)
    vocabulary = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    replaced = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear and child.weight.device.type == "cpu":
                int8 = int8_decode and child is not vocabulary and child.weight.dtype == torch.bfloat16
                setattr(module, name, Int8DecodeLinear(child) if int8 else PackedLinear(child))
                replaced += 1
    return replaced


def uses_int8_decode(model: Any) -> bool:
    return any(isinstance(module, Int8DecodeLinear) for module in model.modules())


def _available(kind: type[PackedLinear]) -> bool:
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    try:  # a small product, checked against the ordinary one
        dtype = torch.bfloat16 if kind is Int8DecodeLinear else torch.float32
        layer = torch.nn.Linear(64, 32).to(dtype)
        x = torch.randn(DECODE_ROWS, 64, dtype=dtype)
        with torch.inference_mode():
            expected, got = layer(x).float(), kind(layer)(x).float()
        return bool((got - expected).norm() <= 0.02 * expected.norm())
    except (RuntimeError, NotImplementedError, AttributeError):
        return False
