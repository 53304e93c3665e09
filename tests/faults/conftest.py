"""Shared parts of the fault tests: a corpus of distinct documents and the article ids
it must give, a worker environment that recovers in seconds, their own Redis servers
and workers, and the checks.

Every server and worker here is started by the test that uses it, on a free port, and
stopped by process id in a fixture teardown or a ``finally``: the fault tests never
touch a Redis they did not start (not even the session's ``redis_server``).
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.helpers import WorkerProcess, clean_env, run_cli, start_worker
from worker.embedded_redis import EmbeddedRedis

DOCUMENTS = 500
BATCH_SIZE = 5  # documents per task: 100 tasks
ARTICLES = "ingest:articles"
DEAD = "ingest:dead"
DUPLICATES = "ingest:duplicates"
QUEUE = "ingest"  # the Celery queue of document tasks (a Redis list per priority)
UNACKED = "unacked"  # kombu's hash of delivered, unacknowledged messages

# Words to build sentences from: plain English, no boilerplate phrases (subscribe,
# share, cookies…) that a cleaning rule could take for page furniture.
_VOCABULARY = """
harbor council river mountain village teacher engineer market bridge garden winter
summer autumn spring railway station museum library hospital factory orchard valley
island forest desert meadow canyon harvest festival parade tunnel highway airport
ferry lighthouse quarry vineyard bakery brewery theater stadium courthouse school
college laboratory observatory reservoir pipeline turbine battery cable satellite
tractor bicycle carriage wagon lantern compass telescope microscope notebook ledger
copper silver granite marble timber cotton linen wool barley wheat maize rice pepper
ginger cinnamon saffron honey olive walnut almond cherry apple pear plum melon lemon
falcon heron otter badger beaver salmon trout oyster lobster sparrow raven eagle
mayor clerk farmer sailor miner baker painter poet drummer weaver potter carpenter
welder surveyor pilot nurse doctor judge lawyer banker merchant captain sergeant
approved rejected delayed opened closed repaired measured painted planted harvested
counted shipped printed signed debated announced proposed inspected surveyed mapped
quietly slowly briskly openly firmly gently barely nearly roughly widely rarely
northern southern eastern western coastal rural urban ancient modern wooden stone
crowded empty narrow broad steep shallow distant nearby hidden famous humble proud
"""
_WORDS = _VOCABULARY.split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(9, 16))]
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def write_corpus(
    folder: Path, count: int = DOCUMENTS, *, paragraphs: int = 4, seed: int = 20260101
) -> list[Path]:
    """``count`` plain-text articles, each with its own title and about 150 words of
    its own random text (a per-document seed): no two share enough 5-word shingles, or
    their first words, for dedup to take one for the other."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        rng = random.Random(seed * 100_003 + n)
        title = f"Report {n:04d}: the " + " ".join(rng.choice(_WORDS) for _ in range(5))
        body = [" ".join(_sentence(rng) for _ in range(3)) for _ in range(paragraphs)]
        path = folder / f"doc_{n:04d}.txt"
        path.write_text(title + "\n\n" + "\n\n".join(body) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


@dataclass(frozen=True)
class Corpus:
    folder: Path
    ids: list[str]  # the article id of each document, as `ingest clean` gives it
    refs: dict[str, str]  # article id -> the document's file


def clean_corpus(folder: Path) -> Corpus:
    """The articles the corpus must give: `ingest clean` (offline, no Redis)."""
    result = run_cli("clean", str(folder), env=clean_env(), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    articles = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    refs = {a["id"]: a["source_ref"] for a in articles}
    assert len(refs) == len(articles), "the corpus has two documents with one article id"
    return Corpus(folder, [a["id"] for a in articles], refs)


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    """500 documents and the article ids they must give."""
    folder = tmp_path / "corpus"
    write_corpus(folder)
    result = clean_corpus(folder)
    assert len(result.ids) == DOCUMENTS
    return result


def fault_env(redis_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """A worker environment that recovers in seconds: a task whose worker died is back
    in the queue after the visibility timeout (8 s) plus one restore sweep (1 s); the
    time limits stay below the visibility timeout, as in production."""
    settings = {
        "REDIS_URL": redis_url,
        "INGEST_DATA_DIR": str(data_dir),
        "INGEST_VISIBILITY_TIMEOUT": "8",
        "INGEST_TASK_SOFT_TIME_LIMIT": "5",
        "INGEST_TASK_TIME_LIMIT": "7",
        "INGEST_UNACKED_RESTORE_INTERVAL": "1",
        "INGEST_UNACKED_RESTORE_THROTTLE": "1",
        "INGEST_TASK_RETRY_BACKOFF_MAX": "2",
    }
    return clean_env(**{**settings, **overrides})


class RedisHolder:
    """The test's own Redis, which a test may kill and replace: the teardown stops the
    current one, and kills (by pid) any it was given that still runs."""

    def __init__(self, server: EmbeddedRedis) -> None:
        self.server = server
        self.all: list[EmbeddedRedis] = [server]

    @property
    def aof(self) -> Path:
        return self.server.directory / "appendonly.aof"  # redis.conf: appendfilename

    def replace(self, server: EmbeddedRedis) -> None:
        self.server = server
        self.all.append(server)

    def close(self) -> None:
        self.server.stop(timeout=10)
        for server in self.all:
            server.kill()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisHolder]:
    """A Redis of this test only, with the append-only file on (fsync every second)."""
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)
    server.start()
    holder = RedisHolder(server)
    try:
        yield holder
    finally:
        holder.close()


def replay(folder: Path, env: dict[str, str]) -> None:
    """Queue the corpus with `ingest replay` (no --wait): when it exits 0, Redis has
    answered OK to every task message."""
    result = run_cli("replay", str(folder), "--batch-size", str(BATCH_SIZE), env=env)
    assert result.returncode == 0, result.stderr[-2000:]


def launch_worker(
    env: dict[str, str], log_file: Path, *, name: str, concurrency: int = 2
) -> WorkerProcess:
    """An `ingest worker` in a process group of its own (so ``kill_group`` takes its pool
    too, as a dying machine would), not waited for: the test watches the stream from the
    first task on (waiting for "ready." could miss much of a 500-document run)."""
    return start_worker(
        env, log_file, name=name, concurrency=concurrency, own_group=True, wait=False
    )


def kill_group(worker: WorkerProcess) -> None:
    """SIGKILL the worker and its pool processes at once (its process group)."""
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(10)


class WorkerExited(AssertionError):
    pass


def check_alive(worker: WorkerProcess) -> None:
    code = worker.process.poll()
    if code is not None:
        raise WorkerExited(f"the worker exited with code {code}: {incidents(worker)}")


def wait_until_published(
    client: redis.Redis, worker: WorkerProcess, count: int, timeout: float = 30
) -> None:
    """Poll the articles stream (every millisecond) until it holds ``count`` entries."""
    deadline = time.monotonic() + timeout
    while client.xlen(ARTICLES) < count:
        check_alive(worker)
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} articles after {timeout}s")
        time.sleep(0.001)


