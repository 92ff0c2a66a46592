"""A tiny random-weight Llama with a word-level tokenizer and a chat template, written to a directory.

Plain module (no fixtures) so the GPU tests can build it on a machine without the app's dependencies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_tiny_model(path: Path, hidden: int = 32, layers: int = 2, initializer_range: float = 0.02) -> Path:
    """A 2-layer random-weight Llama (~100 KiB at the defaults) loadable by `chatbot.llm.factory.build_local_model`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<unk>", "<pad>", "<s>", "</s>", "SYSTEM", "USER", "ASSISTANT", "END"]
    words += [
        "the",
        "a",
        "you",
        "can",
        "return",
        "item",
        "within",
        "days",
        "refund",
        "shipping",
        "free",
        "order",
        "help",
        "please",
        "contact",
        "us",
    ]
    words += [
        "documents",
        "question",
        "customer",
        "answer",
        "is",
        "are",
        "to",
        "of",
        "and",
        "in",
        "for",
        "on",
        "with",
        "30",
        "48",
        "hours",
    ]
    vocab = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] | upper }} {{ m['content'] }} END {% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT {% endif %}"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(words),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        initializer_range=initializer_range,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=1,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


class HeldModel:
    """A model whose forward passes wait while a test holds them: lets a test line up requests at an exact step
    instead of racing the scheduler thread. Forward passes after the `pause_after`-th also wait for `resume()`."""

    def __init__(self, model: Any) -> None:
        import threading

        self.inner = model
        self.config = model.config
        self.device = model.device
        self.calls = 0
        self.pause_after: int | None = None
        self._go = threading.Event()
        self._go.set()

    def __call__(self, **kwargs: Any) -> Any:
        return self.forward(**kwargs)

    def forward(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.pause_after is not None and self.calls > self.pause_after:
            self._go.clear()
        if not self._go.wait(timeout=120):
            raise TimeoutError("the test never resumed the model")
        return self.inner(**kwargs)

    def pause(self) -> None:
        self._go.clear()

    def resume(self, steps: int | None = None) -> None:
        """Let forward passes run again: all of them, or only the next `steps`."""
        self.pause_after = None if steps is None else self.calls + steps
        self._go.set()


def sharp_llama(attn_implementation: str = "sdpa", dtype: Any = None) -> Any:
    """The batching tests' model (sharp attention: a wrong mask or offset changes the tokens), in any attention."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        initializer_range=0.4,
        attn_implementation=attn_implementation,
    )
    return LlamaForCausalLM(config).to(dtype or torch.float32).eval()
