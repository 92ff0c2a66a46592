"""A customer's answer while an admin ingests: the same questions alone, during a CLI ingest, during an upload.

    python bench/contention.py [--documents 2000] [--cli-priority default|low|normal] [--max-new-tokens 128]

Starts the real app (`python app.py` on a free port, a temporary data directory, the bundled model on the CPU,
`RAGDESK_GROUNDING__POLICY=off` so that answers are generated), then times three questions through
`POST /api/v1/chat`: alone (twice before and once after the rest; each answer's median), during
`python -m ingest` of a generated corpus of DOCUMENTS manual-like files into another knowledge base, and during
an upload of the same corpus through `POST /api/v1/knowledge-bases/{kb}/documents` (multipart, in batches).
The questions are asked once the ingest is embedding; it is stopped when they have been answered (the corpus
need not be ingested to the end). A ratio is an answer's time during the ingest over its time alone; the last
line gives the largest of them: exactly `cli_ratio=x.xx upload_ratio=x.xx`. `--cli-priority default` passes
no flag (the CLI's default); `normal` is how the CLI ran before it had manners.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.browser import free_port, wait_until_healthy  # noqa: E402

ADMIN_KEY = "contention-bench-admin"  # the upload route wants an admin; the key may chat too
QUESTIONS = [
    "How long do I have to return an item?",
    "How long does a refund take?",
    "What should I do if my item arrived damaged?",
]
PRODUCTS = ["Aurora kettle", "Boreal toaster", "Cirrus blender", "Dune coffee grinder", "Ember rice cooker"]
PARTS = ["lid", "base", "filter", "power cord", "water tank", "blade assembly", "control dial", "drip tray"]
ACTIONS = ["descale", "clean", "replace", "inspect", "dry", "reset", "tighten", "calibrate"]
FAULTS = ["does not switch on", "makes a clicking noise", "shows error E{n}", "leaks at the base", "smells of burning"]


def write_corpus(folder: Path, count: int) -> None:
    """COUNT manual pages: a product, numbered sections of safety, care and troubleshooting advice."""
    rng = random.Random(7)
    for n in range(count):
        product = rng.choice(PRODUCTS)
        lines = [f"# {product}: manual page {n + 1}", ""]
        for section in ("Safety", "Care and cleaning", "Troubleshooting"):
            lines += [f"## {section}", ""]
            for _ in range(rng.randint(3, 6)):
                part, action = rng.choice(PARTS), rng.choice(ACTIONS)
                fault = rng.choice(FAULTS).format(n=rng.randint(1, 9))
                lines.append(
                    f"If the {product.lower()} {fault}, unplug it and let it cool for {rng.randint(5, 30)} minutes. "
                    f"{action.capitalize()} the {part} every {rng.randint(2, 12)} weeks with a soft cloth; "
                    f"never immerse the {part} in water. Model {rng.randint(100, 999)}-{n} uses part "
                    f"number {rng.randint(10000, 99999)}."
                )
            lines.append("")
        suffix = ".md" if n % 2 else ".txt"
        (folder / f"manual-{n:05d}{suffix}").write_text("\n".join(lines), encoding="utf-8")


@contextlib.contextmanager
def running_app(tmp: Path, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    log = tmp / "app.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env={**env, "RAGDESK_PORT": str(port)}, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log, attempts=1200)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def ask(client: httpx.Client, question: str) -> tuple[float, int]:
    """Seconds for one answer, and its length in characters (the same answer each time: greedy decoding)."""
    started = time.perf_counter()
    response = client.post("/api/v1/chat", json={"question": question})
    response.raise_for_status()
    return time.perf_counter() - started, len(response.json()["answer"])


def ask_all(client: httpx.Client, label: str, still_running: Callable[[], bool] | None = None) -> list[float]:
    times = []
    for question in QUESTIONS:
        seconds, chars = ask(client, question)
        busy = "" if still_running is None else ("  (ingest running)" if still_running() else "  (INGEST HAD ENDED)")
        print(f"  {label:<6} {seconds:6.2f} s  {chars:4d} chars  {question}{busy}", flush=True)
        times.append(seconds)
    return times


def during_cli(
    client: httpx.Client, env: dict[str, str], corpus: Path, tmp: Path, args: argparse.Namespace
) -> list[float]:
    command = [sys.executable, "-m", "ingest", str(corpus), "--kb", "cli-bench"]
    if args.cli_priority != "default":
        command += ["--priority", args.cli_priority]
    log = tmp / "cli.log"
    with log.open("w") as out:
        cli = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        wait_for_progress(log, cli)
        time.sleep(args.settle)
        return ask_all(client, "cli", lambda: cli.poll() is None)
    finally:
        cli.terminate()
        cli.wait(timeout=60)


def wait_for_progress(log: Path, cli: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Until the CLI's progress bar counts files: it has loaded its model and is reading and embedding."""
    while not re.search(r"\b[1-9]\d*/\d+ ", log.read_text(errors="replace")):
        if cli.poll() is not None:
            raise SystemExit(f"the CLI ended early:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def during_upload(client: httpx.Client, corpus: Path, args: argparse.Namespace) -> list[float]:
    client.post("/api/v1/knowledge-bases", json={"name": "upload-bench"}).raise_for_status()
    files = sorted(corpus.iterdir())
    stop, started = threading.Event(), threading.Event()

    def upload() -> None:
        with httpx.Client(base_url=str(client.base_url), headers=client.headers, timeout=None) as uploader:
            for first in range(0, len(files), args.batch):
                if stop.is_set():
                    return
                batch = [("files", (f.name, f.read_bytes(), "text/plain")) for f in files[first : first + args.batch]]
                started.set()
                uploader.post("/api/v1/knowledge-bases/upload-bench/documents", files=batch).raise_for_status()

    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    started.wait()
    time.sleep(args.settle)
    try:
        return ask_all(client, "upload", thread.is_alive)
    finally:
        stop.set()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=2000, help="files in the generated corpus")
    parser.add_argument("--cli-priority", choices=["default", "low", "normal"], default="default")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="longest answer (RAGDESK_LLM__MAX_NEW_TOKENS)")
    parser.add_argument("--batch", type=int, default=25, help="files per upload request")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between the ingest's start and a question")
    parser.add_argument("--skip-cli", action="store_true", help="no CLI ingest (its times are the alone ones)")
    parser.add_argument("--skip-upload", action="store_true", help="no upload (its times are the alone ones)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ragdesk-contention-") as folder:
        tmp = Path(folder)
        corpus = tmp / "corpus"
        corpus.mkdir()
        write_corpus(corpus, args.documents)
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "RAGDESK_DATA_DIR": str(tmp / "data"),
            "RAGDESK_GROUNDING__POLICY": "off",
            "RAGDESK_LLM__MAX_NEW_TOKENS": str(args.max_new_tokens),
            "RAGDESK_API_KEYS": json.dumps([{"key": ADMIN_KEY, "scope": "admin"}]),
        }
        with running_app(tmp, env) as url:
            report(*measure(url, env, corpus, tmp, args))


