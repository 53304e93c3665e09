"""What the benchmarks share: a real `ingest worker` started against their own Redis,
and CPU readings of processes from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from celery import Celery

REPO = Path(__file__).resolve().parents[1]


def start_worker(
    redis_url: str, folder: Path, *, concurrency: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """An `ingest worker` with a clean environment (none of the caller's INGEST_/LOG_
    settings), logging to ``folder/worker.log``; returns once it answers a ping."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "LOG_"))}
    clean.update(REDIS_URL=redis_url, LOG_FORMAT="json", INGEST_DATA_DIR=str(folder / "var"))
    clean.update(env or {})
    log_file = folder / "worker.log"
    with log_file.open("wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker",
                "worker",
                "--concurrency",
                str(concurrency),
                "--name",
                f"bench-{os.getpid()}@%h",
            ],
            env=clean,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    app = Celery(broker=redis_url)
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5):
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise SystemExit("worker did not start:\n" + log_file.read_text())
    app.close()
    return worker


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU the processes used so far (0 for one that is gone)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def worker_pids(main_pid: int) -> list[int]:
    """A prefork worker and its pool processes."""
    children = Path(f"/proc/{main_pid}/task/{main_pid}/children")
    try:
        return [main_pid, *map(int, children.read_text().split())]
    except OSError:
        return [main_pid]
