"""The one Settings object of the application (env prefix RAGDESK_, nested with __, optional .env)."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from knowledge.settings import KnowledgeSettings


class LocalLLMSettings(BaseModel):
    model: str | None = Field(
        None, description="Hugging Face model id or local directory. Empty means the bundled SmolLM2-135M-Instruct."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where the local model runs.")
    load_in_4bit: bool = Field(True, description="Quantize to 4-bit NF4 with bitsandbytes when running on CUDA.")
    cpu_threads: int | None = Field(
        None,
        ge=1,
        description="Cores the model's generation uses on CPU (empty: all); the app's other work "
        "(embeddings, ingest) then computes on one core, so it does not slow answers down.",
    )
    cpu_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Weights and compute on CPU: auto is bfloat16 where the CPU does bf16 natively "
        "(AVX512-BF16 or AMX), else float32.",
    )
    cpu_int8_decode: bool = Field(
        True,
        description="With bf16 on CPU, decode steps of one or two answers read an int8 copy of the decoder's "
        "weights (one scale per output row): ~17% faster; prefill stays bf16. Wording of answers can differ.",
    )
    compile: bool = Field(
        True, description="On CUDA, decode a lone answer through a static cache and a compiled, CUDA-graph forward."
    )
    batch_graphs: bool = Field(
        False,
        description="On CUDA, decode concurrent answers in static cache slots, replaying one CUDA graph per batch "
        "shape (slots use max_batch x context_window tokens of KV memory). Not yet measured on a GPU, so off.",
    )
    max_batch: int = Field(
        16, ge=1, le=256, description="Answers the local model generates together; more customers wait for a slot."
    )


class OpenAICompatibleSettings(BaseModel):
    base_url: str = Field("http://localhost:8000/v1", description="OpenAI-compatible server (vLLM, TGI, llama.cpp).")
    model: str = Field("default", description="Model name the server knows.")
    api_key: SecretStr = Field(SecretStr("unused"), description="API key for that server.")
    timeout_s: float = Field(60.0, gt=0, description="Seconds before a request to the server is abandoned.")


class LLMSettings(BaseModel):
    backend: Literal["local", "openai-compatible", "fake"] = Field(
        "local", description="Local transformers model, an OpenAI-compatible server, or a scripted fake for tests."
    )
    languages: list[Literal["en", "zh", "other"]] | None = Field(
        None,
        description='Languages the model writes answers in (en, zh, other), as JSON: ["en", "zh"]. A question in '
        "any other language is answered by quoting the documents, never by the model. Empty: English for the "
        "bundled model, English and Chinese for any other.",
    )
    local: LocalLLMSettings = Field(default_factory=LocalLLMSettings, description="Local model.")
    openai: OpenAICompatibleSettings = Field(default_factory=OpenAICompatibleSettings, description="Remote model.")
    fake_responses: list[str] = Field(
        ["This is a scripted answer."], description="Replies the fake backend cycles through (tests only)."
    )
    max_new_tokens: int = Field(256, ge=1, description="Longest answer, in tokens.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature; 0 means greedy decoding.")
    top_p: float = Field(0.9, gt=0, le=1, description="Nucleus sampling mass (when temperature > 0).")
    repetition_penalty: float = Field(
        1.15, ge=1, le=2, description="Penalty on repeating tokens (local model); small models loop without it."
    )
    context_window: int = Field(
        8192,
        ge=256,
        description="Tokens the model can see; chunks and older turns are dropped so the prompt "
        "plus max_new_tokens fits.",
    )


class GroundingSettings(BaseModel):
    policy: Literal["auto", "trim", "refuse", "quote", "off"] = Field(
        "auto",
        description="What happens to an answer sentence the documents do not support: trim (it is never shown; the "
        "supported ones are, and with none left the passages' best sentences are quoted), refuse (the answer stops "
        "there; with nothing shown, the handoff reply), quote (nothing is generated: the passages' best sentences "
        "are the answer), off (no check), or auto: quote with the bundled model (its checked answers were wrong far "
        "more often than quotes, see docs/benchmarks.md), trim with any other. With any but off, a question whose "
        "words the passages do not cover is handed off. The default of new assistant templates; each knowledge "
        "base's template can choose its own.",
    )
    min_similarity: float = Field(
        0.5, ge=0, le=1, description="Least cosine similarity between a sentence and a passage sentence to support it."
    )
    restated_share: float = Field(
        0.6,
        ge=0,
        le=1,
        description="A sentence that shares this share of its content words with a nearby passage sentence "
        "restates it: it must keep that sentence's negations and conditions (not, only, unless...).",
    )
    min_chinese_overlap: float = Field(
        0.6, ge=0, le=1, description="Chinese sentences: least share of their character pairs found in one passage."
    )
    max_new_words: float = Field(
        0.34, ge=0, le=1, description="Largest share of a sentence's content words that no passage contains."
    )
    word_similarity: float = Field(
        0.45,
        ge=0,
        le=1,
        description="A word of the question that no passage contains is still covered by a passage word this close "
        "in meaning (paid ~ payment); a word nothing covers (tandem, Canada) hands the question off.",
    )
    min_quote_similarity: float = Field(
        0.55,
        ge=0,
        le=1,
        description="Least cosine similarity between the question and a passage sentence for the question to be "
        "answered at all, and for a sentence to be quoted.",
    )
    clear_similarity: float = Field(
        0.7,
        ge=0,
        le=1,
        description="A question this close to a passage sentence is answered even with a word no passage covers "
        "(a misspelling, a filler word); below it, such a word hands the question off.",
    )
    min_chinese_quote_overlap: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Chinese questions: least share of their content words (by length) in a passage sentence and its "
        "heading for the question to be answered, and for a sentence to be quoted.",
    )
    quote_word_weight: float = Field(
        0.3, ge=0, le=1, description="Weight of the question's own words in a sentence when choosing what to quote."
    )
    quote_margin: float = Field(
        0.1, ge=0, le=1, description="Sentences scoring within this of the best one are quoted beside it."
    )
    max_quoted_sentences: int = Field(3, ge=1, le=3, description="Most passage sentences in one quoted answer.")


class ChatSettings(BaseModel):
    history_tokens: int = Field(
        1024, ge=0, description="Token budget of earlier turns kept as buffer memory; older turns are dropped."
    )
    max_question_chars: int = Field(4000, ge=1, description="Longest question accepted, in characters.")
    max_history_chars: int = Field(
        64_000,
        ge=1,
        description="Longest history a caller of the OpenAI-compatible API may send with a question, all messages "
        "together, in characters.",
    )


class QueueSettings(BaseModel):
    answers_at_once: int = Field(
        4,
        ge=1,
        le=256,
        description="Answers written at the same time; further customers wait in line, told their place.",
    )
    max_wait_s: float = Field(
        60.0,
        gt=0,
        description="Longest wait in line: a customer is let in only while the wait, estimated from how long answers "
        "take, is within it, and gets the busy reply (with the handoff) when it is over.",
    )
    max_waiting: int | None = Field(
        None, ge=0, description="Most customers in line at once; empty means as many as max_wait_s allows."
    )


class InsightsSettings(BaseModel):
    topic_distance: float = Field(
        0.45,
        gt=0,
        lt=2,
        description="Knowledge gaps: two questions join one topic while their cosine distance (average linkage) "
        "is under this; lower splits topics finer.",
    )
    max_gap_questions: int = Field(
        2000, ge=10, description="Knowledge gaps: the newest this many unanswered questions are grouped."
    )
    gate_margin: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Evaluation gate: a template version scoring lower than the active one by more than this "
        "(score 0-1) is not activated without a reason.",
    )
    max_test_cases: int = Field(
        1000, ge=1, description="Most questions in one knowledge base's test set (each is answered twice per gate)."
    )


class AdminSettings(BaseModel):
    password_hash: SecretStr | None = Field(
        None,
        description="Hash of the admin password for /admin "
        "(make one with `python -m chatbot.access.admin_login hash-password`).",
    )
    trusted_header: str | None = Field(
        None, description="Header a trusted reverse proxy sets to the signed-in admin's name (e.g. X-Remote-User)."
    )


class PortalSettings(BaseModel):
    jwt_secret: SecretStr | None = Field(
        None, description="Secret the portal signs user tokens with (HS256 JWT: sub, name, exp)."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description='Portal origins that may frame /embed, as JSON (e.g. ["https://portal.example.com"]).',
    )
    title: str = Field("Help", description="The company's name for the chat: the chat page's and the widget's title.")
    greeting: str = Field("Hi! How can we help you today?", description="First message of the embedded chat.")
    theme_color: str = Field(
        "#2563eb",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="The company's colour: buttons and accents of every page, the widget's button and its chat.",
    )
    kb: str | None = Field(None, description="Knowledge base of the embedded chat; empty means the default.")


class ApiKeySetting(BaseModel):
    key: SecretStr
    scope: Literal["chat", "admin"] = "chat"
    name: str = "from settings"


class Settings(KnowledgeSettings):
    """Everything configurable; built only in app.py (ingest builds its KnowledgeSettings part)."""

    host: str = Field("127.0.0.1", description="Address the web server binds to.")
    port: int = Field(7860, ge=1, le=65535, description="Port the web server listens on.")
    root_path: str = Field("", description="Path prefix when served behind a reverse proxy (e.g. /support).")
    shutdown_grace_s: float = Field(
        10.0,
        ge=0,
        le=600,
        description="On SIGTERM: seconds that answers being written may take to finish; the rest are stopped "
        "(nothing half is saved) and the server exits.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["text", "json"] = Field("text", description="Log lines as text, or as JSON objects.")
    models_dir: Path | None = Field(
        None, description="Cache of prepared local models (the converted bundled model). Empty means data_dir/models."
    )
    ingest_samples: bool = Field(
        True, description="Ingest the bundled sample documents when the knowledge base is empty."
    )
    llm: LLMSettings = Field(default_factory=LLMSettings, description="Language model.")
    chat: ChatSettings = Field(default_factory=ChatSettings, description="Conversation behaviour.")
    queue: QueueSettings = Field(default_factory=QueueSettings, description="The line in front of answering.")
    grounding: GroundingSettings = Field(
        default_factory=GroundingSettings, description="Checking answers against the documents."
    )
    insights: InsightsSettings = Field(
        default_factory=InsightsSettings, description="Knowledge gaps and the evaluation gate."
    )
    admin: AdminSettings = Field(default_factory=AdminSettings, description="Who may open /admin.")
    portal: PortalSettings = Field(default_factory=PortalSettings, description="The embeddable widget.")
    api_keys: list[ApiKeySetting] = Field(
        default_factory=list,
        description='API keys besides those made in the admin UI, as JSON: [{"key": "...", "scope": "chat"|"admin"}].',
    )

    @property
    def on_loopback(self) -> bool:
        """Bound to this machine only: admin pages and the chat API may stay open for local development."""
        return self.host in {"127.0.0.1", "localhost", "::1"}

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.data_dir / "models"


def documented_settings(model: type[BaseModel] = Settings, prefix: str = "RAGDESK_") -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every leaf setting, as the README's table lists them."""
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(documented_settings(annotation, f"{prefix}{name.upper()}__"))
            continue
        default = field.get_default(call_default_factory=True)
        shown = "" if default is None else default.get_secret_value() if isinstance(default, SecretStr) else default
        rows.append((f"{prefix}{name.upper()}", f"{shown}", field.description or ""))
    return rows


if __name__ == "__main__":
    print("| variable | default | meaning |\n|---|---|---|")
    for variable, default, description in documented_settings():
        print(f"| `{variable}` | `{default}` | {description} |".replace("``", "(empty)"))