def measure(
    url: str, env: dict[str, str], corpus: Path, tmp: Path, args: argparse.Namespace
) -> tuple[list[float], list[float], list[float]]:
    """Alone twice, during the CLI, during the upload, alone again: each answer's median alone, and the others."""
    with httpx.Client(base_url=url, headers={"X-API-Key": ADMIN_KEY}, timeout=None) as client:
        ask(client, QUESTIONS[0])  # warm-up: the first answer pays for start-up work
        alone = [ask_all(client, "alone"), ask_all(client, "alone")]
        cli = during_cli(client, env, corpus, tmp, args) if not args.skip_cli else alone[0]
        upload = during_upload(client, corpus, args) if not args.skip_upload else alone[0]
        alone.append(ask_all(client, "alone"))  # other work on a shared machine shows here too
    return [statistics.median(times) for times in zip(*alone, strict=True)], cli, upload


def report(alone: list[float], cli: list[float], upload: list[float]) -> None:
    print(f"\n{'question':<48} {'alone s':>8} {'cli s':>8} {'upload s':>9} {'cli x':>6} {'upload x':>9}")
    for question, a, c, u in zip(QUESTIONS, alone, cli, upload, strict=True):
        print(f"{question:<48} {a:8.2f} {c:8.2f} {u:9.2f} {c / a:6.2f} {u / a:9.2f}")
    cli_ratio = max(c / a for a, c in zip(alone, cli, strict=True))
    upload_ratio = max(u / a for a, u in zip(alone, upload, strict=True))
    print(f"cli_ratio={cli_ratio:.2f} upload_ratio={upload_ratio:.2f}")


if __name__ == "__main__":
    main()
