"""``ingest run``: the whole service on one machine, supervised as one process group.

Parts: the embedded Redis (unless ``REDIS_URL`` is set), a Celery worker, the scheduler
(beat) and Flower. They all run in one process group of their own, so a terminal's
Ctrl-C reaches only this supervisor, which then stops them in order:

1. Flower, beat and the worker get SIGTERM (the worker's warm shutdown finishes its
   tasks and acknowledges them); after ``shutdown_timeout`` they are killed.
2. Redis gets SHUTDOWN, which flushes its append-only file, once nothing uses it.
3. Whatever is left in the group (a stray pool process) is killed.

SIGINT, SIGTERM and SIGHUP (a closed terminal) all stop it this way; a second signal
skips the waiting (Redis still gets its SHUTDOWN, which takes milliseconds). Every
child also gets SIGTERM if the supervisor itself dies (Linux parent-death signal), so a
killed supervisor leaves no orphans. A part that crashes, Redis included, is restarted
with exponential backoff; one that crashes ``MAX_CRASHES`` times within
``CRASH_WINDOW`` seconds stops the service (exit status 1).
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

import redis
import structlog

from config.settings import Settings
from worker.embedded_redis import EmbeddedRedis, EmbeddedRedisError
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


class CrashHistory:
    """Crashes of one part within the window: how long to wait before the next restart,
    or None when it keeps crashing and the service should stop."""

    def __init__(self) -> None:
        self.times: deque[float] = deque()

    def record(self, now: float) -> float | None:
        self.times.append(now)
        while self.times and now - self.times[0] > CRASH_WINDOW:
            self.times.popleft()
        if len(self.times) >= MAX_CRASHES:
            return None
        return min(30.0, 2.0 ** (len(self.times) - 1))


@dataclass
class Part:
    name: str
    launch: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    crashes: CrashHistory = field(default_factory=CrashHistory)
    restart_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group, from /proc. (While a group has members its id
    is not given to another process, so these are ours.)"""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class Service:
    def __init__(self, settings: Settings, *, seed: bool = True) -> None:
        self.settings = settings
        self.seed = seed and settings.seed_on_first_run
        self.pgid: int | None = None  # the service's process group
        self.redis: EmbeddedRedis | None = None
        self.redis_url = settings.redis_url or ""
        self.parts: list[Part] = []
        self.stopping = False
        self.stop_signals = 0
        self.hurry = False
        self.exit_code = 0
        self._lock: IO[str] | None = None

    # --- process plumbing ------------------------------------------------------------

    def _popen_kwargs(self) -> dict[str, Any]:
        return {"process_group": self.pgid or 0, "preexec_fn": _die_with_parent}

    def _in_group(self, launch: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        """Start a process in the service's group (the first one founds it)."""
        try:
            process = launch()
        except PermissionError:
            # Every member of the group has exited, so it is gone: found a new one.
            self.pgid = None
            process = launch()
        self.pgid = self.pgid or os.getpgid(process.pid)
        return process

    def _command_part(self, name: str, *args: str) -> Part:
        argv = [sys.executable, "-m", "worker", *args]

        def launch() -> subprocess.Popen[bytes]:
            env = dict(os.environ, REDIS_URL=self.redis_url)
            return self._in_group(
                lambda: subprocess.Popen(
                    argv, env=env, stdin=subprocess.DEVNULL, **self._popen_kwargs()
                )
            )

        return Part(name, launch)

    def _redis_part(self, redis_server: EmbeddedRedis) -> Part:
        def launch() -> subprocess.Popen[bytes]:
            def start() -> subprocess.Popen[bytes]:
                redis_server.popen_kwargs = self._popen_kwargs()
                redis_server.start()
                assert redis_server.process is not None
                return redis_server.process

            process = self._in_group(start)
            # A restart keeps the port: the other parts know this URL.
            redis_server.requested_port = redis_server.port
            return process

        return Part("redis", launch)

    def _start_part(self, part: Part) -> None:
        part.process = part.launch()
        log.info("part.started", part=part.name, pid=part.pid)

    def _write_state(self) -> None:
        write_state(
            self.settings,
            RunState(
                redis_url=self.redis_url,
                supervisor_pid=os.getpid(),
                redis_pid=self.redis.pid if self.redis else None,
                flower_url=self.flower_url,
                started_at=datetime.now(UTC).isoformat(),
            ),
        )

    @property
    def flower_url(self) -> str:
        return f"http://{self.settings.flower_address}:{self.settings.flower_port}"

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
            try:
                self.redis = EmbeddedRedis(
                    self.settings.data_dir / "redis",
                    port=self.settings.embedded_redis_port,
                    binary=self.settings.embedded_redis_bin,
                )
                redis_part = self._redis_part(self.redis)
                self._start_part(redis_part)
            except EmbeddedRedisError as exc:
                raise ServiceError(str(exc)) from exc
            self.parts.append(redis_part)
            self.redis_url = self.redis.url
            log.info(
                "redis.started",
                url=self.redis_url,
                data=str(self.redis.directory),
                log_file=str(self.redis.log_file),
            )
        self._load_feed_list()
        for name in ("worker", "beat", "flower"):
            part = self._command_part(name, name)
            self._start_part(part)
            self.parts.append(part)
        self._write_state()
        log.info(
            "service.running",
            redis=self.redis_url,
            flower=self.flower_url,
            pgid=self.pgid,
            tail="ingest tail --follow",
        )

    def _load_feed_list(self) -> None:
        from worker.feedlist import FeedListError, load_feed_list

        client = redis.Redis.from_url(self.redis_url)
        try:
            load_feed_list(self.settings, client)
        except FeedListError as exc:
            raise ServiceError(str(exc)) from exc
        finally:
            client.close()

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
        self.stop_signals += 1
        name = signal.Signals(signum).name
        if self.stop_signals == 1:
            self.stopping = True
            log.info("service.stop.requested", signal=name)
        else:
            self.hurry = True
            log.warning("service.stop.hurry", signal=name)

    def supervise(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            for part in self.parts:
                if part.restart_at is not None and now >= part.restart_at:
                    part.restart_at = None
                    try:
                        self._start_part(part)
                    except (EmbeddedRedisError, OSError) as exc:
                        log.error("part.restart_failed", part=part.name, error=str(exc))
                        self._crashed(part, now, code=None)
                        continue
                    if part.name == "redis":
                        self._write_state()
                elif part.restart_at is None and not part.alive():
                    assert part.process is not None
                    self._crashed(part, now, code=part.process.returncode)
                if self.stopping:
                    return
            time.sleep(0.2)

    def _crashed(self, part: Part, now: float, code: int | None) -> None:
        delay = part.crashes.record(now)
        if delay is None:
            log.error(
                "part.gave_up",
                part=part.name,
                code=code,
                crashes=len(part.crashes.times),
                window_s=CRASH_WINDOW,
            )
            self.exit_code = 1
            self.stopping = True
            return
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
        for part in waiting:
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
        running = [p for p in self.parts if p.name != "redis" and p.alive()]
        for part in running:
            assert part.process is not None
            part.process.send_signal(signal.SIGTERM)  # worker: warm shutdown
        self._wait(running, self.settings.shutdown_timeout)
        if self.redis is not None:
            self.redis.stop(timeout=5.0 if self.hurry else self.settings.shutdown_timeout)
            log.info("redis.stopped", aof=str(self.redis.directory))
        strays = group_members(self.pgid) if self.pgid else []
        if strays:  # e.g. pool processes of a worker that had to be killed
            for pid in strays:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            log.warning("service.strays_killed", pids=strays)
        if self._lock is not None:
            clear_state(self.settings)
            self._lock.close()
        log.info("service.stopped", code=self.exit_code)

    def run(self) -> int:
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
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
