"""Helpers shared by the tests: paths, a clean environment, running `ingest`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
SEED = SEEDS / "000_8a58323627501f48.txt"

# Variables of ours that must not leak from the developer's shell into the tests.
_OWN_PREFIXES = ("INGEST_", "REDIS_URL", "LOG_FORMAT", "LOG_LEVEL", "FLOWER_")


# The tests' feeds and pages are served from 127.0.0.1: allow it, and lift the per-host
# limits that would otherwise space requests to one host a second apart.
TEST_FETCH_ENV = {
    "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
    "INGEST_HOST_MAX_CONCURRENCY": "64",
    "INGEST_HOST_MAX_PER_MINUTE": "600000",
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.update({"LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1", **TEST_FETCH_ENV})
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 120, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run ``ingest ARGS`` as a user would (a subprocess)."""
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(
    predicate: Callable[[], T], timeout: float, interval: float = 0.1, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop_process(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class WorkerProcess:
    """A real `ingest worker` subprocess and its log."""

    process: subprocess.Popen[bytes]
    log_file: Path

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)
        if self.own_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # pool processes left behind

    own_group: bool = False


def start_worker(
    env: dict[str, str],
    log_file: Path,
    *,
    name: str,
    concurrency: int = 1,
    pool: str = "prefork",
    own_group: bool = False,
    wait: bool = True,
) -> WorkerProcess:
    """Start `ingest worker` and (``wait``) wait until it is ready. ``own_group`` puts it
    (and its pool) in a process group of its own, so a test can kill it as a machine
    dies."""
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker",
                "worker",
                "--concurrency",
                str(concurrency),
                "--pool",
                pool,
                "--name",
                f"{name}-{os.getpid()}@%h",
            ],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,
        )
    worker = WorkerProcess(process, log_file, own_group)
    if not wait:
        return worker
    try:
        wait_for(
            lambda: "ready." in worker.log_text() or process.poll() is not None,
            timeout=60,
            what=f"worker {name} to be ready",
        )
    except AssertionError:
        worker.stop()
        raise
    if process.poll() is not None:
        raise AssertionError(f"worker {name} exited at start:\n{worker.log_text()[-3000:]}")
    return worker


@contextlib.contextmanager
def session_database(port: int, db: int) -> Iterator[redis.Redis]:
    """Database ``db`` of the session's Redis (on ``port``), for a test with a worker of
    its own: empty before and after (the session started that server; database 0 is the
    session worker's)."""
    client = redis.Redis(host="127.0.0.1", port=port, db=db)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def jsonl_article_ids(path: Path) -> list[str]:
    """The article ids of a JSONL sink file, in order; a line a kill cut short (not
    valid JSON) is skipped, as readers are told to."""
    ids = []
    for raw in path.read_text().splitlines():
        try:
            ids.append(json.loads(raw)["article"]["id"])
        except (ValueError, KeyError):
            continue
    return ids
