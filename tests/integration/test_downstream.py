"""The consumer SDK, the JSONL sink, dead letters and retention, against a real Redis
(and `ingest consume` / `ingest dead` as subprocesses)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis

from pipelines.downstream import Consumer, Entry
from pipelines.publish import Append, append_once
from pipelines.sinks import JsonlSink, SinkError, load_sink
from pipelines.streams import backlog_pressure, stream_progress, trim_stream
from tests.helpers import REPO, jsonl_article_ids, run_cli, wait_for

pytestmark = pytest.mark.integration

ARTICLES = "ingest:articles"
DEAD = "ingest:dead"


def publish(client: redis.Redis, count: int, *, start: int = 0) -> list[str]:
    """``count`` article entries; returns their article ids in order."""
    ids = [f"article-{i:05d}" for i in range(start, start + count)]
    appends = [
        Append(
            ARTICLES,
            article_id,
            {
                "id": article_id,
                "schema_version": "1",
                "article": json.dumps({"id": article_id, "title": f"Title {article_id}"}),
            },
        )
        for article_id in ids
    ]
    append_once(client, appends, ttl=600, delivery_id="test")
    return ids


def entry_key(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def consumer(client: redis.Redis, handler: object, **options: object) -> Consumer:
    defaults: dict[str, object] = {"block": 0.1, "claim_idle": 60.0, "retry_backoff": 0.05}
    defaults.update(options)
    name = str(defaults.pop("name", "c1"))
    group = str(defaults.pop("group", "g"))
    return Consumer(client, ARTICLES, group, name, handler, **defaults)  # type: ignore[arg-type]


def test_consume_into_jsonl_writes_each_article_once_and_acknowledges(
    redis_client: redis.Redis, service_env: dict[str, str], tmp_path: Path
) -> None:
    ids = publish(redis_client, 250)
    out = tmp_path / "articles.jsonl"
    result = run_cli(
        "consume",
        "--group",
        "archive",
        "--sink",
        f"jsonl:{out}",
        "--until-idle",
        "1",
        env=service_env,
    )
    assert result.returncode == 0, result.stderr
    assert jsonl_article_ids(out) == ids
    line = json.loads(out.read_text().splitlines()[0])
    assert line["stream"] == ARTICLES and line["entry_id"] and line["article"]["title"]
    (group,) = stream_progress(redis_client, ARTICLES).groups
    assert (group.name, group.pending, group.lag) == ("archive", 0, 0)
    assert "250 handled" in result.stderr


def test_a_restarted_consumer_finishes_its_own_pending_entries_first(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    ids = publish(redis_client, 30)
    sink = JsonlSink(tmp_path / "out.jsonl")
    first = consumer(redis_client, sink.write, batch_size=10)
    first.ensure_group()
    # The consumer read 10 entries, wrote them, and died before acknowledging.
    reply = redis_client.xreadgroup("g", "c1", {ARTICLES: ">"}, count=10)
    held = [
        Entry(ARTICLES, i.decode(), {k.decode(): v.decode() for k, v in f.items()}, 1)
        for i, f in reply[0][1]
    ]
    sink.write(held)

    seen: list[Entry] = []

    def handler(entries: Sequence[Entry]) -> None:
        seen.extend(entries)
        sink.write(entries)

    consumer(redis_client, handler, batch_size=10).run(until_idle=0.5)
    assert [e.id for e in seen[:10]] == [e.id for e in held]  # its own first
    assert all(e.deliveries == 2 and e.redelivered for e in seen[:10])
    assert jsonl_article_ids(tmp_path / "out.jsonl") == ids  # each exactly once
    assert redis_client.xpending(ARTICLES, "g")["pending"] == 0


def test_entries_of_a_dead_consumer_are_taken_over(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    ids = publish(redis_client, 40)
    consumer(redis_client, lambda e: None).ensure_group()
    redis_client.xreadgroup("g", "crashed", {ARTICLES: ">"}, count=15)
    time.sleep(0.3)
    sink = JsonlSink(tmp_path / "out.jsonl")
    # Batches of 4: taking over the 15 needs four scans, which follow one another.
    live = consumer(redis_client, sink.write, name="live", claim_idle=0.2, batch_size=4)
    started = time.monotonic()
    stats = live.run(until_idle=0.5)
    assert stats.claimed == 15
    assert time.monotonic() - started < 3
    assert sorted(jsonl_article_ids(tmp_path / "out.jsonl")) == ids
    consumers = {c["name"]: c["pending"] for c in redis_client.xinfo_consumers(ARTICLES, "g")}
    assert consumers == {b"crashed": 0, b"live": 0}


def test_a_failing_entry_is_retried_with_backoff_then_dead_lettered_alone(
    redis_client: redis.Redis, service_env: dict[str, str]
) -> None:
    ids = publish(redis_client, 5)
    attempts: dict[int, float] = {}  # delivery -> when first tried
    handled: list[str] = []

    def handler(entries: Sequence[Entry]) -> None:
        for entry in entries:
            if entry.data["id"] == ids[2]:
                attempts.setdefault(entry.deliveries, time.monotonic())
                raise ValueError("cannot index this one")
        handled.extend(e.data["id"] for e in entries)

    stats = consumer(redis_client, handler, max_deliveries=3, retry_backoff=0.2).run(until_idle=1.5)
    assert sorted(handled) == sorted(ids[:2] + ids[3:])  # the others went through
    assert sorted(attempts) == [1, 2, 3]
    assert attempts[2] - attempts[1] >= 0.2  # exponential back-off
    assert attempts[3] - attempts[2] >= 0.4
    assert stats.dead == 1
    assert redis_client.xpending(ARTICLES, "g")["pending"] == 0
    (dead_id, fields), *_ = redis_client.xrange(DEAD)
    record = json.loads(fields[b"record"])
    assert record["source"] == "consumer" and record["group"] == "g"
    assert record["deliveries"] == 3 and "cannot index this one" in record["error"]
    assert json.loads(record["fields"]["article"])["id"] == ids[2]

    listed = run_cli("dead", "list", "--json", env=service_env)
    assert listed.returncode == 0, listed.stderr
    (line,) = [json.loads(x) for x in listed.stdout.splitlines()]
    assert line["id"] == dead_id.decode() and line["group"] == "g"
    table = run_cli("dead", "list", env=service_env)
    assert "cannot index this one" in table.stdout and "consumer" in table.stdout


def test_requeue_gives_a_consumer_dead_letter_back_to_its_group(
    redis_client: redis.Redis, service_env: dict[str, str], tmp_path: Path
) -> None:
    ids = publish(redis_client, 3)
    broken = True

    def handler(entries: Sequence[Entry]) -> None:
        if broken and any(e.data["id"] == ids[1] for e in entries):
            raise RuntimeError("downstream index is down")
        sink.write(entries)

    sink = JsonlSink(tmp_path / "out.jsonl")
    consumer(redis_client, handler, max_deliveries=1).run(until_idle=0.5)
    assert jsonl_article_ids(tmp_path / "out.jsonl") == [ids[0], ids[2]]
    (dead_id, _), *_ = redis_client.xrange(DEAD)

    requeued = run_cli("dead", "requeue", dead_id.decode(), env=service_env)
    assert requeued.returncode == 0, requeued.stderr
    assert "ingest:articles:requeue:g" in requeued.stdout
    assert redis_client.xlen(DEAD) == 0
    assert run_cli("dead", "requeue", dead_id.decode(), env=service_env).returncode == 1

    broken = False
    consumer(redis_client, handler).run(until_idle=0.5)
    assert jsonl_article_ids(tmp_path / "out.jsonl") == [ids[0], ids[2], ids[1]]
    last = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[-1])
    # The line names the entry as first published, not the requeued copy.
    assert last["stream"] == ARTICLES
    assert last["entry_id"] == redis_client.xrange(ARTICLES)[1][0].decode()
    assert redis_client.xlen("ingest:articles:requeue:g") == 0


def test_an_entry_that_crashes_its_consumer_is_dead_lettered_not_looped(
    redis_client: redis.Redis,
) -> None:
    """Each restart re-reads its own pending entry, which Redis counts as a delivery;
    past max_deliveries it is dead-lettered without calling the handler again."""
    publish(redis_client, 1)
    consumer(redis_client, lambda e: None).ensure_group()
    for _ in range(3):  # three consumers that died holding it
        redis_client.xreadgroup("g", "c1", {ARTICLES: "0" if _ else ">"}, count=1)
    called: list[Entry] = []
    consumer(redis_client, called.extend, max_deliveries=3).run(until_idle=0.3)
    assert called == []
    (_, fields), *_ = redis_client.xrange(DEAD)
    record = json.loads(fields[b"record"])
    assert record["deliveries"] == 4 and "without an answer" in record["reason"]
    assert redis_client.xpending(ARTICLES, "g")["pending"] == 0


SLOW_SINK = """
import json, os, time

