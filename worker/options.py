"""Stage options built from the settings, without the Celery app: the worker, the CLI
and the benchmarks build them the same way."""

from __future__ import annotations

from config.settings import Settings
from pipelines.dedup import NearOptions


def near_options(config: Settings) -> NearOptions:
    """The near-duplicate layer and story updates as the settings describe them."""
    return NearOptions(
        enabled=config.near_dedup,
        min_words=config.near_min_words,
        min_jaccard=config.near_min_jaccard,
        min_containment=config.near_min_containment,
        update_ratio=config.story_update_ratio if config.story_updates else 0.0,
        index_buckets=config.dedup_index_buckets,
    )
