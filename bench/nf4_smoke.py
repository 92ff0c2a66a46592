"""GPU smoke benchmark of the local-model path: NF4 (our default on CUDA) against bf16, same model, same run.

    python bench/nf4_smoke.py [--layers 24 --hidden 2048]

Builds a Llama-shaped model with random weights from a config alone (no download), saves it, loads it
through LocalChatModel.load twice (NF4 via bitsandbytes, then bf16), and prints GPU memory, time to first
token and decode tokens/s at batch 1 for each. Needs CUDA and bitsandbytes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build_model_dir(path: Path, layers: int, hidden: int) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<unk>", "<pad>", "<s>", "</s>"] + [f"w{i}" for i in range(32_000 - 4)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    config = LlamaConfig(
        vocab_size=len(words),
        hidden_size=hidden,
        intermediate_size=int(hidden * 2.75),
        num_hidden_layers=layers,
        num_attention_heads=hidden // 128,
        num_key_value_heads=max(hidden // 512, 1),
        max_position_embeddings=4096,
        bos_token_id=2,
        eos_token_id=None,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(path)
    tokenizer.save_pretrained(path)


def measure(model_dir: Path, load_in_4bit: bool, prompt_tokens: int, new_tokens: int) -> str:
    import torch

    from chatbot.local_model import LocalChatModel
    from chatbot.settings import LLMSettings

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    cfg = LLMSettings(
        backend="local",
        local={"model": str(model_dir), "device": "cuda", "load_in_4bit": load_in_4bit},
        max_new_tokens=new_tokens,
        repetition_penalty=1.0,
    )
    llm = LocalChatModel.load(cfg, model_dir)
    weights_gib = torch.cuda.memory_allocated() / 2**30
    prompt = " ".join(f"w{i % 30000}" for i in range(prompt_tokens))
    "".join(str(c.content) for c in llm.stream(prompt))  # warm-up
    started = time.perf_counter()
    first = None
    count = 0
    for _ in llm.stream(prompt):
        first = first or time.perf_counter() - started
        count += 1
    total = time.perf_counter() - started
    decode = (count - 1) / (total - first) if first and count > 1 else 0.0
    del llm
    peak_gib = torch.cuda.max_memory_allocated() / 2**30
    return (
        f"{llm_label(load_in_4bit)}: weights_gib={weights_gib:.2f} peak_gib={peak_gib:.2f}"
        f" ttft_s={first:.3f} decode_tok_s={decode:.1f} streamed_chunks={count}"
    )


def llm_label(load_in_4bit: bool) -> str:
    return "nf4" if load_in_4bit else "bf16"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--new-tokens", type=int, default=128)
    args = parser.parse_args()
    import torch

    print(f"gpu={torch.cuda.get_device_name()} torch={torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        build_model_dir(Path(tmp), args.layers, args.hidden)
        results = [measure(Path(tmp), q, args.prompt_tokens, args.new_tokens) for q in (True, False)]
    print(f"model: llama layers={args.layers} hidden={args.hidden} prompt_tokens={args.prompt_tokens}")
    print("\n".join(results))


if __name__ == "__main__":
    main()
