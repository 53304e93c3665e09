"""kill -9 a worker (the whole machine: its pool too) in the middle of 500 documents,
start another: every document is published exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.faults.conftest import (
    ARTICLES,
    BATCH_SIZE,
    DOCUMENTS,
    UNACKED,
    Corpus,
    RedisHolder,
    assert_exactly_once,
    assert_nothing_else,
    assert_run_complete,
    fault_env,
    kill_group,
    launch_worker,
    queue_length,
    replay,
    wait_settled,
    wait_until_published,
)
from tests.helpers import WorkerProcess

pytestmark = [pytest.mark.faults, pytest.mark.integration]


@pytest.mark.timeout(90)
def test_a_worker_killed_mid_run_loses_and_doubles_nothing(
    own_redis: RedisHolder, corpus: Corpus, tmp_path: Path
) -> None:
    env = fault_env(own_redis.server.url, tmp_path / "var")
    client = redis.Redis.from_url(own_redis.server.url)
    workers: list[WorkerProcess] = []
    try:
        # Every task message is in the queue before any worker runs.
        replay(corpus.folder, env)
        assert queue_length(client) == DOCUMENTS // BATCH_SIZE

        doomed = launch_worker(env, tmp_path / "worker-1.log", name="doomed")
        workers.append(doomed)
        wait_until_published(client, doomed, 50)
        kill_group(doomed)
        assert client.xlen(ARTICLES) < DOCUMENTS, "the run was over before the kill"
        # What the dead worker held (running or prefetched) is still unacknowledged.
        assert client.hlen(UNACKED) > 0

        # The new worker puts those tasks back in the queue once the visibility timeout
        # has passed; a task that had published before the kill finds its articles
        # already there.
        heir = launch_worker(env, tmp_path / "worker-2.log", name="heir")
        workers.append(heir)
        wait_settled(client, heir, timeout=60)

        assert_exactly_once(client, corpus, own_redis.aof, *workers)
        assert_nothing_else(client)
        assert_run_complete(client)
    finally:
        for worker in workers:
            worker.stop()
        client.close()
