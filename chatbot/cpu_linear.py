"""Linear layers with their weights packed once for oneDNN, the CPU matrix library torch ships.

A decode step multiplies one row per answer by every weight matrix. torch's ordinary `linear` re-reads each weight
in its stored layout; oneDNN's packed (blocked) layout makes that product about twice as fast on the CPU (0.055
against 0.12 ms for a 576x1536 bf16 layer, 2.2 against 4.5 ms for SmolLM2's vocabulary projection) and prefill
about a tenth faster. The products are the same to rounding. Packing uses torch's own oneDNN operators (the ones its
compiler uses for frozen CPU models); where this torch lacks them, the model keeps its ordinary layers.
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


def pack_linear_layers(model: Any) -> int:
    """Replace the model's linear layers (decoder and vocabulary projection) by packed ones; returns how many."""
    if not _available():
        logger.info("this torch has no oneDNN linear packing; the CPU model keeps its ordinary layers")
        return 0
    replaced = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear and child.weight.device.type == "cpu":
                setattr(module, name, PackedLinear(child))
                replaced += 1
    return replaced


def _available() -> bool:
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    try:  # a tiny product, checked against the ordinary one
        layer = torch.nn.Linear(8, 4)
        x = torch.randn(2, 8)
        with torch.inference_mode():
            return bool(torch.allclose(PackedLinear(layer)(x), layer(x), atol=1e-5))
    except (RuntimeError, NotImplementedError):
        return False
