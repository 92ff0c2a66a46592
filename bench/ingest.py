"""Ingest speed: the full pipeline against the raw embedding model, on the same texts, in one run.

    python bench/ingest.py [--docs 1000]

Writes DOCS markdown files made from the texts of ../shared/eval (each made unique by a header), then:
raw  = sentence-transformers encoding the exact chunk texts the pipeline produces (batch 64, normalised);
pipeline = IngestPipeline.ingest_files on the files into a fresh knowledge base (load, chunk, embed,
Chroma + keyword index + registry); reingest = the same call again on the unchanged files.
The last line is exactly `pipeline_vs_raw=0.xx reingest_unchanged_s=N.N docs=N`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ingest.chunking import build_splitter, chunk_document  # noqa: E402
from ingest.loaders import load_document  # noqa: E402
from ingest.pipeline import IngestPipeline, expand_paths  # noqa: E402
from knowledge.embeddings import build_embeddings, bundled_embedding_model_dir  # noqa: E402
from knowledge.service import build_knowledge_service  # noqa: E402
from knowledge.settings import KnowledgeSettings  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"


def write_corpus(folder: Path, count: int) -> None:
    texts = [
        json.loads(line)
        for name in ("emanual_s10", "stackfaq", "cmrc2018_trial")
        for line in (EVAL / name / "kb.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    for n in range(count):
        doc = texts[n % len(texts)]
        (folder / f"doc-{n:04d}.md").write_text(f"# {doc['title']} (document {n})\n\n{doc['text']}", encoding="utf-8")


def raw_chunks_per_s(texts: list[str]) -> float:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(bundled_embedding_model_dir(), device="cpu")
    model.encode(texts[:64], batch_size=64)  # warm-up
    started = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ragdesk-bench-") as tmp:
        corpus, data = Path(tmp) / "corpus", Path(tmp) / "data"
        corpus.mkdir()
        write_corpus(corpus, args.docs)
        settings = KnowledgeSettings(_env_file=None, data_dir=data)  # type: ignore[call-arg]
        files = expand_paths([corpus])
        splitter = build_splitter(settings.chunking)
        texts = [c.text for f in files for c in chunk_document(load_document(f.name, f.read_bytes()), splitter)]

        raw_before = raw_chunks_per_s(texts)
        knowledge = build_knowledge_service(settings, embeddings=build_embeddings(settings.embeddings))
        pipeline = IngestPipeline(knowledge, in_bulk_thread=False)  # as the raw baseline: normal priority
        knowledge.ensure_knowledge_base("bench")
        knowledge.embeddings.embed_documents(texts[:64])  # warm-up, as for raw
        started = time.perf_counter()
        report = pipeline.ingest_files(files, "bench")
        pipeline_s = time.perf_counter() - started
        started = time.perf_counter()
        again = pipeline.ingest_files(files, "bench")
        reingest_s = time.perf_counter() - started
        raw_after = raw_chunks_per_s(texts)

    raw = (raw_before + raw_after) / 2
    piped = len(texts) / pipeline_s
    print(f"chunks={len(texts)} ingested={report.summary()} reingest={again.summary()}")
    print(
        f"raw_chunks_per_s={raw:.1f} (before {raw_before:.1f}, after {raw_after:.1f}) pipeline_chunks_per_s={piped:.1f}"
    )
    print(f"pipeline_vs_raw={piped / raw:.2f} reingest_unchanged_s={reingest_s:.1f} docs={args.docs}")


if __name__ == "__main__":
    main()
