"""``ingest run``: the whole service on one machine, supervised as one process group.

Parts: the embedded Redis (unless ``REDIS_URL`` is set), a Celery worker, the scheduler
(beat) and Flower. They all run in one process group of their own, so a terminal's
Ctrl-C reaches only this supervisor, which then stops them in order:

1. Flower, beat and the worker get SIGTERM (the worker's warm shutdown finishes its
   tasks and acknowledges them); after ``shutdown_timeout`` they are killed.
2. Redis gets SHUTDOWN, which flushes its append-only file, once nothing uses it.
3. Whatever is left in the group (a stray pool process) is killed.

A second Ctrl-C skips the waiting. Every child also gets SIGTERM if the supervisor
itself dies (Linux parent-death signal), so a killed supervisor leaves no orphans. A
part that crashes is restarted with backoff; one that keeps crashing stops the service.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import IO, Any

import redis
import structlog

from config.settings import Settings
from worker.embedded_redis import EmbeddedRedis
from worker.runtime import RunState, clear_state, read_state, write_state

log = structlog.get_logger("worker.service")

SEEDED_KEY = "ingest:meta:seeded"
CRASH_WINDOW = 60.0
MAX_CRASHES = 5

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Run in the child before exec: SIGTERM when the supervisor goes away."""
    # Not Linux: no such call; the process group still holds the children.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ServiceError(RuntimeError):
    """The service cannot start; the message says why and what to do."""