def queue_length(client: redis.Redis) -> int:
    """Messages waiting in the document queue (kombu keeps one list per priority)."""
    names = [QUEUE] + [f"{QUEUE}\x06\x16{p}" for p in (3, 6, 9)]
    return sum(int(client.llen(name)) for name in names)


def wait_settled(client: redis.Redis, worker: WorkerProcess, timeout: float) -> None:
    """Wait until nothing is left to do: no message in the queue and none delivered but
    unacknowledged (a task running or waiting for its retry, or one a dead worker held
    and the visibility timeout has not given back yet), for a second in a row."""
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while True:
        check_alive(worker)
        now = time.monotonic()
        if queue_length(client) == 0 and client.hlen(UNACKED) == 0:
            quiet_since = quiet_since or now
            if now - quiet_since >= 1.0:
                return
        else:
            quiet_since = None
        if now > deadline:
            raise AssertionError(
                f"the run did not settle in {timeout}s: {client.xlen(ARTICLES)} articles, "
                f"{queue_length(client)} messages queued, {client.hlen(UNACKED)} "
                f"unacknowledged; {incidents(worker)}"
            )
        time.sleep(0.2)


def article_ids(client: redis.Redis) -> list[str]:
    """Every article id on the articles stream, one per entry (doubles kept)."""
    return [fields[b"id"].decode() for _, fields in client.xrange(ARTICLES)]


# Worker log lines that tell what happened to tasks around a fault.
_INCIDENTS = re.compile(
    r"reject requeue=\w+|Unrecoverable error[^\"]{0,100}|Couldn't ack|Couldn't reject"
    r"|Hard time limit|Soft time limit|batch\.lost|task\.redelivered|ingest\.split"
    r"|document\.failed|Connection to broker lost"
)


def incidents(*workers: WorkerProcess) -> str:
    """What the workers' logs say about the fault, counted: to read with a failure."""
    found: Counter[str] = Counter()
    for worker in workers:
        found.update(m.group(0) for m in _INCIDENTS.finditer(worker.log_text()))
    logs = ", ".join(str(w.log_file) for w in workers)
    return f"worker log incidents {dict(found)} (logs: {logs})"


def assert_exactly_once(
    client: redis.Redis, corpus: Corpus, aof: Path, *workers: WorkerProcess
) -> None:
    """The articles stream holds each article of the corpus once, and nothing else.

    One loss is not the pipeline's to prevent: kombu's Redis transport takes a message
    off the queue (BRPOP) and only then records it as delivered (HSET ``unacked``), in
    two commands; a worker or a Redis dying between the two loses the message
    (celery/kombu#305). When the append-only file shows that every missing document
    went that way, the test is marked xfail with the trace, not failed; any other loss
    fails it."""
    published = article_ids(client)
    counts = Counter(published)
    doubles = {i: c for i, c in counts.items() if c > 1}
    missing = sorted(set(corpus.ids) - set(counts))
    unexpected = sorted(set(counts) - set(corpus.ids))
    why = incidents(*workers)
    assert not doubles, f"{len(doubles)} articles published more than once {doubles}; {why}"
    assert not unexpected, f"{len(unexpected)} unexpected articles {unexpected[:10]}; {why}"
    if missing:
        traces = trace_messages(aof, [corpus.refs[i] for i in missing])
        trace = "; ".join(map(str, traces)) or "no task message carried them"
        carried = {name for t in traces for name in t.documents}
        every_one = carried == {Path(corpus.refs[i]).name for i in missing}
        if every_one and not any(t.delivered for t in traces):
            pytest.xfail(
                f"{len(missing)} documents lost in kombu's BRPOP→unacked hand-off "
                f"(celery/kombu#305), not by the pipeline: {trace}"
            )
        raise AssertionError(f"{len(missing)} articles never published: {trace}; {why}")
    assert sorted(published) == sorted(corpus.ids)