class SlowSink:
    def __init__(self, path):
        self.path = path
    def write(self, entries):
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"batch": len(entries)}) + "\\n")
        time.sleep(1.5)
        with open(self.path, "a") as fh:
            for e in entries:
                fh.write(json.dumps({"entry_id": e.id}) + "\\n")
    def close(self):
        pass

def factory(arg):
    return SlowSink(arg)
"""


def test_sigterm_stops_after_the_batch_in_hand_is_written_and_acknowledged(
    redis_client: redis.Redis, service_env: dict[str, str], tmp_path: Path
) -> None:
    publish(redis_client, 50)
    (tmp_path / "slowsink.py").write_text(SLOW_SINK)
    out = tmp_path / "out.jsonl"
    env = {**service_env, "PYTHONPATH": str(tmp_path)}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "worker", "consume", "--group", "g", "--batch-size", "10"),
            *("--sink", f"slowsink:factory:{out}"),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: out.exists() and '"batch"' in out.read_text(), 30, what="a batch")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    written = [json.loads(x) for x in out.read_text().splitlines()]
    entries = [x["entry_id"] for x in written if "entry_id" in x]
    assert len(entries) == 10  # the batch in hand, whole, and no other
    assert redis_client.xpending(ARTICLES, "g")["pending"] == 0
    (group,) = stream_progress(redis_client, ARTICLES).groups
    assert group.lag == 40


def test_jsonl_sink_skips_what_a_dead_consumer_already_wrote_and_survives_a_torn_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "out.jsonl"

    def entry(n: int, deliveries: int = 1) -> Entry:
        return Entry(ARTICLES, f"1-{n}", {"article": json.dumps({"id": f"a{n}"})}, deliveries)

    JsonlSink(path).write([entry(1), entry(2)])
    with path.open("a") as fh:
        fh.write('{"stream": "ingest:articles", "entry_id": "1-3", "arti')  # killed mid-line
    sink = JsonlSink(path)
    sink.write([entry(2, deliveries=2), entry(3, deliveries=2), entry(4)])
    assert jsonl_article_ids(path) == ["a1", "a2", "a3", "a4"]
    sink.write([entry(4, deliveries=2)])  # its own line is found too
    assert jsonl_article_ids(path) == ["a1", "a2", "a3", "a4"]


def test_sink_specs(tmp_path: Path) -> None:
    assert isinstance(load_sink(f"jsonl:{tmp_path / 'a.jsonl'}?fsync=off"), JsonlSink)
    assert load_sink(f"jsonl:{tmp_path / 'b.jsonl'}").fsync is True  # type: ignore[attr-defined]
    for bad in ("jsonl", "jsonl:x?fsync=sometimes", "nosuchsink", "no.such.module:factory"):
        with pytest.raises(SinkError):
            load_sink(bad)


def test_a_bad_sink_spec_is_a_clear_error(service_env: dict[str, str]) -> None:
    result = run_cli("consume", "--group", "g", "--sink", "nosuchsink", env=service_env)
    assert result.returncode == 2
    assert "unknown sink 'nosuchsink'" in result.stderr


def test_retention_never_trims_what_a_slow_group_has_not_acknowledged(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    """A fast group reads everything, a slow one lags; trimming to a cap far below the
    backlog keeps every entry the slow group has pending or unread, and it then reads
    every article exactly once, without a gap."""
    ids = publish(redis_client, 600)
    fast = consumer(redis_client, lambda e: None, group="fast")
    fast.run(until_idle=0.2)
    slow_sink = JsonlSink(tmp_path / "slow.jsonl")
    slow = consumer(redis_client, slow_sink.write, group="slow", name="s1", batch_size=50)
    slow.ensure_group()
    redis_client.xreadgroup("slow", "s1", {ARTICLES: ">"}, count=100)  # 100 pending

    result = trim_stream(redis_client, ARTICLES, max_len=50)
    assert result.held_by == "slow" and result.length == 600  # nothing acknowledged yet
    progress = stream_progress(redis_client, ARTICLES)
    assert backlog_pressure(progress, 500) is not None  # 600 unacknowledged by slow

    # The slow group handles 300 (own 100 pending first), then trimming catches up.
    handled = 0

    def some(entries: Sequence[Entry]) -> None:
        nonlocal handled
        slow_sink.write(entries)
        handled += len(entries)
        if handled >= 300:
            slower.stop()

    slower = consumer(redis_client, some, group="slow", name="s1", batch_size=50)
    slower.run()
    result = trim_stream(redis_client, ARTICLES, max_len=50)
    assert 300 <= result.length < 400 and result.held_by == "slow"
    first_kept = redis_client.xrange(ARTICLES, count=1)[0][0].decode()
    pending_or_unread = stream_progress(redis_client, ARTICLES).groups[1]
    assert pending_or_unread.name == "slow"
    assert entry_key(first_kept) <= entry_key(pending_or_unread.first_undelivered_id or "")

    consumer(redis_client, slow_sink.write, group="slow", name="s1").run(until_idle=0.3)
    assert jsonl_article_ids(tmp_path / "slow.jsonl") == ids  # all, once, in order
    result = trim_stream(redis_client, ARTICLES, max_len=50)
    assert result.held_by is None and result.length <= 150  # ~: whole nodes only


def test_with_no_group_the_cap_applies(redis_client: redis.Redis) -> None:
    publish(redis_client, 500)
    result = trim_stream(redis_client, ARTICLES, max_len=100)
    assert result.held_by is None and 100 <= result.length < 250


def test_group_lag_counts_entries_not_yet_delivered(redis_client: redis.Redis) -> None:
    publish(redis_client, 20)
    redis_client.xgroup_create(ARTICLES, "g", id="0")
    redis_client.xreadgroup("g", "c", {ARTICLES: ">"}, count=7)
    (group,) = stream_progress(redis_client, ARTICLES).groups
    assert (group.pending, group.lag, group.backlog) == (7, 13, 20)
    pressure = backlog_pressure(stream_progress(redis_client, ARTICLES), 19)
    assert pressure is not None and pressure.backlog == 20 and "group g" in pressure.describe()
    assert backlog_pressure(stream_progress(redis_client, ARTICLES), 20) is None


def test_consumers_in_threads_share_the_work_without_doubles(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    ids = publish(redis_client, 500)
    sink_path = tmp_path / "shared.jsonl"
    consumers = [
        consumer(redis_client, JsonlSink(sink_path).write, name=f"c{i}", batch_size=20)
        for i in range(3)
    ]
    consumers[0].ensure_group()
    threads = [threading.Thread(target=c.run, kwargs={"until_idle": 0.5}) for c in consumers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(jsonl_article_ids(sink_path)) == ids
    assert all(c.stats.handled > 0 for c in consumers)


def test_requeue_sends_a_document_dead_letter_through_the_ingest_queue_again(
    redis_client: redis.Redis, service_env: dict[str, str], celery_worker: object
) -> None:
    """A document dead-lettered by a failure that has since gone away (here: put there
    directly) is processed again by the worker when requeued."""
    from pipelines.documents import load_file
    from pipelines.ingest import fail_documents
    from tests.helpers import SEED

    message = load_file(SEED).to_message()
    fail_documents(
        redis_client,
        [message],
        stage="task",
        reason="SoftTimeLimitExceeded: a page fetch hung",
        dead_stream=DEAD,
        ttl=600,
        delivery_id="lost-task",
    )
    ((dead_id, _),) = redis_client.xrange(DEAD)
    listed = run_cli("dead", "list", env=service_env)
    assert "a page fetch hung" in listed.stdout and "document" in listed.stdout

    result = run_cli("dead", "requeue", dead_id.decode(), env=service_env)
    assert result.returncode == 0, result.stderr
    assert "the ingest queue" in result.stdout
    wait_for(lambda: redis_client.xlen(ARTICLES) == 1, 30, what="the requeued document")
    assert redis_client.xlen(DEAD) == 0
    assert run_cli("dead", "requeue", "1-1", env=service_env).returncode == 1
    assert run_cli("dead", "requeue", "not-an-id", env=service_env).returncode == 1


def test_the_readme_sink_example_works_as_written(
    redis_client: redis.Redis, service_env: dict[str, str], tmp_path: Path
) -> None:
    readme = (REPO / "README.md").read_text()
    blocks = readme.split("```python\n")[1:]
    (example,) = [b.split("```")[0] for b in blocks if b.startswith("# mysinks.py")]
    (tmp_path / "mysinks.py").write_text(example)
    publish(redis_client, 3)
    env = {**service_env, "PYTHONPATH": str(tmp_path)}
    result = run_cli(
        "consume", "--group", "print", "--sink", "mysinks:titles:>>", "--until-idle", "0.5",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [x for x in result.stdout.splitlines() if x.startswith(">>")] == [
        ">> Title article-00000",
        ">> Title article-00001",
        ">> Title article-00002",
    ]


def test_sink_lines_keep_the_article_as_stored_and_refuse_malformed_entries(
    tmp_path: Path,
) -> None:
    path = tmp_path / "out.jsonl"
    sink = JsonlSink(path)
    pretty = json.dumps({"id": "p", "text": "two\nlines"}, indent=2)
    sink.write([Entry(ARTICLES, "1-1", {"article": pretty}, 1)])
    sink.write([Entry(DEAD, "1-2", {"kind": "dead", "record": '{"reason": "x"}'}, 1)])
    with pytest.raises(ValueError):
        sink.write([Entry(ARTICLES, "1-3", {"article": '{"id": "broken'}, 1)])
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines == [
        {"stream": ARTICLES, "entry_id": "1-1", "article": {"id": "p", "text": "two\nlines"}},
        {"stream": DEAD, "entry_id": "1-2", "kind": "dead", "record": {"reason": "x"}},
    ]


def test_retention_with_deleted_entries_still_keeps_everything_unread(
    redis_client: redis.Redis,
) -> None:
    """Entries deleted before the safe point (XDEL, as a requeue does on the dead
    stream) leave gaps in seq; the trim must not take them for entries and cut into
    what the group has not read."""
    publish(redis_client, 1000)
    redis_client.xgroup_create(ARTICLES, "g", id="0")
    read = redis_client.xreadgroup("g", "c", {ARTICLES: ">"}, count=600)[0][1]
    redis_client.xack(ARTICLES, "g", *[i for i, _ in read])
    redis_client.xdel(ARTICLES, *[i for i, _ in read[1:500]])
    unread = [i.decode() for i, _ in redis_client.xrange(ARTICLES, min=f"({read[-1][0].decode()}")]
    assert len(unread) == 400

    result = trim_stream(redis_client, ARTICLES, max_len=100)
    kept = {i.decode() for i, _ in redis_client.xrange(ARTICLES)}
    assert set(unread) <= kept and result.held_by == "g"


def test_retention_uses_the_cap_when_it_keeps_what_groups_need(
    redis_client: redis.Redis,
) -> None:
    publish(redis_client, 1000)
    redis_client.xgroup_create(ARTICLES, "g", id="0")
    read = redis_client.xreadgroup("g", "c", {ARTICLES: ">"}, count=950)[0][1]
    redis_client.xack(ARTICLES, "g", *[i for i, _ in read])
    result = trim_stream(redis_client, ARTICLES, max_len=100)
    assert result.held_by is None and 100 <= result.length < 250  # ~: whole nodes
    (group,) = stream_progress(redis_client, ARTICLES).groups
    assert group.lag == 50 and group.first_undelivered_id is not None
    kept = {i.decode() for i, _ in redis_client.xrange(ARTICLES)}
    assert group.first_undelivered_id in kept


def test_jsonl_sink_writes_once_after_a_failed_fsync_and_a_forgotten_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch failed after its lines were written (fsync raised), so the consumer
    tries each entry alone as a first delivery; and Redis, after losing its last
    second (a failover), hands out an entry again as new. Neither is written twice."""
    path = tmp_path / "out.jsonl"
    sink = JsonlSink(path)
    entries = [
        Entry(ARTICLES, f"1-{n}", {"article": json.dumps({"id": f"a{n}"})}, 1) for n in range(3)
    ]
    calls = []

    def failing_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")

    monkeypatch.setattr("pipelines.sinks.os.fsync", failing_fsync)
    with pytest.raises(OSError):
        sink.write(entries)
    for entry in entries:
        sink.write([entry])
    sink.write([entries[1]])  # delivered "for the first time" once more
    assert jsonl_article_ids(path) == ["a0", "a1", "a2"]


