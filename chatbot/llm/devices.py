"""Where the local model runs and how it loads there: the device, its load options (dtype, attention; NF4 on CUDA),
and the decode path a loaded model is fitted to (packed linear layers on the CPU, batched decode attention on CUDA)."""

from __future__ import annotations

import importlib.util
from typing import Any

from chatbot.errors import ModelUnavailableError
from chatbot.llm.runtime import decode_attention
from chatbot.settings import LocalLLMSettings


def resolve_device(cfg: LocalLLMSettings) -> str:
    if cfg.device != "auto":
        return cfg.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_options(device: str, load_in_4bit: bool, cpu_dtype: str) -> tuple[dict[str, Any], str]:
    """The from_pretrained options for this device (dtype, attention, NF4 on CUDA) and the quantization they give."""
    import torch

    if device != "cuda":
        dtype = cpu_dtype if cpu_dtype != "auto" else ("bfloat16" if cpu_does_bf16() else "float32")
        short = {"float32": "fp32", "bfloat16": "bf16"}[dtype]
        return {
            "dtype": getattr(torch, dtype),
            "attn_implementation": decode_attention.register("cpu"),
        }, f"none ({short} on CPU)"
    if not load_in_4bit:
        return {"dtype": torch.bfloat16, "device_map": "cuda"}, "none (bf16)"
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelUnavailableError("4-bit loading needs bitsandbytes: pip install bitsandbytes")
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    return {"quantization_config": config, "dtype": torch.bfloat16, "device_map": "cuda"}, "nf4 (bitsandbytes 4-bit)"


def ready_for_decoding(model: Any, device: str, cfg: LocalLLMSettings, quantization: str) -> str:
    """Fit the loaded model to its device's decode path; returns its quantization as it now is."""
    if device == "cpu":
        from chatbot.llm.runtime.cpu_linear import pack_linear_layers, uses_int8_decode

        model.to("cpu")
        pack_linear_layers(model, int8_decode=cfg.cpu_int8_decode)
        if uses_int8_decode(model):
            quantization = quantization.replace("none (", "int8 decode weights (")
    if device == "cuda" and cfg.batch_graphs:
        model.set_attn_implementation(decode_attention.register("cuda"))  # batched decode without copied key/values
    return quantization


def cpu_does_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively; elsewhere bf16 is emulated and slower than float32."""
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)  # torch's own CPU probes (private, so guarded)
