"""Generation speed of the local-model path against plain transformers, same model, same run.

    python bench/generation.py                   # GPU: Qwen2.5-7B-shaped random model + the bundled SmolLM2
    python bench/generation.py --models bundled  # GPU: the bundled model only
    python bench/generation.py --cpu             # CPU: the bundled model, last line ttft_s=… decode_tok_s=…

CPU: "plain generate" is plain transformers `generate` on the fp32 model with its default (SDPA) attention;
"ours" is the app's CPU path (bf16 where the CPU does bf16 natively, see RAGDESK_LLM__LOCAL__CPU_DTYPE; the
decode attention of chatbot/llm/runtime/decode_attention.py; the growing cache of chatbot/llm/runtime/kv_cache.py;
the batching scheduler).
Each also serves four customers at once whose prompts differ in length (MIXED_PROMPTS), and so does "ours" with
prompts prefilled together as on a GPU (the baseline for the CPU's one-long-prompt-at-a-time prefill).

GPU: for each model, "ours" is RAGDesk's path (bitsandbytes NF4 weights, the batching scheduler, a compiled
CUDA-graph decode for a lone request), "ours + batch graphs" the same with concurrent answers in static cache
slots, one captured CUDA graph per batch shape (RAGDESK_LLM__LOCAL__BATCH_GRAPHS), and "bf16 eager" is plain
transformers `generate` on bf16 weights, one request at a time (what an app serving plain `generate` does
with concurrent customers). Printed per path: time to first token for a 2,048-token prompt, decode tokens/s at
batch 1, aggregate decode tokens/s and p99 time to first token with 1, 4 and 16 concurrent streams, GPU memory,
and the effective memory-bandwidth fraction (weight bytes read per decode step x steps/s / the card's HBM
bandwidth). Needs bitsandbytes.

The 7B-shaped model is built from Qwen2.5-7B-Instruct's configuration with random weights (no download):
its speed is the real model's, its text is noise. Prompts are random token ids, a fresh one per request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QWEN25_7B = dict(  # Qwen2.5-7B-Instruct's config.json, shape only
    vocab_size=152064,
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
    bos_token_id=151643,
    eos_token_id=151645,
)
SMOLLM2_135M = dict(  # the bundled SmolLM2-135M-Instruct's shape
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    tie_word_embeddings=True,
    bos_token_id=1,
    eos_token_id=2,
)
MIXED_PROMPTS = [300, 1200, 600, 900]  # CPU: four customers at once, prompts of different lengths
HBM_TBS = {"H200": 4.8, "H100 PCIe": 2.0, "H100 NVL": 3.9, "H100": 3.35, "A100": 2.0, "L40S": 0.864, "L4": 0.3}


def build_qwen7b(dtype: Any) -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**QWEN25_7B)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(dtype)
    return model.eval()


def write_random_llama(path: Path, shape: dict[str, Any]) -> Path:
    """A Llama of the given shape with random weights and a word-level tokenizer, saved for the real loader."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(shape["vocab_size"] - 3)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**shape)).to(torch.bfloat16).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def quantize_nf4(model: Any) -> Any:
    """Replace every decoder linear layer by a bitsandbytes NF4 one (double quant, bf16 compute), in place:
    exactly what BitsAndBytesConfig(load_in_4bit, nf4, double quant) does at load, minus the file."""
    import bitsandbytes as bnb
    import torch

    for module in list(model.model.layers.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear):
                layer = bnb.nn.Linear4bit(
                    child.in_features,
                    child.out_features,
                    bias=child.bias is not None,
                    compute_dtype=torch.bfloat16,
                    compress_statistics=True,
                    quant_type="nf4",
                    device="meta",
                )
                weight = child.weight.data.to("cpu")
                layer.weight = bnb.nn.Params4bit(
                    weight, requires_grad=False, compress_statistics=True, quant_type="nf4"
                ).to("cuda")
                if child.bias is not None:
                    layer.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
                setattr(module, name, layer)
                del child
    torch.cuda.empty_cache()
    return model


