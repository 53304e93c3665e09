"""Fixtures: real servers started on free ports and stopped by process id.

* ``redis_server``: a redis-server (the binary the embedded default uses) for the whole
  session, in a scratch folder. Tests only ever touch this server.
* ``redis_client``: a client to it; before each test the ``ingest:*`` keys (ours, not the
  broker's) are deleted so tests do not see each other's articles.
* ``celery_worker``: a real ``ingest worker`` subprocess against that server.
* ``feed_server``: a real local HTTP server with programmable routes (tests/feedserver.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.feedserver import feed_server  # noqa: F401 - the local HTTP server fixture
from tests.helpers import WorkerProcess, clean_env, start_worker
from worker.embedded_redis import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop(timeout=10)


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    keys = list(client.scan_iter(match="ingest:*", count=1000))
    if keys:
        client.delete(*keys)
    yield client
    client.close()


@pytest.fixture
def service_env(redis_server: EmbeddedRedis, tmp_path: Path) -> dict[str, str]:
    return clean_env(REDIS_URL=redis_server.url, INGEST_DATA_DIR=str(tmp_path / "var"))


@pytest.fixture(scope="session")
def celery_worker(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    folder = tmp_path_factory.mktemp("worker")
    env = clean_env(REDIS_URL=redis_server.url, INGEST_DATA_DIR=str(folder / "var"))
    worker = start_worker(env, folder / "worker.log", name="test", concurrency=2)
    yield worker
    worker.stop()
