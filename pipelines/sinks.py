"""Sinks for ``ingest consume``: where a consumer puts what it reads.

A sink is any object with ``write(entries)`` and ``close()``. ``write`` gets a batch of
``pipelines.downstream.Entry`` and must raise if it could not keep them (the consumer
then acknowledges nothing of the batch and retries). Entries with ``redelivered`` set may
have been written before (by this sink or by a consumer that died before it could
acknowledge); a sink that promises exactly-once checks those.

``--sink`` takes:

* ``jsonl:PATH`` (built in) — one JSON object per line, appended to PATH. ``fsync``:
  ``jsonl:PATH?fsync=batch`` (default) flushes and fsyncs each batch before the consumer
  acknowledges it, so an acknowledged entry is on disk; ``?fsync=off`` leaves flushing
  to the OS (faster; a machine crash can lose the last seconds, a process crash cannot).
* ``stdout`` (built in) — the same lines on standard output.
* ``NAME[:ARG]`` — a sink registered under the ``feed_ingest.sinks`` entry-point group.
* ``package.module:factory[:ARG]`` — a factory found by its import path (the module must
  be importable: installed, or on ``PYTHONPATH``).

A factory is called with ARG (a string, or None) and returns the sink.
"""

from __future__ import annotations

import json
import os
import sys
from collections import deque
from collections.abc import Callable, Sequence
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from pipelines.downstream import Entry

ENTRY_POINT_GROUP = "feed_ingest.sinks"


class Sink(Protocol):
    def write(self, entries: Sequence[Entry]) -> None: ...

    def close(self) -> None: ...


class SinkError(ValueError):
    """A --sink spec that names no sink, or a sink that cannot be opened."""


def entry_line(entry: Entry) -> str:
    """The JSON line of an entry (newline included): where it was published (the
    original stream and id, also for a requeued copy) and the article or record itself.

    The stored article JSON is checked (an entry that is not valid JSON fails the batch,
    and ends in the dead letters) but spliced in as it is: serializing it again cost
    two thirds of the sink's time (bench/consume.py)."""
    stream, entry_id = entry.origin
    head: dict[str, Any] = {"stream": stream, "entry_id": entry_id}
    for name in ("article", "record"):
        if name in entry.fields:
            raw = entry.fields[name]
            value = json.loads(raw)  # raises on a malformed entry
            if "\n" in raw or "\r" in raw:  # pretty-printed by some other producer
                raw = json.dumps(value, ensure_ascii=False)
            if name == "record":
                head["kind"] = entry.fields.get("kind")
            prefix = json.dumps(head, ensure_ascii=False)[:-1]
            return f'{prefix}, "{name}": {raw}}}\n'
    head["fields"] = entry.fields
    return json.dumps(head, ensure_ascii=False) + "\n"


class _Recent:
    """The last ``size`` keys seen, for membership tests (a bounded set)."""

    def __init__(self, size: int) -> None:
        self._order: deque[tuple[str, str]] = deque()
        self._keys: set[tuple[str, str]] = set()
        self._size = size

    def add(self, key: tuple[str, str]) -> None:
        if key in self._keys:
            return
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self._size:
            self._keys.discard(self._order.popleft())

    def __contains__(self, key: object) -> bool:
        return key in self._keys


