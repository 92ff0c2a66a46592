"""How torch's threads share the CPU's cores when the local model runs on the CPU.

torch computes on the CPU through OpenMP, and every thread that runs torch work keeps a team of OpenMP threads of
its own. Once the teams together hold more threads than there are cores, OpenMP stops letting idle team members
spin between operations, and each of the thousand small operations of a decode step waits for sleeping threads
to be woken: on 2 cores a decode step of the bundled model took 80 ms from the scheduler's thread instead of 35 ms
once the main thread had computed anything with 2 threads. So on the CPU the app gives the cores to the model's
scheduler thread alone: every other thread (start-up, embeddings, ingest) computes on one core.

A thread counts towards those teams as long as it lives, even one that computed on one core: three idle request
threads that had each embedded a question halved the decode speed again. Embeddings are therefore computed in a
short-lived thread of their own (PassingThreadEmbeddings), which takes its OpenMP state with it when it ends.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from langchain_core.embeddings import Embeddings

T = TypeVar("T")
logger = logging.getLogger(__name__)


def single_core_by_default() -> None:
    """This thread, and every thread that starts torch work later, computes on one core."""
    import torch

    torch.set_num_threads(1)


def use_cores_in_this_thread(cores: int | None = None) -> int:
    """Let the calling thread's torch work use `cores` cores (all of them by default); returns how many it got.

    torch keeps a thread's OpenMP and MKL thread counts per thread, and a process-wide default that threads take
    on their first operation. Setting the count here also sets that default, so it is put back afterwards from a
    thread that then ends: threads started later still compute on one core."""
    import torch

    usable = usable_cores()
    if cores and cores > usable:
        logger.warning("%d CPU threads asked for, but this process may use %d cores: using %d", cores, usable, usable)
    cores = min(cores or usable, usable)
    default = torch.get_num_threads()  # this thread's first torch call: it takes the default now
    torch.set_num_threads(cores)
    if default != cores:
        in_passing_thread(torch.set_num_threads, default)
    return int(torch.get_num_threads())


def usable_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def in_passing_thread(work: Callable[..., T], *args: Any) -> T:
    """Run `work(*args)` in a thread that ends when it returns; its result or its exception comes back here."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work(*args)
        except BaseException as e:  # broad, and nothing is swallowed: the caller re-raises it below
            outcome["error"] = e

    thread = threading.Thread(target=run, name="ragdesk-cpu-work", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


class PassingThreadEmbeddings(Embeddings):
    """Embeddings computed each time in a thread of their own, so no request thread keeps torch state alive."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return in_passing_thread(self.inner.embed_documents, texts)

    def embed_query(self, text: str) -> list[float]:
        return in_passing_thread(self.inner.embed_query, text)
