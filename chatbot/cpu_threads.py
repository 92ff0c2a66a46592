"""How torch's threads share the CPU's cores when the local model runs on the CPU.

torch computes on the CPU through OpenMP, and every thread that runs torch work keeps a team of OpenMP threads of
its own. Once the teams together hold more threads than there are cores, OpenMP stops letting idle team members
spin between operations, and each of the thousand small operations of a decode step waits for sleeping threads
to be woken: on 2 cores a decode step of the bundled model took 80 ms from the scheduler's thread instead of 35 ms
once the main thread had computed anything with 2 threads. So on the CPU the app gives the cores to the model's
scheduler thread alone: every other thread (start-up, embeddings, ingest) computes on one core.
"""

from __future__ import annotations

import ctypes
import logging
import os

logger = logging.getLogger(__name__)


def single_core_by_default() -> None:
    """This thread, and every thread that starts torch work later, computes on one core."""
    import torch

    torch.set_num_threads(1)


def use_cores_in_this_thread(cores: int | None = None) -> int:
    """Let the calling thread's torch work use `cores` cores (all of them by default); returns how many it got.

    Only this thread's OpenMP setting changes, so threads started later still default to one core."""
    import torch

    cores = cores or os.cpu_count() or 1
    torch.ones(1 << 16).sum()  # torch sets a thread's OpenMP threads on its first parallel operation: do that first
    omp_set_num_threads = _openmp_setter()
    if omp_set_num_threads is None:  # torch built without GNU OpenMP: its setting is process-wide
        torch.set_num_threads(cores)
    else:
        omp_set_num_threads(cores)
    return int(torch.get_num_threads())


def _openmp_setter() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        return ctypes.CDLL("libgomp.so.1").omp_set_num_threads
    except (OSError, AttributeError):
        return None
