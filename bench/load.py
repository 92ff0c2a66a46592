"""Many customers at once against the real app on its CPU default (bundled model, default grounding policy).

    python bench/load.py [--customers 50] [--seed 7] [--answers-at-once N] [--max-wait-s S]

Starts `python app.py` on a free port with a fresh data folder (the bundled samples are ingested on start). Each
simulated customer starts within the first 20 s, has a conversation of 2 or 3 questions (from the answer-trap
questions about the samples) with 2 to 6 s of thinking between them, over the streaming REST API. While they
chat, an admin uploads ten documents through the API. Per customer: time to the first answer text, and total
time per question; a question ends in an answer, a busy reply (429 at once, or a "busy" event after waiting in
line) or an error. Afterwards every conversation is read back: an answered question missing from the stored
history is a lost turn, and so is a question refused for load that was stored as answered.
The last line is exactly
`customers=N errors=N lost_turns=N busy=N p95_first_token_s=x.x max_total_s=x.x`.
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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.browser import free_port, wait_until_healthy  # noqa: E402

QUESTIONS = ROOT / "bench" / "answer_traps" / "samples.jsonl"
KEY = "bench-load-admin-key-0123456789"  # an admin key: uploads need one (and then every call does)
HEADERS = {"Authorization": f"Bearer {KEY}"}
SAMPLES = ROOT / "knowledge" / "samples"


@dataclass
class Asked:
    question: str
    outcome: str = "error"  # answer | busy | error
    first_token_s: float | None = None
    total_s: float = 0.0
    detail: str = ""


@dataclass
class Customer:
    number: int
    questions: list[str]
    start_s: float
    think_s: list[float]
    conversation_id: str | None = None
    asked: list[Asked] = field(default_factory=list)

    @property
    def user(self) -> str:
        return f"load-customer-{self.number}"


def ask(client: httpx.Client, customer: Customer, question: str) -> Asked:
    asked, started = Asked(question), time.monotonic()
    body = {"question": question, "user": customer.user, "stream": True}
    if customer.conversation_id:
        body["conversation_id"] = customer.conversation_id
    try:
        with client.stream("POST", "/api/v1/chat", json=body, timeout=180) as response:
            if response.status_code == 429:
                asked.outcome = "busy"
            elif response.status_code != 200:
                asked.detail = f"HTTP {response.status_code}: {response.read()[:200]!r}"
            else:
                read_events(response, customer, asked, started)
    except httpx.HTTPError as e:
        asked.detail = f"{type(e).__name__}: {e}"
    asked.total_s = time.monotonic() - started
    return asked


def read_events(response: httpx.Response, customer: Customer, asked: Asked, started: float) -> None:
    name = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
            continue
        if not line.startswith("data: "):
            continue
        data = json.loads(line.removeprefix("data: "))
        if name == "sources":
            customer.conversation_id = data["conversation_id"]
        elif name == "delta" and asked.first_token_s is None:
            asked.first_token_s = time.monotonic() - started
        elif name == "done":
            asked.outcome = "answer"
        elif name == "error":
            asked.outcome = "busy" if data.get("error") in ("BusyError", "ServerStoppingError") else "error"
            asked.detail = data.get("message", "")


def chat(url: str, customer: Customer, t0: float) -> None:
    time.sleep(max(0.0, customer.start_s - (time.monotonic() - t0)))
    with httpx.Client(base_url=url, headers=HEADERS) as client:
        for question, think in zip(customer.questions, customer.think_s, strict=True):
            customer.asked.append(ask(client, customer, question))
            time.sleep(think)


def upload(url: str, folder: Path, delay_s: float, report: dict[str, Any]) -> None:
    time.sleep(delay_s)
    files = sorted(folder.iterdir())
    started = time.monotonic()
    with httpx.Client(base_url=url, headers=HEADERS, timeout=600) as client:
        parts = [("files", (f.name, f.read_bytes())) for f in files]
        response = client.post("/api/v1/knowledge-bases/default/documents", files=parts)
    report.update(status=response.status_code, files=len(files), seconds=round(time.monotonic() - started, 1))


def lost_turns(url: str, customers: list[Customer]) -> int:
    """Answered questions missing from the stored history, plus busy ones stored anyway."""
    lost = 0
    with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as client:
        for customer in customers:
            answered = [a.question for a in customer.asked if a.outcome == "answer"]
            if customer.conversation_id is None:
                lost += len(answered)
                continue
            stored = client.get(f"/api/v1/conversations/{customer.conversation_id}", params={"user": customer.user})
            questions = [t["question"] for t in stored.json()["turns"]] if stored.status_code == 200 else []
            lost += abs(len(questions) - len(answered)) + sum(1 for q in answered if q not in questions)
    return lost


def make_customers(count: int, seed: int) -> list[Customer]:
    rng = random.Random(seed)
    pool = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
    return [
        Customer(n, rng.sample(pool, k), rng.uniform(0, 20), [rng.uniform(2, 6) for _ in range(k)])
        for n in range(count)
        for k in [rng.choice((2, 3))]
    ]


def write_uploads(folder: Path, count: int = 10) -> Path:
    texts = [json.loads(line)["text"] for line in (ROOT.parent / "shared/eval/emanual_s10/kb.jsonl").open()][:count]
    for n, text in enumerate(texts):
        (folder / f"manual-section-{n}.md").write_text(f"# Manual section {n}\n\n{text}\n", encoding="utf-8")
    return folder


def start_app(folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port, log = free_port(), folder / "app.log"
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAGDESK_DATA_DIR": str(folder / "data")}
    full_env |= {"RAGDESK_PORT": str(port), "RAGDESK_API_KEYS": json.dumps([{"key": KEY, "scope": "admin"}]), **env}
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=full_env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, process, log)
    return process, url


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(customers: list[Customer], lost: int, uploaded: dict[str, Any]) -> None:
    asked = [a for c in customers for a in c.asked]
    first = [a.first_token_s for a in asked if a.first_token_s is not None]
    totals = [a.total_s for a in asked]
    errors = [a for a in asked if a.outcome == "error"]
    busy = sum(1 for a in asked if a.outcome == "busy")
    for c in customers:
        line = " ".join(f"{a.outcome}:{a.first_token_s or 0:.1f}/{a.total_s:.1f}s" for a in c.asked)
        print(f"customer={c.number:02d} {line}")
    for a in errors[:5]:
        print(f"error: {a.question[:60]!r}: {a.detail[:200]}")
    print(f"upload: {uploaded}")
    print(f"questions={len(asked)} answered={sum(1 for a in asked if a.outcome == 'answer')} busy={busy}")
    for name, values in (("first_token_s", first), ("total_s", totals)):
        if values:
            print(f"{name}: p50={statistics.median(values):.1f} p95={percentile(values, 95):.1f} max={max(values):.1f}")
    print(
        f"customers={len(customers)} errors={len(errors)} lost_turns={lost} busy={busy} "
        f"p95_first_token_s={percentile(first, 95):.1f} max_total_s={max(totals, default=0):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--answers-at-once", type=int, default=None, help="RAGDESK_QUEUE__ANSWERS_AT_ONCE")
    parser.add_argument("--max-wait-s", type=float, default=None, help="RAGDESK_QUEUE__MAX_WAIT_S")
    args = parser.parse_args()
    env = {}
    if args.answers_at_once:
        env["RAGDESK_QUEUE__ANSWERS_AT_ONCE"] = str(args.answers_at_once)
    if args.max_wait_s:
        env["RAGDESK_QUEUE__MAX_WAIT_S"] = str(args.max_wait_s)
    with tempfile.TemporaryDirectory(prefix="ragdesk-load-") as tmp:
        folder = Path(tmp)
        process, url = start_app(folder, env)
        try:
            customers, uploaded = make_customers(args.customers, args.seed), {}
            uploads = write_uploads(Path(tempfile.mkdtemp(dir=folder)))
            t0 = time.monotonic()
            threads = [threading.Thread(target=chat, args=(url, c, t0)) for c in customers]
            threads.append(threading.Thread(target=upload, args=(url, uploads, 5.0, uploaded)))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            print(f"run took {time.monotonic() - t0:.0f} s")
            report(customers, lost_turns(url, customers), uploaded)
        finally:
            process.terminate()
            process.wait(60)


if __name__ == "__main__":
    main()
