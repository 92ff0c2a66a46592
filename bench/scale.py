"""Scale: retrieval time, memory and start time of a replica as a knowledge base grows.

    python bench/scale.py [--chunks 10000,100000] [--queries 200] [--keep DIR]
    python bench/scale.py --chunks 10000,100000,1000000   # about 75 minutes on 2 cores, 13 GB of disk

For each size, a throwaway data directory (SQLite and embedded Chroma, the CPU default) gets one knowledge base
of N synthetic chunks (about 60 words each, drawn from a 20,000-word vocabulary with Zipf frequencies, as real
text has) in documents of 100 chunks, written through KnowledgeService.add_documents: the registry, its keyword
postings and Chroma. Vectors come from a deterministic fake embedding (64 dimensions), so the timings exclude the
embedding model; the bundled model's time to embed one question is measured once and reported on its own.

Per size it prints: the write time; search p50/p95 over --queries questions of 3-6 words (the hybrid search the
chat uses, then its keyword and vector halves alone); and, in a fresh process on the same data directory, the
replica's start (build_services: schema check, reconcile, no re-index) and its resident memory after 20
searches. The last line is exactly `chunks=N search_p50_ms=x search_p95_ms=x keyword_p95_ms=x vector_p95_ms=x
start_s=x rss_mib=x` for the largest size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from chatbot.settings import Settings
from chatbot.wiring import build_services
from knowledge.service import ChunkDraft, DocumentDraft

KB = "scale"
VOCABULARY = 20_000
WORDS_PER_CHUNK = 60
CHUNKS_PER_DOCUMENT = 100
ROOT = Path(__file__).resolve().parent.parent


def settings(data_dir: Path) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "llm": {"backend": "fake"},
        "embeddings": {"backend": "fake"},
        "ingest_samples": False,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def words(rng: random.Random, n: int) -> list[str]:
    """n words with Zipf-like frequencies: word r is drawn with weight 1/r."""
    return [f"w{int(VOCABULARY ** rng.random())}" for _ in range(n)]


def documents(rng: random.Random, chunks: int) -> list[DocumentDraft]:
    drafts = []
    for start in range(0, chunks, CHUNKS_PER_DOCUMENT):
        parts = [
            ChunkDraft(" ".join(words(rng, WORDS_PER_CHUNK)), {"title": f"doc{start}", "position": f"part {i}"})
            for i in range(min(CHUNKS_PER_DOCUMENT, chunks - start))
        ]
        drafts.append(DocumentDraft(f"doc{start:08d}.txt", f"{start:064d}", 1000, parts))
    return drafts


def fill(data_dir: Path, chunks: int) -> float:
    services = build_services(settings(data_dir))
    services.knowledge.create_knowledge_base(KB)
    rng, started = random.Random(chunks), time.perf_counter()
    drafts = documents(rng, chunks)
    for start in range(0, len(drafts), 10):  # ten documents per write, as an upload of ten files
        services.knowledge.add_documents(KB, drafts[start : start + 10])
    seconds = time.perf_counter() - started
    services.close()
    return seconds


def timed_ms(call: Any, questions: list[str]) -> tuple[float, float]:
    seconds = []
    for question in questions:
        started = time.perf_counter()
        call(question)
        seconds.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(seconds, n=20)
    return statistics.median(seconds), cuts[18]


def search_times(data_dir: Path, queries: int) -> dict[str, float]:
    services = build_services(settings(data_dir))
    rng = random.Random(7)
    questions = [" ".join(words(rng, rng.randint(3, 6))) for _ in range(queries)]
    knowledge = services.knowledge
    hybrid = timed_ms(lambda q: knowledge.search(KB, [q], 5), questions)
    keyword = timed_ms(lambda q: knowledge.keyword_index(KB).search(q, 50), questions)
    vector = timed_ms(lambda q: knowledge.vector_store(KB).similarity_search_with_score(q, k=50), questions)
    services.close()
    return {
        "search_p50_ms": hybrid[0],
        "search_p95_ms": hybrid[1],
        "keyword_p50_ms": keyword[0],
        "keyword_p95_ms": keyword[1],
        "vector_p50_ms": vector[0],
        "vector_p95_ms": vector[1],
    }


def replica_start(data_dir: Path) -> dict[str, float]:
    """A fresh process: build_services on the data directory, 20 searches, then its start time and memory."""
    script = (
        "import json, sys, time; sys.path.insert(0, sys.argv[1]); from pathlib import Path\n"
        "started = time.perf_counter()\n"
        "from bench.scale import settings, KB\n"
        "from chatbot.wiring import build_services\n"
        "services = build_services(settings(Path(sys.argv[2])))\n"
        "start_s = time.perf_counter() - started\n"
        "for n in range(20): services.knowledge.search(KB, [f'w{n + 1} w{n * 7 + 3} w{n * 13 + 5}'], 5)\n"
        "rss = int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024\n"
        "print(json.dumps({'start_s': start_s, 'rss_mib': rss}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(ROOT), str(data_dir)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def question_embedding_ms() -> float:
    from knowledge.embeddings import build_embeddings
    from knowledge.settings import EmbeddingSettings

    embeddings = build_embeddings(EmbeddingSettings())
    embeddings.embed_query("warm-up")
    started = time.perf_counter()
    for _ in range(20):
        embeddings.embed_query("How long do I have to return an item I bought online?")
    return (time.perf_counter() - started) * 1000 / 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", default="10000,100000", help="comma-separated knowledge base sizes")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="keep the data directories under this folder")
    args = parser.parse_args()
    print(f"question embedding (bundled all-MiniLM-L6-v2, CPU): {question_embedding_ms():.1f} ms, excluded below")
    figures: dict[str, float] = {}
    for size in [int(n) for n in args.chunks.split(",")]:
        with tempfile.TemporaryDirectory(prefix="ragdesk-scale-") as tmp:
            data_dir = (args.keep or Path(tmp)) / f"chunks-{size}"
            write_s = fill(data_dir, size)
            figures = {"chunks": size, **search_times(data_dir, args.queries), **replica_start(data_dir)}
            shown = " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
            print(f"write_s={write_s:.1f} {shown}", flush=True)
    keys = ("chunks", "search_p50_ms", "search_p95_ms", "keyword_p95_ms", "vector_p95_ms", "start_s", "rss_mib")
    print(" ".join(f"{k}={figures[k]:.1f}" if k != "chunks" else f"chunks={figures[k]}" for k in keys))


if __name__ == "__main__":
    main()
