"""Write leases: a document being ingested or removed names its writer (host and process) and a time until which
that writer is known to be alive, renewed while it writes. A start (reconcile) rolls back only what no live writer
holds, so a replica or a CLI ingest starting in the middle of another's upload leaves it alone. A writer on this
host is checked directly (after a crash its process is gone, so a restart rolls its rows back at once); one on
another host, by its lease running out."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

logger = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
RENEW_EVERY_S = 15.0


def this_writer() -> str:
    """host:pid:process start time (a pid the system reuses for another process is not taken for this one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_process_start(os.getpid())}"


def abandoned(owner: str | None, expires_at: datetime | None, now: datetime) -> bool:
    """Whether nobody is writing a document any more: its writer's process is gone, or its lease ran out."""
    if not owner or expires_at is None:  # written before leases existed
        return True
    host, pid, started = owner.rsplit(":", 2)
    if host == socket.gethostname():
        return not pid.isdigit() or _process_start(int(pid)) != started
    if expires_at.tzinfo is None:  # SQLite hands back the stored UTC time without its zone
        expires_at = expires_at.replace(tzinfo=now.tzinfo)
    return expires_at < now


@contextlib.contextmanager
def renewed(renew: Callable[[], None]) -> Iterator[None]:
    """Call renew() every RENEW_EVERY_S seconds on a background thread while the block runs."""
    stop = threading.Event()

    def keep_renewing() -> None:
        while not stop.wait(RENEW_EVERY_S):
            try:
                renew()
            except Exception:  # the database's own errors, whichever backend; the write itself will report them
                logger.warning("could not renew a write lease", exc_info=True)

    thread = threading.Thread(target=keep_renewing, name="ragdesk-write-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot, "" where there is no such process ("-" without /proc,
    where only whether the pid exists can be told)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return ""
    except (OSError, IndexError):
        return ""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return ""
    except PermissionError:
        pass
    return "-"