def assert_nothing_else(client: redis.Redis) -> None:
    """No dead letter, no duplicate: every document ended as a published article."""
    assert client.xlen(DEAD) == 0, client.xrange(DEAD)[:3]
    assert client.xlen(DUPLICATES) == 0, client.xrange(DUPLICATES)[:3]


def assert_run_complete(client: redis.Redis) -> None:
    """The replay run's report (``ingest:run:<id>``, written by the tasks) names every
    document, each published, or found already published by a redelivered task; so
    `ingest replay --wait` would have seen the run finish."""
    (key,) = client.keys("ingest:run:*")
    outcomes = [json.loads(v) for v in client.hvals(key)]
    assert len(outcomes) == DOCUMENTS, f"{DOCUMENTS - len(outcomes)} documents have no outcome"
    odd = [
        o
        for o in outcomes
        if not (o["status"] == "published" or (o["status"] == "duplicate" and o["layer"] == "id"))
    ]
    assert not odd, odd[:5]


def _aof_commands(path: Path) -> Iterator[list[bytes]]:
    """The commands in an append-only file (RESP arrays; no RDB preamble, as no AOF
    rewrite happens in a run this small)."""
    data = path.read_bytes()
    i = 0
    while i < len(data) and data[i : i + 1] == b"*":
        end = data.index(b"\r\n", i)
        count, i = int(data[i + 1 : end]), end + 2
        command = []
        for _ in range(count):
            end = data.index(b"\r\n", i)
            size, i = int(data[i + 1 : end]), end + 2
            command.append(data[i : i + size])
            i += size + 2
        yield command


@dataclass
class MessageTrace:
    tag: str  # kombu's delivery tag
    documents: list[str]
    queued: int = 0  # LPUSHed to the queue: sent, or given back (restored, requeued)
    delivered: bool = False  # recorded in kombu's ``unacked`` hash at least once
    removed: int = 0  # taken out of ``unacked``: acknowledged, rejected or restored

    def __str__(self) -> str:
        fate = (
            f"delivered, taken out of 'unacked' {self.removed}x"
            if self.delivered
            else "never recorded in 'unacked'"
        )
        return f"message {self.tag} {self.documents}: queued {self.queued}x, {fate}"


def trace_messages(aof: Path, refs: Iterable[str]) -> list[MessageTrace]:
    """What the append-only file says became of the task messages that carried the
    documents ``refs`` (their files). A message queued once and taken out of
    ``unacked`` without being queued again was acknowledged or rejected: its task ran
    and dropped it. One never recorded in ``unacked`` was popped and lost in transit."""
    names = [Path(ref).name for ref in refs]
    traces: dict[str, MessageTrace] = {}
    recorded: set[str] = set()
    removed: Counter[str] = Counter()
    for command in _aof_commands(aof):
        name = command[0].upper()
        if name == b"LPUSH" and command[1] == QUEUE.encode():
            for raw in command[2:]:
                message = json.loads(raw)
                body = base64.b64decode(message["body"]).decode()
                carried = sorted(n for n in names if n in body)
                if carried:
                    tag = message["properties"]["delivery_tag"]
                    traces.setdefault(tag, MessageTrace(tag, carried)).queued += 1
        elif name == b"HSET" and command[1] == UNACKED.encode():
            recorded.add(command[2].decode())
        elif name == b"HDEL" and command[1] == UNACKED.encode():
            removed.update(tag.decode() for tag in command[2:])
    for trace in traces.values():
        trace.delivered = trace.tag in recorded
        trace.removed = removed[trace.tag]
    return list(traces.values())


def wait_written_to_aof(client: redis.Redis, timeout: float = 5) -> None:
    """Wait until Redis has nothing left in its AOF buffer: every write it executed
    before this call is then in the append-only file (written, maybe not yet fsynced),
    and survives the kill of the process. With ``appendfsync everysec`` Redis may hold
    writes it already answered in that buffer for up to 2 s while a background fsync is
    slow (a busy disk); losing those is the documented price of everysec, not a fault
    of the pipeline, so the test does not kill inside that window."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(client.info("persistence")["aof_buffer_length"]) == 0:
            return
        time.sleep(0.001)
    raise AssertionError(f"the AOF buffer did not drain in {timeout}s")
