"""Where the running service is: ``<data_dir>/run.json``, written by ``ingest run``.

With ``REDIS_URL`` unset, ``ingest replay``, ``ingest tail``, ``ingest worker`` and the
rest find the embedded Redis of a running ``ingest run`` (started from the same folder)
through this file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from config.settings import Settings

STATE_FILE = "run.json"


class NoRedisError(RuntimeError):
    """No Redis to talk to; the message tells the user how to get one."""


@dataclass(frozen=True, slots=True)
class RunState:
    redis_url: str
    supervisor_pid: int
    redis_pid: int | None
    flower_url: str | None
    started_at: str


def state_path(settings: Settings) -> Path:
    return settings.data_dir / STATE_FILE


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_state(settings: Settings, state: RunState) -> None:
    path = state_path(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def clear_state(settings: Settings) -> None:
    state_path(settings).unlink(missing_ok=True)


def read_state(settings: Settings) -> RunState | None:
    """The state of a running ``ingest run``; None when none runs (a stale file left by
    a killed supervisor is ignored)."""
    try:
        state = RunState(**json.loads(state_path(settings).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return state if pid_alive(state.supervisor_pid) else None


def resolve_redis_url(settings: Settings) -> str | None:
    if settings.redis_url:
        return settings.redis_url
    state = read_state(settings)
    return state.redis_url if state else None


def require_redis_url(settings: Settings) -> str:
    url = resolve_redis_url(settings)
    if url is None:
        raise NoRedisError(
            "no Redis to use: set REDIS_URL, or start the service with `ingest run` "
            f"(its embedded Redis is found through {state_path(settings)})"
        )
    return url
