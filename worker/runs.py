"""Replay runs: what ``ingest replay`` sent and what became of each document.

A run is a Redis hash ``ingest:run:<id>`` of document id → outcome JSON, written by the
task (so a retried task overwrites its own entries instead of counting twice) and by
``ingest replay`` for files it could not read. It expires after ``run_report_ttl``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

from pipelines.ingest import Outcome

RUN_PREFIX = "ingest:run:"


def _outcomes_key(run_id: str) -> str:
    return f"{RUN_PREFIX}{run_id}"


def record_outcomes(
    client: redis.Redis, run_id: str, outcomes: Sequence[Outcome], *, ttl: int
) -> None:
    if not outcomes:
        return
    key = _outcomes_key(run_id)
    pipe = client.pipeline()
    pipe.hset(key, mapping={o.doc_id: json.dumps(o.to_dict()) for o in outcomes})
    pipe.expire(key, ttl)
    pipe.execute()


def processed_count(client: redis.Redis, run_id: str) -> int:
    return int(client.hlen(_outcomes_key(run_id)))


def run_outcomes(client: redis.Redis, run_id: str) -> list[dict[str, Any]]:
    return [json.loads(v) for v in client.hvals(_outcomes_key(run_id))]
