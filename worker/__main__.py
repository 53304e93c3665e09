"""``python -m worker`` is the ``ingest`` command (used by ``ingest run`` for its parts)."""

from worker.cli import main

main()
