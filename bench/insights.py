"""Insights: how well knowledge gaps group by meaning, and how fast the support metrics count a year of turns.

    python bench/insights.py --gaps [--distances 0.3,0.4,0.5] [--limit N] [--stackfaq-dir DIR]
    python bench/insights.py --metrics [--turns N] [--keep DIR]
    python bench/insights.py                      # neither flag: both parts, --gaps first

--gaps: the StackFAQ questions (queries.jsonl; the qids of one faq_N are paraphrases, one true group) are
embedded with the bundled embedding model and grouped with the product's own group_by_meaning at each
distance. purity = sum over predicted clusters of their most common true group's size / N; inverse_purity =
sum over true groups of their largest share in one predicted cluster / N; split_groups = true groups spread
over more than one cluster; mixed_clusters = clusters holding more than one true group. The part's last line
is exactly, at the product's default distance (InsightsSettings().topic_distance):
`distance=0.45 purity=0.xx inverse_purity=0.xx clusters=N true_groups=N split_groups=N questions=N embed_s=x.x
cluster_s=x.x`.

--metrics: a throwaway SQLite file with the product's schema is filled with N turns (default 1,000,000; about 3
per conversation over the last 365 days, 3 knowledge bases, a human and an ai message per turn, an answer_log
row per answer, a conversation_outcomes row per conversation, feedback rows for the rated ones), then
SupportMetrics.report is timed (one warm-up, 5 runs, median and max) for every knowledge base over the year, the
largest one over the last 30 days and over the year, with report.csv() and the Insights tab's plot frames;
SQLite's query plans are printed. Then the knowledge-gap topics over the newest unanswered questions are timed on
a first visit (every question embedded and kept) and the next. The part's last line is exactly `turns=N
report_all_year_s=x.xxx report_kb_30d_s=x.xxx report_kb_year_s=x.xxx csv_s=x.xxx plots_s=x.xxx
gaps_first_s=x.xxx gaps_next_s=x.xxx`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sqlalchemy import Engine, insert
from sqlalchemy.orm import sessionmaker

import chatbot.insights.faq  # noqa: F401  (registers its tables on the shared Base)
from chatbot.conversation.answer_log import AnswerLogRow, ConversationOutcomeRow, ttft_bucket
from chatbot.conversation.history import ConversationRow, FeedbackRow, MessageRow
from chatbot.insights import support_metrics
from chatbot.insights.knowledge_gaps import KnowledgeGaps, group_by_meaning
from chatbot.insights.question_vectors import QuestionVectors, unit_rows
from chatbot.insights.support_metrics import MetricsQuery, SupportMetrics
from chatbot.settings import InsightsSettings
from chatbot.ui.metrics_panel import plot_frames
from knowledge.database import create_tables, open_database
from knowledge.embeddings import build_embeddings
from knowledge.registry import KnowledgeBaseRow
from knowledge.settings import EmbeddingSettings

ROOT = Path(__file__).resolve().parent.parent
STACKFAQ = ROOT.parent / "shared" / "eval" / "stackfaq"
KBS = [("billing", 0.5), ("shipping", 0.3), ("returns", 0.2)]  # name, share of conversations
BATCH_TURNS = 50_000
RUNS = 5
TOPICS = ["invoice", "refund", "password", "delivery date", "parcel", "discount code", "account", "address"]
VERBS = ["change", "find", "cancel", "update", "get", "track"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gaps", action="store_true", help="knowledge-gap clustering quality on StackFAQ")
    parser.add_argument("--metrics", action="store_true", help="support metrics over a year of stored turns")
    parser.add_argument("--stackfaq-dir", type=Path, default=STACKFAQ)
    parser.add_argument("--distances", default="", help="comma-separated cut distances (default: the product's)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N true groups (0: all)")
    parser.add_argument("--turns", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="build (and keep) the database in this folder")
    args = parser.parse_args()
    both = not (args.gaps or args.metrics)
    if args.gaps or both:
        gaps(args)
    if args.metrics or both:
        metrics(args)


# --- knowledge gaps -------------------------------------------------------------------------------------------


def read_groups(folder: Path, limit: int) -> tuple[list[str], list[str]]:
    """The questions (whitespace collapsed, as the product embeds them) and their true group, faq_N."""
    texts, labels = [], []
    with (folder / "queries.jsonl").open(encoding="utf-8") as f:
        for line in filter(str.strip, f):
            row = json.loads(line)
            group = row["qid"].rsplit("_r", 1)[0]
            if limit and group not in labels and len(set(labels)) >= limit:
                break
            texts.append(" ".join(row["question"].split()))
            labels.append(group)
    return texts, labels


def cluster_scores(truth: list[str], predicted: list[int]) -> dict[str, Any]:
    n = len(truth)
    by_cluster: dict[int, Counter[str]] = defaultdict(Counter)
    by_group: dict[str, Counter[int]] = defaultdict(Counter)
    for group, cluster in zip(truth, predicted, strict=True):
        by_cluster[cluster][group] += 1
        by_group[group][cluster] += 1
    return {
        "purity": sum(c.most_common(1)[0][1] for c in by_cluster.values()) / n,
        "inverse_purity": sum(c.most_common(1)[0][1] for c in by_group.values()) / n,
        "clusters": len(by_cluster),
        "true_groups": len(by_group),
        "split_groups": sum(len(c) > 1 for c in by_group.values()),
        "mixed_clusters": sum(len(c) > 1 for c in by_cluster.values()),
        "questions": n,
    }


def scores_line(distance: float, scores: dict[str, Any], extra: str = "") -> str:
    shown = {k: f"{v:.2f}" if isinstance(v, float) else v for k, v in scores.items()}
    return " ".join([f"distance={distance:g}", *(f"{k}={v}" for k, v in shown.items()), extra]).strip()


def gaps(args: argparse.Namespace) -> None:
    default = InsightsSettings().topic_distance
    distances = sorted({float(d) for d in args.distances.split(",") if d.strip()} | {default})
    texts, truth = read_groups(args.stackfaq_dir, args.limit)
    embeddings = build_embeddings(EmbeddingSettings())
    started = time.perf_counter()
    vectors = unit_rows(embeddings.embed_documents(texts))
    embed_s = time.perf_counter() - started
    print(f"gaps: {len(texts)} questions, {len(set(truth))} true groups, embed_s={embed_s:.1f} dim={vectors.shape[1]}")
    results = {}
    for distance in distances:
        started = time.perf_counter()
        predicted = group_by_meaning(vectors, distance)
        cluster_s = time.perf_counter() - started
        results[distance] = (cluster_scores(truth, predicted), cluster_s)
        print(scores_line(distance, results[distance][0], f"cluster_s={cluster_s:.2f}"))
    scores, cluster_s = results[default]
    scores.pop("mixed_clusters")
    print(scores_line(default, scores, f"embed_s={embed_s:.1f} cluster_s={cluster_s:.1f}"))


# --- support metrics ------------------------------------------------------------------------------------------


def conversation_rows(rng: random.Random, now: datetime, turns: int, message_id: int) -> dict[str, list[dict]]:
    """A conversation of `turns` turns: its row, a human and an ai message per turn, answer log and feedback."""
    cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    kb = rng.choices([k for k, _ in KBS], [w for _, w in KBS])[0]
    at = started = now - timedelta(seconds=rng.uniform(turns * 120, 365 * 86400))
    rows: dict[str, list[dict]] = {"messages": [], "answer_log": [], "feedback": []}
    question = f"How do I {rng.choice(VERBS)} my {rng.choice(TOPICS)}?"
    rows["conversations"] = [dict(id=cid, owner=f"user{rng.randrange(20_000)}", kb=kb, title=question[:60])]
    for _ in range(turns):
        question = f"How do I {rng.choice(VERBS)} my {rng.choice(TOPICS)}?"
        at += timedelta(seconds=rng.uniform(10, 110))
        answer = answer_log_row(rng, message_id + 1, cid, kb, at, question)
        extra = {"answered": not answer["handed_off"]}
        rows["messages"] += [
            dict(id=message_id, conversation_id=cid, role="human", content=question, extra={}, created_at=at),
            dict(id=message_id + 1, conversation_id=cid, role="ai", content="See our help page.", extra=extra,
                 created_at=at),
        ]  # fmt: skip
        rows["answer_log"].append(answer)
        if answer["rating"]:
            rows["feedback"].append(dict(message_id=message_id + 1, rating=answer["rating"], reason="", created_at=at))
        message_id += 2
    rows["conversations"][0].update(created_at=started, updated_at=at)
    logged = rows["answer_log"]
    rows["conversation_outcomes"] = [
        dict(conversation_id=cid, kb=kb, first_day=logged[0]["day"], handed_off=any(a["handed_off"] for a in logged),
             disliked=any(a["rating"] == "down" for a in logged))
    ]  # fmt: skip
    return rows


def answer_log_row(rng: random.Random, message_id: int, cid: str, kb: str, at: datetime, question: str) -> dict:
    """~15% handed off (a fifth of them refused by the check, ~3%), ~5% trimmed, ~4% thumbs up and ~2% down."""
    handed_off = rng.random() < 0.15
    refused = handed_off and rng.random() < 0.2
    generated = refused or not handed_off  # a handoff on relevance generates nothing
    ttft = rng.lognormvariate(math.log(0.8), 0.5) if generated else None
    r = rng.random()
    rating = "up" if r < 0.04 else "down" if r < 0.06 else None
    return dict(
        message_id=message_id, conversation_id=cid, kb=kb, day=at.date(), created_at=at, question=question,
        handed_off=handed_off, refused_by_check=refused, trimmed=not handed_off and rng.random() < 0.059,
        first_token_bucket=ttft_bucket(ttft), rating=rating, language="en",
    )  # fmt: skip


def batches(turns: int, now: datetime, seed: int = 0) -> Iterator[dict[str, list[dict]]]:
    """Conversations of 1-5 turns (3 on average) until `turns`, in batches of about BATCH_TURNS turns."""
    rng = random.Random(seed)
    done, message_id = 0, 1
    batch: dict[str, list[dict]] = defaultdict(list)
    while done < turns:
        n = min(rng.randint(1, 5), turns - done)
        for table, rows in conversation_rows(rng, now, n, message_id).items():
            batch[table] += rows
        done, message_id = done + n, message_id + 2 * n
        if len(batch["answer_log"]) >= BATCH_TURNS or done >= turns:
            yield batch
            batch = defaultdict(list)


def build_database(engine: Engine, turns: int, now: datetime) -> Counter[str]:
    create_tables(engine)
    tables = {
        "conversations": ConversationRow.__table__,
        "messages": MessageRow.__table__,
        "answer_log": AnswerLogRow.__table__,
        "conversation_outcomes": ConversationOutcomeRow.__table__,
        "feedback": FeedbackRow.__table__,
    }
    counts: Counter[str] = Counter()
    with engine.begin() as conn:
        conn.execute(insert(KnowledgeBaseRow), [dict(name=kb, collection=f"kb_{kb}", status="ready") for kb, _ in KBS])
    for batch in batches(turns, now):
        with engine.begin() as conn:
            for name, table in tables.items():
                if batch[name]:
                    conn.execute(insert(table), batch[name])
                    counts[name] += len(batch[name])
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return counts


def timed(call: Callable[[], Any], runs: int = RUNS) -> tuple[float, float, Any]:
    """Median and max seconds of `runs` calls after one warm-up, and the last result."""
    result, seconds = call(), []
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), max(seconds), result


def query_plans(engine: Engine, query: MetricsQuery) -> None:
    statements = {
        "daily_counts": support_metrics._daily_counts(support_metrics._filters(query)),
        "daily_conversations": support_metrics._daily_conversations(query),
    }
    with engine.connect() as conn:
        for name, statement in statements.items():
            sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
            print(f"  plan {name} kb={query.kb}: " + " | ".join(row[-1] for row in plan))


def time_reports(engine: Engine, today: date) -> dict[str, float]:
    metrics = SupportMetrics(sessionmaker(engine))
    kb, year, month = KBS[0][0], today - timedelta(days=364), today - timedelta(days=29)
    queries = {
        "report_all_year_s": MetricsQuery(None, year, today),
        "report_kb_30d_s": MetricsQuery(kb, month, today),
        "report_kb_year_s": MetricsQuery(kb, year, today),
    }
    figures, reports = {}, {}
    for name, query in queries.items():
        median, worst, reports[name] = timed(lambda q=query: metrics.report(q))
        total = reports[name].total
        print(f"{name[:-2]}: kb={query.kb} days={len(reports[name].days)} questions={total.questions} "
              f"conversations={total.conversations} median_s={median:.3f} max_s={worst:.3f}")  # fmt: skip
        figures[name] = median
    report = reports["report_all_year_s"]
    median, worst, text = timed(report.csv)
    print(f"csv: {len(text.splitlines())} lines, {len(text)} chars, median_s={median:.4f} max_s={worst:.4f}")
    figures["csv_s"] = median
    median, worst, frames = timed(lambda: plot_frames(report))
    print(
        f"plot frames (the tab's four plots): {[len(f) for f in frames]} rows, median_s={median:.4f} max_s={worst:.4f}"
    )
    figures["plots_s"] = median
    query_plans(engine, queries["report_all_year_s"])
    query_plans(engine, queries["report_kb_year_s"])
    return figures


def time_gaps(engine: Engine) -> dict[str, float]:
    """The knowledge-gap topics over the newest unanswered questions: first visit (embeds them all) and the next."""
    embeddings = build_embeddings(EmbeddingSettings())
    sessions = sessionmaker(engine)
    settings = InsightsSettings()
    gaps = KnowledgeGaps(sessions, QuestionVectors(sessions, embeddings, "bench"), settings)
    figures = {}
    for visit in ("gaps_first_s", "gaps_next_s"):
        started = time.perf_counter()
        topics = gaps.topics()
        figures[visit] = time.perf_counter() - started
        asked = sum(t.size for t in topics)
        print(f"{visit[:-2]}: {len(topics)} topics from {asked} questions (max {settings.max_gap_questions}), "
              f"{figures[visit]:.2f} s")  # fmt: skip
    return figures


def metrics(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ragdesk-insights-") as tmp:
        folder = args.keep or Path(tmp)
        path = folder / "insights_bench.db"
        if path.exists():
            sys.exit(f"{path} exists; remove it or --keep another folder")
        engine = open_database(f"sqlite:///{path}")
        now = datetime.now(UTC)
        started = time.perf_counter()
        counts = build_database(engine, args.turns, now)
        build_s = time.perf_counter() - started
        rows = " ".join(f"{k}={v}" for k, v in counts.items())
        print(f"metrics: built {path} in {build_s:.1f} s ({rows}), {path.stat().st_size / 2**20:.0f} MiB")
        figures = time_reports(engine, now.date())
        figures.update(time_gaps(engine))
        engine.dispose()
    print(f"turns={args.turns} " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
