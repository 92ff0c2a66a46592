"""How far the CPU path's arithmetic moves the bundled model's next-token predictions from fp32.

    python bench/cpu_precision.py        # 50 E-Manual and 40 StackFAQ questions, their gold answers teacher-forced

Each question's prompt (system prompt with the gold sections as context, as bench/int8_decode.py builds it) is
followed by the first 64 tokens of its known answer. The fp32 model reads it all at once; each other
configuration reads the prompt at once (prefill) and then the answer a token at a time (decode steps, as when it
answers), loaded exactly as the app loads it. Printed per configuration: at how many answer positions its most
likely next token is fp32's, and the mean KL divergence from fp32's next-token distribution. A greedy answer
follows the most likely token, so a disagreement is where its wording could part from fp32's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CONFIGS = {
    "fp32 (reference)": {"cpu_dtype": "float32"},
    "bf16": {"cpu_dtype": "bfloat16", "cpu_int8_decode": False},
    "bf16, int8 decode weights (default)": {"cpu_dtype": "bfloat16", "cpu_int8_decode": True},
}


def next_token_logprobs(model, prompt: list[int], answer: list[int], stepwise: bool):
    """Log-probabilities of the token after the prompt and after each answer token but the last."""
    import torch

    with torch.inference_mode():
        if not stepwise:
            logits = model(input_ids=torch.tensor([prompt + answer])).logits[0, len(prompt) - 1 : -1]
            return torch.log_softmax(logits.float(), -1)
        out = model(input_ids=torch.tensor([prompt]), use_cache=True, logits_to_keep=1)
        rows, cache = [out.logits[0, -1]], out.past_key_values
        for token in answer[:-1]:
            out = model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True)
            rows.append(out.logits[0, -1])
            cache = out.past_key_values
        return torch.log_softmax(torch.stack(rows).float(), -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["emanual_s10:50", "stackfaq:40"], help="SET:N under --eval")
    parser.add_argument("--eval", type=Path, default=Path("../shared/eval"))
    parser.add_argument("--answer-tokens", type=int, default=64)
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    args = parser.parse_args()

    from int8_decode import prompts

    from chatbot.llm.factory import build_local_model
    from chatbot.settings import LLMSettings

    models = {}
    for label, local in CONFIGS.items():
        llm = build_local_model(LLMSettings(backend="local", local={"device": "cpu", **local}), args.models_dir)
        llm.scheduler.close(wait_s=10)
        models[label] = llm
        print(f"{label}: {llm.quantization}", flush=True)
    reference = models.pop("fp32 (reference)")
    agree = dict.fromkeys(models, 0)
    divergence: dict[str, list[float]] = {label: [] for label in models}
    positions = 0
    for spec in args.sets:
        name, n = spec.split(":")
        for messages, answers in prompts(args.eval / name, int(n)):
            prompt = reference.prompt_ids(messages)
            answer = reference.tokenizer.encode(" " + answers[0], add_special_tokens=False)[: args.answer_tokens]
            expected = next_token_logprobs(reference._model, prompt, answer, stepwise=False)
            positions += len(answer)
            for label, llm in models.items():
                got = next_token_logprobs(llm._model, prompt, answer, stepwise=True)
                agree[label] += int((got.argmax(-1) == expected.argmax(-1)).sum())
                kl = (expected.exp() * (expected - got)).sum(-1)
                divergence[label].extend(kl.tolist())
    print(f"{positions} answer positions ({', '.join(args.sets)})")
    for label in models:
        print(
            f"{label:36s} same top token as fp32: {agree[label] / positions:.4f}  "
            f"mean KL from fp32: {statistics.mean(divergence[label]):.4f}"
        )


if __name__ == "__main__":
    main()