def weight_bytes_per_step(model: Any) -> int:
    """Bytes of weights a decode step reads: everything but the input embedding table (one row is read)."""
    total = 0
    embedding = model.get_input_embeddings().weight
    for param in model.parameters():
        if param is embedding:
            continue
        total += param.numel() * param.element_size()
        state = getattr(param, "quant_state", None)
        if state is not None:  # NF4 absmax (double-quantized) and its own statistics
            total += state.absmax.numel() * state.absmax.element_size()
    return total


def random_prompts(n: int, length: int, vocab: int, seed: int) -> list[list[int]]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(100, vocab - 100, (length,), generator=generator).tolist() for _ in range(n)]


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class Ours:
    """RAGDesk's path: the batching scheduler (and its lone fast path) over the given model."""

    label = "ours"

    def __init__(
        self, model: Any, lone_decode: str, context: int, slot_decode: str = "off", prefill_tokens: int | None = None
    ) -> None:
        from chatbot.llm.runtime.batching import BatchScheduler

        self.scheduler = BatchScheduler(
            model,
            model_name="bench",
            max_batch=16,
            prefill_tokens=prefill_tokens,  # None: the app's default for the device
            lone_decode=lone_decode,  # type: ignore[arg-type]
            slot_decode=slot_decode,  # type: ignore[arg-type]
            static_cache_len=context,
        )
        if slot_decode != "off":
            self.scheduler.warm_up()  # compiles the lone step, captures the first batch graph

    def run(self, prompts: list[list[int]], new_tokens: int) -> list[tuple[float, float, int]]:
        """(ttft, total, tokens) per request, all submitted at once."""
        from chatbot.llm.runtime.sampling import Sampling

        started = time.perf_counter()
        streams = [self.scheduler.submit(p, Sampling(max_new_tokens=new_tokens), frozenset()) for p in prompts]

        def read(stream: Any) -> tuple[float, float, int]:
            first = None
            count = 0
            for _ in stream:
                first = first or time.perf_counter() - started
                count += 1
            return first or 0.0, time.perf_counter() - started, count

        return all_at_once(read, streams)

    def close(self) -> None:
        self.scheduler.close(wait_s=10)


class PlainGenerate:
    """Plain transformers: `generate` with a streamer, one request at a time."""

    label = "plain generate"

    def __init__(self, model: Any) -> None:
        from chatbot.llm.runtime.cpu_threads import use_cores_in_this_thread

        self.model = model  # one worker thread runs every generate, as an app serving plain generate would
        on_cpu = model.device.type == "cpu"
        self.worker = ThreadPoolExecutor(max_workers=1, initializer=use_cores_in_this_thread if on_cpu else None)

    def run(self, prompts: list[list[int]], new_tokens: int) -> list[tuple[float, float, int]]:
        import torch
        from transformers.generation.streamers import BaseStreamer

        started = time.perf_counter()

        class Clock(BaseStreamer):
            def __init__(self) -> None:
                self.calls = 0
                self.first: float | None = None

            def put(self, value: Any) -> None:
                self.calls += 1
                if self.calls == 2:  # the first call carries the prompt
                    self.first = time.perf_counter() - started

            def end(self) -> None:
                pass

        def one(prompt: list[int]) -> tuple[float, float, int]:
            clock = Clock()
            with torch.inference_mode():
                out = self.model.generate(
                    torch.tensor([prompt], device=self.model.device),
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                    do_sample=False,
                    streamer=clock,
                    pad_token_id=0,
                )
            return clock.first or 0.0, time.perf_counter() - started, out.shape[1] - len(prompt)

        futures = [self.worker.submit(one, prompt) for prompt in prompts]
        return [future.result() for future in futures]

    def close(self) -> None:
        self.worker.shutdown()  # its thread ends, and so does its team of OpenMP threads