class JsonlSink:
    """Appends one JSON object per entry to a file, exactly once per entry.

    Each batch is one ``write`` on a file opened with O_APPEND, so consumers sharing a
    file do not interleave lines. Every entry is checked against the entries this sink
    wrote or read lately (the last ``REMEMBER`` lines); for a redelivered entry, or
    after a write that failed half-way, the lines other writers added since are read
    first (incrementally; on the first look only the file's last ``TAIL_BYTES``, which
    hold whatever a crashed consumer wrote just before it died). A line cut short by a
    crash or a failed write is closed with a newline before the next write and is not
    valid JSON: readers skip it, and its entry, never acknowledged, is written again.
    """

    REMEMBER = 200_000  # entry keys kept (~100 bytes each)
    TAIL_BYTES = 256 * 1024 * 1024

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._known = _Recent(self.REMEMBER)
        self._scanned: int | None = None  # file offset read up to; None: not yet
        self._suspect = False  # a write failed: the file may end in a torn line
        self._close_torn_line()

    def _close_torn_line(self) -> None:
        size = os.fstat(self._fd).st_size
        if size:
            with self.path.open("rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    os.write(self._fd, b"\n")

    def _scan(self) -> None:
        """Learn the entries written since the last scan (by anyone)."""
        with self.path.open("rb") as fh:
            if self._scanned is None:  # first look: the tail only
                size = os.fstat(fh.fileno()).st_size
                self._scanned = max(0, size - self.TAIL_BYTES)
                fh.seek(self._scanned)
                if self._scanned:
                    self._scanned += len(fh.readline())  # from the next whole line
            else:
                fh.seek(self._scanned)
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # being written right now; read it next time
                self._scanned += len(raw)
                try:
                    line = json.loads(raw)
                    self._known.add((line["stream"], line["entry_id"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn line: its entry is written again

    def write(self, entries: Sequence[Entry]) -> None:
        if self._suspect:
            self._close_torn_line()
        if self._suspect or any(e.redelivered for e in entries):
            self._scan()
        chunks, keys = [], []
        for entry in entries:
            if entry.origin in self._known:
                continue  # written before: by us, or by a consumer that died
            chunks.append(entry_line(entry))
            keys.append(entry.origin)
        if not chunks:
            return
        data = "".join(chunks).encode()
        self._suspect = True  # until the batch is wholly written (and synced)
        written = os.write(self._fd, data)
        while written < len(data):  # a short write (a full disk raises instead)
            written += os.write(self._fd, data[written:])
        for key in keys:
            self._known.add(key)
        if self.fsync:
            os.fsync(self._fd)
        self._suspect = False

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class StdoutSink:
    """JSON lines on standard output (at least once: a redelivered entry is printed
    again)."""

    def write(self, entries: Sequence[Entry]) -> None:
        sys.stdout.write("".join(entry_line(e) for e in entries))
        sys.stdout.flush()

    def close(self) -> None:
        sys.stdout.flush()


def jsonl_sink(arg: str | None) -> JsonlSink:
    if not arg:
        raise SinkError("jsonl needs a path: jsonl:PATH[?fsync=batch|off]")
    path, _, query = arg.partition("?")
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    fsync = options.pop("fsync", "batch")
    if fsync not in ("batch", "off"):
        raise SinkError(f"jsonl: fsync must be batch or off, not {fsync!r}")
    if options:
        raise SinkError(f"jsonl: unknown options {', '.join(options)}")
    return JsonlSink(Path(path), fsync=fsync == "batch")


def stdout_sink(arg: str | None) -> StdoutSink:
    return StdoutSink()


BUILTIN: dict[str, Callable[[str | None], Sink]] = {"jsonl": jsonl_sink, "stdout": stdout_sink}


def load_sink(spec: str) -> Sink:
    """The sink a ``--sink`` spec names (see the module doc)."""
    head, sep, rest = spec.partition(":")
    arg = rest if sep else None
    if head in BUILTIN:
        return BUILTIN[head](arg)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name == head:
            return point.load()(arg)  # type: ignore[no-any-return]
    attr, _, factory_arg = (rest or "").partition(":")
    if attr.isidentifier():  # package.module:factory[:ARG]
        try:
            factory = getattr(import_module(head), attr)
        except (ImportError, AttributeError) as exc:
            raise SinkError(f"{spec!r}: cannot load {head}:{attr}: {exc}") from exc
        return factory(factory_arg or None)  # type: ignore[no-any-return]
    known = sorted({*BUILTIN, *(p.name for p in entry_points(group=ENTRY_POINT_GROUP))})
    raise SinkError(
        f"unknown sink {head!r}: one of {', '.join(known)}, or package.module:factory[:ARG]"
    )
