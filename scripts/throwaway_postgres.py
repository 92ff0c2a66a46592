"""A throwaway PostgreSQL cluster in a temporary folder, for the tests (and a developer) that need a real server:
Debian's `postgresql` package's initdb and pg_ctl, on a free loopback port, trust authentication, gone when it
stops. No Docker, no system service. As root (CI), the server runs as the package's `postgres` user.

    python scripts/throwaway_postgres.py            # start one, print its SQLAlchemy URL, stop on Ctrl-C

In Python: `with throwaway_postgres() as url: ...`; `postgres_binaries()` is None where PostgreSQL is missing."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DATABASE = "ragdesk"
START_TIMEOUT_S = 60


def postgres_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, else the PATH's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a cluster, create the `ragdesk` database, yield its SQLAlchemy URL (psycopg 3), remove it all."""
    binaries = postgres_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="ragdesk-pg-"))
    data, port = folder / "data", free_port()
    as_user = _unprivileged(folder)
    try:
        _run([*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        log = folder / "server.log"
        _run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"])
        try:
            _wait_and_create(binaries, as_user, folder, port)
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}"
        finally:
            subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, check=False)  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _unprivileged(folder: Path) -> list[str]:
    """PostgreSQL refuses to run as root: then run it as the package's `postgres` user, owner of the folder."""
    if os.geteuid() != 0:
        return []
    shutil.chown(folder, user="postgres", group="postgres")
    return ["runuser", "-u", "postgres", "--"]


def _wait_and_create(binaries: Path, as_user: list[str], folder: Path, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    createdb = [*as_user, str(binaries / "createdb"), "-h", str(folder), "-p", str(port), "-U", "postgres", DATABASE]
    while True:
        done = subprocess.run(createdb, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the throwaway PostgreSQL did not start: {done.stderr.strip()}")
        time.sleep(0.2)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")


if __name__ == "__main__":
    with throwaway_postgres() as url:
        print(url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            sys.exit(0)