@dataclass
class Part:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Service:
    def __init__(self, settings: Settings, *, seed: bool = True) -> None:
        self.settings = settings
        self.seed = seed and settings.seed_on_first_run
        self.pgid: int | None = None
        self.groups: set[int] = set()
        self.redis: EmbeddedRedis | None = None
        self.redis_url = settings.redis_url or ""
        self.parts: list[Part] = []
        self.stopping = False
        self.hurry = False
        self.exit_code = 0
        self._lock: IO[str] | None = None

    # --- process plumbing ------------------------------------------------------------

    def _popen_kwargs(self) -> dict[str, Any]:
        return {"process_group": self.pgid or 0, "preexec_fn": _die_with_parent}

    def _note_group(self, pid: int) -> None:
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            return
        self.pgid = self.pgid or pgid
        self.groups.add(pgid)

    def _spawn(self, part: Part) -> None:
        env = dict(os.environ, REDIS_URL=self.redis_url)
        try:
            part.process = subprocess.Popen(part.argv, env=env, **self._popen_kwargs())
        except (PermissionError, subprocess.SubprocessError):
            # The group is gone (every member exited): start a new one.
            self.pgid = None
            part.process = subprocess.Popen(part.argv, env=env, **self._popen_kwargs())
        self._note_group(part.process.pid)
        log.info("part.started", part=part.name, pid=part.process.pid)

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "worker", *args]

    # --- start ---------------------------------------------------------------------------

    def _lock_data_dir(self) -> None:
        """One `ingest run` per data folder: two Redis servers must never share an
        append-only file. The lock goes with this process, however it ends."""
        path = self.settings.data_dir / "run.lock"
        lock = path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            state = read_state(self.settings)
            owner = f" (pid {state.supervisor_pid})" if state else ""
            raise ServiceError(
                f"another `ingest run`{owner} uses {self.settings.data_dir}; stop it first, "
                "or give this one its own INGEST_DATA_DIR"
            ) from None
        self._lock = lock

    def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        if not self.settings.redis_url:
            self.redis = EmbeddedRedis(
                self.settings.data_dir / "redis",
                port=self.settings.embedded_redis_port,
                binary=self.settings.embedded_redis_bin,
                popen_kwargs=self._popen_kwargs(),
            )
            self.redis.start()
            assert self.redis.pid is not None
            self._note_group(self.redis.pid)
            self.redis_url = self.redis.url
            log.info(
                "redis.started",
                url=self.redis_url,
                pid=self.redis.pid,
                data=str(self.redis.directory),
                log_file=str(self.redis.log_file),
            )
        self.parts = [
            Part("worker", self._command("worker")),
            Part("beat", self._command("beat")),
            Part("flower", self._command("flower")),
        ]
        for part in self.parts:
            self._spawn(part)
        flower_url = f"http://{self.settings.flower_address}:{self.settings.flower_port}"
        write_state(
            self.settings,
            RunState(
                redis_url=self.redis_url,
                supervisor_pid=os.getpid(),
                redis_pid=self.redis.pid if self.redis else None,
                flower_url=flower_url,
                started_at=datetime.now(UTC).isoformat(),
            ),
        )
        log.info(
            "service.running",
            redis=self.redis_url,
            flower=flower_url,
            pgid=self.pgid,
            tail="ingest tail --follow",
        )

    def seed_first_run(self) -> None:
        """On the first start of the embedded default, replay the seeds so a new user
        sees articles at once. The marker lives in Redis, so it goes with the data."""
        if not self.seed or self.settings.redis_url:
            return
        seeds = self.settings.seeds_dir
        if not seeds.is_dir():
            log.warning("seeds.missing", path=str(seeds))
            return
        client = redis.Redis.from_url(self.redis_url)
        try:
            if not client.set(SEEDED_KEY, datetime.now(UTC).isoformat(), nx=True):
                return
            from worker.replay import send_replay

            sent = send_replay(client, [seeds], self.settings)
            log.info(
                "seeds.replayed",
                path=str(seeds),
                run_id=sent.run_id,
                sent=sent.sent,
                rejected=sent.rejected,
            )
        finally:
            client.close()

    # --- supervise ---------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping:
            self.hurry = True
            log.warning("service.stop.hurry", signal=signal.Signals(signum).name)
        else:
            self.stopping = True
            log.info("service.stop.requested", signal=signal.Signals(signum).name)

    def supervise(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            if self.redis and self.redis.process and self.redis.process.poll() is not None:
                code = self.redis.process.returncode
                log.error("redis.exited", code=code, log_file=str(self.redis.log_file))
                self.redis.requested_port = self.redis.port  # the parts know this URL
                self.redis.popen_kwargs = self._popen_kwargs()
                self.redis.start()
                assert self.redis.pid is not None
                self._note_group(self.redis.pid)
            for part in self.parts:
                if part.restart_at is not None:
                    if now >= part.restart_at:
                        part.restart_at = None
                        self._spawn(part)
                    continue
                if part.alive():
                    continue
                self._crashed(part, now)
            time.sleep(0.2)

    def _crashed(self, part: Part, now: float) -> None:
        assert part.process is not None
        code = part.process.returncode
        part.crashes.append(now)
        while part.crashes and now - part.crashes[0] > CRASH_WINDOW:
            part.crashes.popleft()
        if len(part.crashes) >= MAX_CRASHES:
            log.error(
                "part.gave_up",
                part=part.name,
                code=code,
                crashes=len(part.crashes),
                window_s=CRASH_WINDOW,
            )
            self.exit_code = 1
            self.stopping = True
            return
        delay = min(30.0, 2.0 ** (len(part.crashes) - 1))
        log.error("part.exited", part=part.name, code=code, restart_in_s=delay)
        part.restart_at = now + delay

    # --- stop ----------------------------------------------------------------------------

    def _wait(self, parts: list[Part], timeout: float) -> None:
        started = time.monotonic()
        deadline = started + timeout
        waiting = list(parts)
        while waiting and time.monotonic() < deadline and not self.hurry:
            for part in [p for p in waiting if not p.alive()]:
                waiting.remove(part)
                assert part.process is not None
                log.info(
                    "part.stopped",
                    part=part.name,
                    code=part.process.returncode,
                    seconds=round(time.monotonic() - started, 2),
                )
            time.sleep(0.05)
        for part in parts:
            if part.alive():
                assert part.process is not None
                log.warning(
                    "part.killed",
                    part=part.name,
                    pid=part.pid,
                    reason="hurried" if self.hurry else "shutdown timeout",
                )
                part.process.kill()
                part.process.wait()

    def stop(self) -> None:
        self.stopping = True
        running = [p for p in self.parts if p.alive()]
        for part in running:
            assert part.process is not None
            part.process.send_signal(signal.SIGTERM)  # worker: warm shutdown
        self._wait(running, self.settings.shutdown_timeout)
        if self.redis is not None:
            self.redis.stop(timeout=self.settings.shutdown_timeout)
            log.info("redis.stopped", aof=str(self.redis.directory))
        for pgid in self.groups:  # strays (pool processes of a killed worker)
            try:
                os.killpg(pgid, signal.SIGKILL)
                log.warning("service.strays_killed", pgid=pgid)
            except ProcessLookupError:
                pass
        if self._lock is not None:
            clear_state(self.settings)
            self._lock.close()
        log.info("service.stopped", code=self.exit_code)

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            self.seed_first_run()
            self.supervise()
        except ServiceError as exc:
            log.error("service.cannot_start", reason=str(exc))
            self.exit_code = 2
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.exit_code
