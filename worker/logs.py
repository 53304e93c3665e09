"""structlog, configured once per process; stdlib records (Celery's, kombu's, redis-py's)
are rendered by the same processors, so every line has one format.

JSON lines when ``LOG_FORMAT=json`` or when stderr is not a terminal; readable console
output otherwise. Every line carries the process's ``component`` (worker, beat, flower,
run, cli); lines inside a task carry ``task_id`` and ``task`` (bound by the Celery
signals in :mod:`worker.app`), and lines about one document its ``doc_id``.
"""

from __future__ import annotations

import logging
import sys

import structlog

from config.settings import Settings

_configured: str | None = None
_component = "cli"


def _add_component(_: object, __: str, event: dict[str, object]) -> dict[str, object]:
    # A process-wide field, not a context variable: threads (kombu's, Flower's) start
    # with an empty context and would lose it.
    event.setdefault("component", _component)
    return event


def logging_configured() -> bool:
    return _configured is not None


def wants_json(settings: Settings) -> bool:
    if settings.log_format == "auto":
        return not sys.stderr.isatty()
    return settings.log_format == "json"


def configure_logging(settings: Settings, component: str) -> None:
    """Set up structlog and the root logger. Calling it again only changes ``component``."""
    global _configured, _component
    _component = component
    if _configured is not None:
        return
    _configured = component

    as_json = wants_json(settings)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_component,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.typing.Processor
    if as_json:
        shared.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    structlog.configure(
        # Level first: a filtered line costs a comparison, not the processor chain.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # Chatty at INFO and of no use to an operator.
    for name in ("celery.worker.strategy", "celery.app.trace"):
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