def all_at_once(work: Any, items: list[Any]) -> list[tuple[float, float, int]]:
    """(time to first token, time to last, tokens) per request, each request served by its own thread."""
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(work, items))


def measure(
    engine: Any, vocab: int, prompt_len: int, new_tokens: int, streams: list[int], seed: int, repeats: int
) -> dict:
    started = time.perf_counter()
    engine.run(random_prompts(1, 64, vocab, seed), 8)  # warm-up (compilation, CUDA graphs, allocator)
    engine.run(random_prompts(1, prompt_len, vocab, seed + 1), 8)
    print(f"  {engine.label}: warmed up in {time.perf_counter() - started:.0f} s", flush=True)
    figures: dict[str, Any] = {}
    singles = []
    for repeat in range(repeats):  # the median of a few lone requests: shared machines are noisy
        ttft, total, count = engine.run(random_prompts(1, prompt_len, vocab, seed + 2 + 100 * repeat), new_tokens)[0]
        singles.append((ttft, (count - 1) / (total - ttft)))
        print(f"  {engine.label}: ttft_s={ttft:.3f} decode_tok_s={singles[-1][1]:.1f}", flush=True)
    figures["ttft_s"] = statistics.median(ttft for ttft, _ in singles)
    figures["decode_tok_s"] = statistics.median(rate for _, rate in singles)
    for n in streams:
        results = engine.run(random_prompts(n, prompt_len, vocab, seed + 10 + n), new_tokens)
        assert all(r[2] == new_tokens for r in results), f"a stream ended early: {[r[2] for r in results]}"
        wall = max(r[1] for r in results)
        firsts = sorted(r[0] for r in results)
        figures[f"agg_tok_s@{n}"] = sum(r[2] for r in results) / wall
        figures[f"p99_ttft_s@{n}"] = firsts[min(len(firsts) - 1, int(0.99 * len(firsts)))]
        figures[f"mean_ttft_s@{n}"] = statistics.mean(firsts)
    return figures


def mixed_round(engine: Any, vocab: int, lengths: list[int], new_tokens: int, seed: int) -> dict:
    """Customers with prompts of different lengths arriving together: mean and last time to first token,
    aggregate tokens/s."""
    results = engine.run([random_prompts(1, n, vocab, seed + n)[0] for n in lengths], new_tokens)
    firsts = [r[0] for r in results]
    return {
        "mean_ttft_s@mixed": statistics.mean(firsts),
        "max_ttft_s@mixed": max(firsts),
        "agg_tok_s@mixed": sum(r[2] for r in results) / max(r[1] for r in results),
    }


