"""`python -m ingest PATH... [--kb NAME]`: add files or folders to a knowledge base from a terminal."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError
from tqdm import tqdm

from ingest.cpu_manners import PRIORITIES, mind_cpu_manners
from ingest.pipeline import IngestPipeline, expand_paths
from knowledge.errors import RagdeskError
from knowledge.service import KnowledgeService, build_knowledge_service
from knowledge.settings import KnowledgeSettings, describe_invalid_settings

STORED = {"ingested", "replaced", "unchanged"}  # outcomes whose chunks are in the knowledge base


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Add documents to a RAGDesk knowledge base.",
        epilog="By default ingest computes on half the cores at the lowest CPU priority, so that a server on the "
        "same machine answers customers as fast as without it; --priority normal ingests at full speed.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders to ingest")
    parser.add_argument("--kb", help="knowledge base name, created when missing (default: RAGDESK_DEFAULT_KB)")
    parser.add_argument("--list", action="store_true", help="list the documents of the knowledge base")
    parser.add_argument("--delete", metavar="DOCUMENT", help="remove a document by name")
    parser.add_argument("--if-empty", action="store_true", help="only ingest when the knowledge base is empty")
    parser.add_argument("--knowledge-bases", action="store_true", help="list the knowledge bases")
    parser.add_argument("--rename-to", metavar="NEW_NAME", help="rename the knowledge base")
    parser.add_argument(
        "--delete-kb", action="store_true", help="delete the knowledge base with its documents (needs --yes)"
    )
    parser.add_argument("--yes", action="store_true", help="confirm --delete-kb")
    parser.add_argument(
        "--priority",
        choices=PRIORITIES,
        default="low",
        help="low (default): half the cores, idle threads sleep, the lowest CPU priority (SCHED_IDLE on Linux, "
        "else nice 10), leaving the CPU to customers' answers; normal: every core at normal priority",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """The CLI; `own_process` when this process is the CLI's own: then it sets its CPU manners (cpu_manners.py),
    which last for the process, before anything imports torch."""
    args = parse_args(argv)
    if own_process:
        mind_cpu_manners(args.priority)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = KnowledgeSettings()
    except ValidationError as e:
        print(f"error: invalid settings: {describe_invalid_settings(e)}", file=sys.stderr)
        return 2
    kb = args.kb or settings.default_kb
    try:
        return _run(args, build_knowledge_service(settings), kb)
    except RagdeskError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, knowledge: KnowledgeService, kb: str) -> int:
    if args.knowledge_bases or args.rename_to or args.delete_kb:
        return _manage_knowledge_base(args, knowledge, kb)
    if args.list:
        for doc in knowledge.list_documents(kb):
            pages = f"{doc.pages} pages" if doc.pages else "-"
            when = f"{doc.updated_at:%Y-%m-%d %H:%M}"
            print("\t".join([doc.name, doc.kind, doc.status, f"{doc.chunk_count} chunks", pages, when]))
        return 0
    if args.delete:
        if knowledge.remove_document(kb, args.delete):
            print(f"deleted {args.delete!r} from {kb!r}")
            return 0
        print(f"no document named {args.delete!r} in {kb!r}", file=sys.stderr)
        return 1
    if not args.paths:
        print("nothing to do: name files or folders, or use --list / --delete", file=sys.stderr)
        return 2
    kb = knowledge.ensure_knowledge_base(kb).name
    if args.if_empty and not knowledge.is_empty(kb):
        print(f"knowledge base {kb!r} already has documents; skipping")
        return 0
    return _ingest(IngestPipeline(knowledge, in_bulk_thread=False), expand_paths(args.paths), kb)


def _manage_knowledge_base(args: argparse.Namespace, knowledge: KnowledgeService, kb: str) -> int:
    if args.rename_to:
        renamed = knowledge.rename_knowledge_base(kb, args.rename_to)
        print(f"renamed {kb!r} to {renamed.name!r}")
    elif args.delete_kb:
        documents = len(knowledge.list_documents(kb))
        if not args.yes:
            print(f"this deletes {kb!r} with its {documents} documents; repeat with --yes", file=sys.stderr)
            return 2
        knowledge.delete_knowledge_base(kb)
        print(f"deleted knowledge base {kb!r}")
    else:
        for info in knowledge.knowledge_bases():
            print(f"{info.name}\t{info.documents} documents\t{info.chunks} chunks\t{info.created_at:%Y-%m-%d %H:%M}")
    return 0


def _ingest(pipeline: IngestPipeline, files: list[Path], kb: str) -> int:
    bar = tqdm(total=len(files), unit="file", desc=f"ingest into {kb}")
    report = pipeline.ingest_files(files, kb, on_file=lambda i, n, name: bar.update(1 if i else 0))
    bar.update(bar.total - bar.n)
    bar.close()
    for outcome in report.outcomes:
        chunks = f"  {outcome.chunks} chunks" if outcome.status in STORED else ""
        detail = f" ({outcome.detail})" if outcome.detail else ""
        print(f"{outcome.status:>9}  {outcome.name}{chunks}{detail}")
    print(report.summary())
    return 1 if report.failed else 0  # a skipped file (a type ingest does not read) is reported, not an error


if __name__ == "__main__":
    sys.exit(main(own_process=True))