def test_departed_consumers_that_hold_nothing_are_forgotten(redis_client: redis.Redis) -> None:
    publish(redis_client, 3)
    live = consumer(redis_client, lambda e: None, name="now")
    live.ensure_group()
    redis_client.xreadgroup("g", "holder", {ARTICLES: ">"}, count=1)  # holds one
    redis_client.xgroup_createconsumer(ARTICLES, "g", "gone")
    time.sleep(0.05)
    assert live.forget_departed(idle=0.01) == ["gone"]
    names = {c["name"] for c in redis_client.xinfo_consumers(ARTICLES, "g")}
    assert names == {b"holder"}  # the one with a pending entry stays


def test_a_consumer_of_the_dead_letters_gives_up_without_feeding_itself(
    redis_client: redis.Redis,
) -> None:
    append_once(
        redis_client,
        [Append(DEAD, "d1", {"kind": "dead", "record": json.dumps({"reason": "x"})})],
        ttl=600,
        delivery_id="t",
    )

    def refuse(entries: Sequence[Entry]) -> None:
        raise RuntimeError("alerting is down")

    stats = Consumer(
        redis_client, DEAD, "alerts", "a1", refuse, block=0.1, max_deliveries=2,
        retry_backoff=0.05, dead_stream=DEAD,
    ).run(until_idle=0.5)  # fmt: skip
    assert stats.dead == 1 and redis_client.xlen(DEAD) == 1  # no new dead letter
    assert redis_client.xpending(DEAD, "alerts")["pending"] == 0


