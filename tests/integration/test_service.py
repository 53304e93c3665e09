"""`ingest run` on the embedded default: the real service, started and stopped as a user
would, checked from outside (Redis, a worker ping, Flower's HTTP port, the process
group)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery import Celery

from tests.expectations import assert_seed_article
from tests.helpers import SEEDS, clean_env, run_cli, wait_for
from worker.embedded_redis import EmbeddedRedis, free_port
from worker.service import group_members

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Run:
    """One `ingest run` process in a scratch folder."""

    def __init__(self, folder: Path, flower_port: int) -> None:
        self.folder = folder
        self.flower_port = flower_port
        self.env = clean_env(
            INGEST_DATA_DIR=str(folder / "var"),
            INGEST_SEEDS_DIR=str(SEEDS),
            INGEST_FLOWER_PORT=str(flower_port),
            INGEST_WORKER_CONCURRENCY="1",
            INGEST_SHUTDOWN_TIMEOUT="30",
        )
        self.log_file = folder / "run.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> dict[str, Any]:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker", "run"],
                env=self.env,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        state_file = self.folder / "var" / "run.json"

        def state() -> dict[str, Any] | None:
            assert self.process is not None and self.process.poll() is None, self.log()
            return json.loads(state_file.read_text()) if state_file.exists() else None

        return wait_for(state, timeout=60, what="run.json")

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:]

    def stop(self, sig: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(90)


def test_run_starts_everything_and_stops_cleanly(tmp_path: Path) -> None:
    run = Run(tmp_path, free_port())
    state = run.start()
    pgid = os.getpgid(state["redis_pid"])
    try:
        client = redis.Redis.from_url(state["redis_url"])
        assert client.ping()
        assert state["redis_url"].startswith("redis://127.0.0.1:")
        # A new user sees the seed article without doing anything.
        wait_for(lambda: client.xlen("ingest:articles") >= 1, timeout=60, what="seed article")
        _, fields = client.xrange("ingest:articles")[0]
        assert_seed_article(json.loads(fields[b"article"]))
        # The worker answers a ping; Flower serves HTTP and saw the task.
        wait_for(lambda: _worker_ping(state["redis_url"]), timeout=60, what="worker ping")
        base = f"http://127.0.0.1:{run.flower_port}"
        wait_for(lambda: _get(f"{base}/healthcheck") == "OK", timeout=60, what="Flower healthcheck")
        wait_for(
            lambda: 'task="ingest.documents"' in (_get(f"{base}/metrics") or ""),
            timeout=60,
            what="Flower to show the ingest task",
        )
        # Redis, worker (+ its pool), beat and Flower share one process group.
        assert len(group_members(pgid)) >= 5
        # The data survives with AOF on.
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
        # A second `ingest run` on the same data folder refuses to start.
        second = run_cli("run", env=run.env, cwd=tmp_path, timeout=60)
        assert second.returncode == 2
        assert f"pid {run.process.pid}" in second.stderr  # type: ignore[union-attr]
        assert (tmp_path / "var" / "run.json").exists()

        # A part that dies is restarted: the worker, and Redis (same port, data kept).
        os.kill(_part_pid(run, "worker"), signal.SIGKILL)
        os.kill(state["redis_pid"], signal.SIGKILL)
        wait_for(
            lambda: run.log_file.read_text().count('"part.started"') >= 6,
            timeout=60,
            what="restarts",
        )
        state = wait_for(lambda: _restarted_state(run, state), timeout=60, what="new run.json")
        client = redis.Redis.from_url(state["redis_url"])
        wait_for(lambda: _ping(client), timeout=60, what="Redis back")
        assert client.xlen("ingest:articles") == 1  # the AOF brought the article back
        wait_for(lambda: _worker_ping(state["redis_url"]), timeout=60, what="worker back")
        client.close()

        assert run.stop(signal.SIGTERM) == 0, run.log()
        assert group_members(pgid) == [], "processes left behind"
        assert not (tmp_path / "var" / "run.json").exists()
        log = run.log()
        assert "Warm shutdown" in log and "redis.stopped" in log
        assert "service.strays_killed" not in log, "the orderly stop left processes"

        # Second start: the article persisted, the seeds are not replayed again;
        # Ctrl-C (SIGINT) stops it as cleanly.
        state = run.start()
        pgid = os.getpgid(state["redis_pid"])
        client = redis.Redis.from_url(state["redis_url"])
        assert client.xlen("ingest:articles") == 1
        assert client.exists("ingest:meta:seeded")
        client.close()
        assert run.stop(signal.SIGINT) == 0, run.log()
        assert group_members(pgid) == []

        # Third start: the supervisor is killed outright; its parts still go.
        state = run.start()
        pgid = os.getpgid(state["redis_pid"])
        wait_for(lambda: len(group_members(pgid)) >= 5, timeout=60, what="all parts")
        assert run.stop(signal.SIGKILL) == -signal.SIGKILL
        wait_for(lambda: group_members(pgid) == [], timeout=60, what="orphans to exit")
    finally:
        if run.process and run.process.poll() is None:
            run.process.kill()
        for pid in group_members(pgid):
            os.kill(pid, signal.SIGKILL)


def _part_pid(run: Run, name: str) -> int:
    """Pid of a part, from the supervisor's last part.started line for it."""
    starts = [
        json.loads(line)
        for line in run.log_file.read_text().splitlines()
        if line.startswith("{") and '"part.started"' in line
    ]
    return int([s for s in starts if s["part"] == name][-1]["pid"])


def _restarted_state(run: Run, before: dict[str, Any]) -> dict[str, Any] | None:
    state = json.loads((run.folder / "var" / "run.json").read_text())
    return state if state["redis_pid"] != before["redis_pid"] else None


def _worker_ping(redis_url: str) -> bool:
    app = Celery(broker=redis_url)
    try:
        return any("pong" in str(reply) for reply in app.control.ping(timeout=1.0))
    except Exception:  # the broker going away mid-ping: not an answer
        return False
    finally:
        app.close()


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _get(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return None


def test_run_with_redis_url_uses_that_server_and_starts_none(
    tmp_path: Path, redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    run = Run(tmp_path, free_port())
    run.env["REDIS_URL"] = redis_server.url
    state = run.start()
    try:
        assert state["redis_url"] == redis_server.url and state["redis_pid"] is None
        wait_for(
            lambda: _get(f"http://127.0.0.1:{run.flower_port}/healthcheck") == "OK",
            timeout=60,
            what="Flower healthcheck",
        )
        members = group_members(os.getpgid(wait_for(lambda: _child_pid(run), 10, what="child")))
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in members]
        assert not any(b"redis-server" in c for c in commands)
        # Not the embedded default: the seeds are not replayed.
        assert not redis_client.exists("ingest:meta:seeded")
        assert run.stop(signal.SIGTERM) == 0, run.log()
        assert redis_client.ping()  # a server we did not start is left running
    finally:
        if run.process and run.process.poll() is None:
            run.process.kill()


def _child_pid(run: Run) -> int | None:
    assert run.process is not None
    children = Path(f"/proc/{run.process.pid}/task/{run.process.pid}/children")
    pids = children.read_text().split() if children.exists() else []
    return int(pids[0]) if pids else None
