"""Prometheus metrics shared by every package, all named ragdesk_*; /metrics serves them. No customer text in labels."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUEST_LATENCY = Histogram(
    "ragdesk_request_latency_seconds", "HTTP request latency by route and method.", ["route", "method"]
)
TIME_TO_FIRST_TOKEN = Histogram(
    "ragdesk_time_to_first_token_seconds",
    "From question received to the first answer text.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
TOKENS_PER_SECOND = Histogram(
    "ragdesk_generation_tokens_per_second",
    "Answer stream pieces per second after the first (about tokens/s).",
    buckets=(1, 2, 5, 10, 20, 40, 80, 160, 320),
)
CHAT_TURNS = Counter(
    "ragdesk_chat_turns_total", "Answered chat turns by knowledge base and outcome.", ["kb", "outcome"]
)
RETRIEVAL_HITS = Histogram(
    "ragdesk_retrieval_hits", "Chunks retrieved per question.", buckets=(0, 1, 2, 3, 5, 8, 13, 21)
)
NO_ANSWER = Counter("ragdesk_no_answer_total", "Questions given the no-answer reply (nothing relevant found).", ["kb"])
INGESTED_FILES = Counter("ragdesk_ingest_files_total", "Files handled by ingest, by outcome.", ["status"])
ERRORS = Counter("ragdesk_errors_total", "Errors by type and where they happened.", ["type", "where"])
ANSWERS_CHECKED = Counter(
    "ragdesk_grounding_answers_checked_total", "Answers the grounding check judged, by knowledge base.", ["kb"]
)
REFUSED_BY_CHECK = Counter(
    "ragdesk_grounding_refused_total",
    "Answers replaced by the handoff reply because no sentence was supported, by knowledge base.",
    ["kb"],
)
SENTENCES_DROPPED = Counter(
    "ragdesk_grounding_sentences_dropped_total", "Answer sentences the grounding check kept from customers.", ["kb"]
)
ANSWER_MODES = Counter(
    "ragdesk_answers_by_mode_total",
    "Chat turns by how the answer came about (generated, trimmed, quoted or handoff) and the question's language.",
    ["kb", "mode", "language"],
)
FEEDBACK = Counter("ragdesk_feedback_total", "Feedback on answers.", ["rating"])
QUEUE_WAITING = Gauge("ragdesk_queue_waiting", "Customers waiting in line for an answer to start.")
QUEUE_WAIT_SECONDS = Histogram(
    "ragdesk_queue_wait_seconds",
    "Time customers waited in line before their answer started.",
    buckets=(0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 40, 60, 120),
)
QUEUE_ANSWER_SECONDS = Histogram(
    "ragdesk_queue_answer_seconds",
    "Time an answer held its place (from start to end).",
    buckets=(0.5, 1, 2, 5, 10, 20, 40, 80),
)
QUEUE_REJECTED = Counter("ragdesk_queue_rejected_total", "Questions refused at once: the line was full (busy reply).")
QUEUE_TIMED_OUT = Counter(
    "ragdesk_queue_timed_out_total", "Questions that waited the longest wait in line and got the busy reply."
)