def test_each_failing_entry_keeps_its_own_back_off(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry waiting out a long back-off is not retried early because another
    entry's shorter one ended (a clock the test moves)."""
    clock = [1000.0]
    monkeypatch.setattr("pipelines.downstream.time.monotonic", lambda: clock[0])
    calls: list[tuple[str, int]] = []

    def handler(entries: Sequence[Entry]) -> None:
        for entry in entries:
            calls.append((entry.data["id"], entry.deliveries))
            if entry.data["id"] == "article-00000" or entry.deliveries == 1:
                raise RuntimeError("not now")

    c = consumer(redis_client, handler, retry_backoff=10, retry_backoff_max=100)
    c.ensure_group()
    c._next_claim = float("inf")  # this test is about retries, not take-overs
    publish(redis_client, 1)
    assert c.step()  # A fails on its 1st delivery: due at 1010
    publish(redis_client, 1, start=1)
    clock[0] = 1005
    assert c.step()  # B fails on its 1st delivery: due at 1015
    clock[0] = 1010
    assert c.step()  # A again (2nd delivery), fails: due at 1030
    clock[0] = 1015
    assert c.step()  # B again: handled — and A is left alone
    clock[0] = 1029
    assert not c.step()
    clock[0] = 1030
    assert c.step()  # A, 3rd delivery
    assert calls == [
        ("article-00000", 1),
        ("article-00001", 1),
        ("article-00000", 2),
        ("article-00001", 2),
        ("article-00000", 3),
    ]
    assert redis_client.xpending(ARTICLES, "g")["pending"] == 1
