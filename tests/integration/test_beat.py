"""Only one scheduler is active when two are started; the other takes over when the
active one dies."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.helpers import REPO, stop_process, wait_for

pytestmark = pytest.mark.integration

SENT = "Sending due task scheduler-tick"


def test_two_schedulers_send_each_tick_once(
    service_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = dict(service_env, INGEST_TICK_INTERVAL="0.5", INGEST_BEAT_LOCK_TIMEOUT="3")
    logs = [tmp_path / "beat-a.log", tmp_path / "beat-b.log"]
    beats = []
    for log in logs:
        with log.open("wb") as out:
            beats.append(
                subprocess.Popen(
                    [sys.executable, "-m", "worker", "beat"],
                    env=env,
                    cwd=REPO,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:

        def sends() -> list[int]:
            return [log.read_text(errors="replace").count(SENT) for log in logs]

        wait_for(lambda: sum(sends()) >= 6, timeout=60, what="ticks")
        time.sleep(2)
        counts = sends()
        assert sorted(counts)[0] == 0, f"both schedulers sent ticks: {counts}"
        active = counts.index(max(counts))
        standby = 1 - active

        # Kill the active one outright: after its lock expires the other takes over.
        beats[active].send_signal(signal.SIGKILL)
        beats[active].wait()
        wait_for(lambda: sends()[standby] >= 3, timeout=30, what="failover")
        assert "Acquired lock" in logs[standby].read_text()
    finally:
        for beat in beats:
            stop_process(beat)
