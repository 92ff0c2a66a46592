"""Settings sections for the knowledge base, and the settings root that ingest reads."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class EmbeddingSettings(BaseModel):
    backend: Literal["local", "openai-compatible", "fake"] = Field(
        "local",
        description="Embedding backend: bundled/local sentence-transformers, an HTTP endpoint, or a fake for tests.",
    )
    model: str | None = Field(
        None,
        description="Sentence-transformers model id or directory (local), or model name (openai-compatible). "
        "Empty means the bundled all-MiniLM-L6-v2.",
    )
    multilingual: bool = Field(
        False,
        description="Whether the model understands Chinese. When false, Chinese questions rank by keywords only.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where local embeddings run.")
    batch_size: int = Field(64, ge=1, description="Texts embedded per batch.")
    base_url: str | None = Field(None, description="Endpoint of an OpenAI-compatible embeddings server (TEI, vLLM).")
    api_key: SecretStr = Field(SecretStr("unused"), description="API key for the embeddings endpoint.")


class VectorStoreSettings(BaseModel):
    mode: Literal["embedded", "http"] = Field(
        "embedded", description="Chroma embedded under the data directory, or a Chroma server over HTTP."
    )
    host: str = Field("localhost", description="Chroma server host (http mode).")
    port: int = Field(8000, description="Chroma server port (http mode).")


class ChunkingSettings(BaseModel):
    chunk_size: int = Field(900, ge=100, description="Largest chunk, in characters.")
    chunk_overlap: int = Field(120, ge=0, description="Characters shared by neighbouring chunks.")


class RetrievalSettings(BaseModel):
    k: int = Field(3, ge=1, le=50, description="Chunks placed in the prompt.")
    candidates: int = Field(30, ge=1, description="Candidates each retriever (vector, keyword) contributes to fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant; larger flattens the ranking.")
    vector_weight: float = Field(1.0, ge=0, description="Weight of the vector ranking in fusion.")
    keyword_weight: float = Field(1.0, ge=0, description="Weight of the keyword (BM25) ranking in fusion.")


class KnowledgeSettings(BaseSettings):
    """What ingest needs; the full application settings extend it."""

    model_config = SettingsConfigDict(env_prefix="RAGDESK_", env_nested_delimiter="__", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("data"), description="Everything the product writes: Chroma, SQLite, uploads, model cache."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL for history and the document registry. Empty means SQLite under data_dir."
    )
    default_kb: str = Field("default", description="Knowledge base used when none is named.")
    max_file_mb: int = Field(50, ge=1, description="Largest file accepted for ingest, in MB.")
    max_upload_mb: int = Field(
        500,
        ge=1,
        description="Largest upload request (all its files together), in MB: refused with 413 while it streams in, "
        "before it fills a disk.",
    )
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings, description="Embedding model.")
    vector_store: VectorStoreSettings = Field(default_factory=VectorStoreSettings, description="Chroma.")
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings, description="How documents are split.")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings, description="Hybrid retrieval.")

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ragdesk.sqlite3'}"


def describe_invalid_settings(error: ValidationError) -> str:
    """One line naming each invalid setting by its environment variable, and what is wrong with it."""
    return "; ".join(
        f"RAGDESK_{'__'.join(str(part) for part in problem['loc']).upper()}: {problem['msg']}"
        for problem in error.errors()
    )
