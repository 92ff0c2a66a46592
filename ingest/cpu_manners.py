"""How ingest shares the CPU with a server answering customers on the same machine.

Embedding is bulk work: nobody waits for one chunk. A customer waits for every token of an answer, and on the CPU
the server computes each of a decode step's ~1,000 small operations with an OpenMP team over all the cores
(chatbot/llm/runtime/cpu_threads.py). Left to its defaults, `python -m ingest` starts a team over all the cores
too, whose idle members spin between operations (GNU OpenMP spins up to 300,000 rounds before it sleeps), at the
same priority: each core is then shared by a server thread that waits for its team at every operation and a CLI
thread that spins or computes, and answers took 7-23x longer on 2 cores (docs/benchmarks.md). So, unless asked
for `normal`, the CLI computes on half the cores (one of two), lets idle OpenMP threads sleep at once, and runs
at the lowest CPU priority (lower_priority), so that it computes on what the server leaves. With no server
running it costs the cores left idle: 150 files took 1.6x as long on 2 cores.

An upload to the server embeds in the server's process, on one core beside the model's team; the ingest pipeline
runs it in a thread of its own at the lowest priority (run_as_bulk_work), which ends with the upload.

The OpenMP settings are read when the library loads: `mind_cpu_manners` must run before torch is imported.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

Priority = Literal["low", "normal"]
PRIORITIES: tuple[Priority, ...] = ("low", "normal")
T = TypeVar("T")
LOW_NICE = 10  # CFS weight 110 against the server's 1024: about a tenth of a core it wants
logger = logging.getLogger(__name__)


def mind_cpu_manners(priority: Priority) -> None:
    """For `low`: set this process's thread counts and OpenMP wait policy, then lower its priority (call it
    before any other thread starts: later threads take the priority on).

    Settings the user made in the environment (OMP_NUM_THREADS, OMP_WAIT_POLICY, ...) are kept."""
    if priority == "normal":
        return
    if "torch" in sys.modules:
        logger.warning("torch was imported before the CPU manners were set: its OpenMP keeps its defaults")
    for name, value in bulk_work_environment().items():
        os.environ.setdefault(name, value)
    lower_priority()


def bulk_work_environment() -> dict[str, str]:
    """Thread counts and wait policies for computing on half the cores without spinning."""
    threads = str(bulk_threads())
    return {
        "OMP_NUM_THREADS": threads,  # torch's intra-op threads (and any OpenMP library's)
        "MKL_NUM_THREADS": threads,
        "OMP_WAIT_POLICY": "PASSIVE",  # idle OpenMP threads sleep at once instead of spinning on a core
        "KMP_BLOCKTIME": "0",  # the same for Intel's OpenMP, where a library brings it
        "TOKENIZERS_PARALLELISM": "false",  # the Rust tokenizers' own pool would take every core
    }


def bulk_threads() -> int:
    """Half the cores this process may run on, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // 2)


def lower_priority(nice: int = LOW_NICE) -> str:
    """Put the calling thread, and the threads it starts later, at the CPU's lowest priority; says which it got.

    On Linux that is SCHED_IDLE: the thread runs only on a core that no normal thread wants, and a normal thread
    that wakes takes the core at once (an OpenMP team waiting at a barrier does not wait for a slice to end).
    Elsewhere it is a niceness of at least `nice`. Neither can be undone without privileges: call this in the
    CLI's own process, or in a thread that ends with the work (run_as_bulk_work)."""
    if hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return "SCHED_IDLE"
        except OSError as e:  # a sandbox may forbid it: fall back on niceness
            logger.debug("could not switch to SCHED_IDLE: %s", e)
    if not hasattr(os, "getpriority"):
        return "normal"
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if current < nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except OSError as e:  # ingest still runs, at the priority it has
            logger.warning("could not lower the CPU priority to nice %d: %s", nice, e)
    return f"nice {os.getpriority(os.PRIO_PROCESS, 0)}"


def run_as_bulk_work(work: Callable[..., T], *args: Any) -> T:
    """Run `work(*args)` in a thread of its own at the lowest CPU priority (lower_priority), with the caller's
    context variables; the thread ends with the work, so the priority goes with it. Its result or exception
    comes back here."""
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def run() -> None:
        lower_priority()
        try:
            outcome["value"] = context.run(work, *args)
        except BaseException as e:  # broad, and nothing is swallowed: the caller re-raises it below
            outcome["error"] = e

    thread = threading.Thread(target=run, name="ragdesk-bulk-work", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]