def hbm_tbs(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((tbs for key, tbs in HBM_TBS.items() if key in name), None)


def gpu_main(args: argparse.Namespace) -> None:
    import bitsandbytes
    import torch
    import transformers

    gpu = torch.cuda.get_device_name()
    bandwidth = hbm_tbs(gpu, args.hbm_tbs)
    print(
        f"gpu={gpu} hbm_tbs={bandwidth} torch={torch.__version__} transformers={transformers.__version__} "
        f"bitsandbytes={bitsandbytes.__version__} prompt_tokens={args.prompt_tokens} new_tokens={args.new_tokens}",
        flush=True,
    )
    rows = []
    for name in args.models:
        for path in ("bf16 eager", "nf4 ours"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            print(f"{name} {path}: loading", flush=True)
            model, tokenizer_vocab = load_gpu_model(name, quantized=path == "nf4 ours", models_dir=args.models_dir)
            weights = torch.cuda.memory_allocated()
            per_step = weight_bytes_per_step(model)
            variants = [(path, "off")]
            if path == "nf4 ours" and args.batch_graphs:
                variants.append(("nf4 ours + batch graphs", "graphs"))
            for label, slots in variants:
                if slots != "off":  # as the app loads a model with batch graphs on
                    from chatbot.llm.runtime import decode_attention

                    model.set_attn_implementation(decode_attention.register("cuda"))
                torch.cuda.reset_peak_memory_stats()
                engine = Ours(model, args.lone_decode, 8192, slots) if path == "nf4 ours" else PlainGenerate(model)
                streams = args.streams if path == "nf4 ours" else args.baseline_streams
                figures = measure(
                    engine, tokenizer_vocab, args.prompt_tokens, args.new_tokens, streams, seed=7, repeats=args.repeats
                )
                figures["weights_gib"] = weights / 2**30
                figures["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
                if bandwidth:
                    figures["bw_fraction"] = per_step * figures["decode_tok_s"] / (bandwidth * 1e12)
                rows.append((name, label, figures))
                print(name, label, " ".join(f"{k}={v:.3f}" for k, v in figures.items()), flush=True)
                engine.close()
                del engine
            del model
            torch.cuda.empty_cache()
    print_table(rows, args.streams)


def load_gpu_model(name: str, quantized: bool, models_dir: Path) -> tuple[Any, int]:
    """The 7B shape is quantized in memory; the small models load as the app loads them (NF4 or bf16)."""
    import torch

    from chatbot.llm.local_model import load_local_weights
    from chatbot.settings import LLMSettings

    if name == "qwen2.5-7b-shape":
        model = build_qwen7b(torch.bfloat16)
        return (quantize_nf4(model) if quantized else model), QWEN25_7B["vocab_size"]
    source = None  # "bundled": the SmolLM2 GGUF from its package
    if name == "smollm2-135m-shape":  # where the bundled package is missing (its GGUF is 90 MB)
        source = models_dir / "smollm2-135m-shape"
        if not (source / "config.json").exists():
            write_random_llama(source, SMOLLM2_135M)
    local = {"model": str(source) if source else None, "device": "cuda", "load_in_4bit": quantized, "compile": False}
    weights = load_local_weights(LLMSettings(backend="local", local=local), models_dir)
    return weights.model, len(weights.tokenizer)


def print_table(rows: list[tuple[str, str, dict]], streams: list[int]) -> None:
    head = ["model", "path", "TTFT 2k (s)", "decode b1 (tok/s)"]
    head += [f"agg @{n} (tok/s)" for n in streams] + [f"p99 TTFT @{n} (s)" for n in streams]
    head += ["weights (GiB)", "peak (GiB)", "bandwidth"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, path, f in rows:
        cells = [name, path, f"{f['ttft_s']:.3f}", f"{f['decode_tok_s']:.1f}"]
        cells += [f"{f.get(f'agg_tok_s@{n}', float('nan')):.0f}" for n in streams]
        cells += [f"{f.get(f'p99_ttft_s@{n}', float('nan')):.2f}" for n in streams]
        cells += [f"{f['weights_gib']:.2f}", f"{f['peak_gib']:.2f}", f"{f.get('bw_fraction', float('nan')):.2f}"]
        print("| " + " | ".join(cells) + " |")
    by = {(name, path): f for name, path, f in rows}
    for name, path, ours in rows:
        base = by.get((name, "bf16 eager"))
        if not path.startswith("nf4 ours") or not base:
            continue
        line = f"{name} {path}: nf4/bf16 decode b1 = {ours['decode_tok_s'] / base['decode_tok_s']:.2f}x"
        if 1 in streams and 16 in streams:
            line += f"; 16 streams / 1 stream aggregate = {ours['agg_tok_s@16'] / ours['agg_tok_s@1']:.1f}x"
            line += f"; p99 TTFT @16 = {ours['p99_ttft_s@16']:.2f} s"
        print(line)


def cpu_main(args: argparse.Namespace) -> None:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    from chatbot.llm.local_model import load_local_weights, resolve_model_source
    from chatbot.llm.runtime.batching import PREFILL_TOKENS
    from chatbot.llm.runtime.cpu_threads import single_core_by_default
    from chatbot.settings import LLMSettings

    single_core_by_default()  # as the app does on the CPU: the cores go to the thread that generates
    cfg = LLMSettings(backend="local", local={"device": "cpu", "cpu_dtype": args.cpu_dtype})
    weights = load_local_weights(cfg, args.models_dir)
    vocab = len(weights.tokenizer)
    print(
        f"cpu cores={os.cpu_count()} torch={torch.__version__} transformers={transformers.__version__} "
        f"ours: {weights.quantization}, {weights.model.config._attn_implementation} attention"
    )
    streams = [n for n in args.streams if n <= 4]
    plain = AutoModelForCausalLM.from_pretrained(resolve_model_source(cfg, args.models_dir), dtype=torch.float32)

    together = "ours, prompts prefilled together"  # the CPU prefill budget's baseline: as on a GPU

    def ours_together() -> Ours:
        engine = Ours(weights.model, "off", 0, prefill_tokens=PREFILL_TOKENS["cuda"])
        engine.label = together
        return engine

    results = {}
    for make in (lambda: PlainGenerate(plain.eval()), lambda: Ours(weights.model, "off", 0), ours_together):
        engine = make()  # one engine (and its threads) at a time
        if engine.label == together:  # it differs from ours only with several prompts: the mixed round alone
            engine.run(random_prompts(1, 64, vocab, 3), 8)
            figures = {}
        else:
            figures = measure(engine, vocab, args.prompt_tokens, args.new_tokens, streams, seed=3, repeats=args.repeats)
        figures |= mixed_round(engine, vocab, MIXED_PROMPTS, args.new_tokens, seed=50)
        results[engine.label] = figures
        print(engine.label, " ".join(f"{k}={v:.3f}" for k, v in figures.items()), flush=True)
        engine.close()
    ours, plain = results["ours"], results["plain generate"]
    ttft_ratio, decode_ratio = ours["ttft_s"] / plain["ttft_s"], ours["decode_tok_s"] / plain["decode_tok_s"]
    print(f"ours/plain: ttft {ttft_ratio:.2f}x, decode {decode_ratio:.2f}x")
    print(f"ttft_s={ours['ttft_s']:.2f} decode_tok_s={ours['decode_tok_s']:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="the bundled model on the CPU")
    parser.add_argument("--models", nargs="+", default=["qwen2.5-7b-shape", "bundled"], help="also: smollm2-135m-shape")
    parser.add_argument("--prompt-tokens", type=int, default=None, help="2048 on GPU, 1000 on CPU")
    parser.add_argument("--new-tokens", type=int, default=None, help="128 on GPU, 64 on CPU")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument(
        "--baseline-streams",
        type=int,
        nargs="+",
        default=[1, 4],
        help="concurrency for plain generate (it serves one at a time, so 16 streams take minutes)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="lone requests whose median TTFT/decode is reported")
    parser.add_argument("--cpu-dtype", default="auto", choices=["auto", "float32", "bfloat16"], help="ours, on --cpu")
    parser.add_argument("--lone-decode", default="compiled", choices=["off", "static", "compiled"])
    parser.add_argument(
        "--no-batch-graphs",
        dest="batch_graphs",
        action="store_false",
        help="GPU: skip the row for concurrent answers in cache slots with captured CUDA graphs",
    )
    parser.add_argument("--hbm-tbs", type=float, default=None, help="HBM bandwidth in TB/s if the GPU is unknown")
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    args = parser.parse_args()
    args.prompt_tokens = args.prompt_tokens or (1000 if args.cpu else 2048)
    args.new_tokens = args.new_tokens or (64 if args.cpu else 128)
    args.models_dir.mkdir(parents=True, exist_ok=True)
    cpu_main(args) if args.cpu else gpu_main(args)


if __name__ == "__main__":
    main()
