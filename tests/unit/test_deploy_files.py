"""The deployment files, checked without a Docker engine: the compose file's services,
commands and wiring, the Dockerfile, and the two README commands."""

from __future__ import annotations

import re

import yaml
from typer.main import get_command

from tests.helpers import REPO
from worker.cli import cli

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_has_redis_with_aof_and_the_three_parts() -> None:
    assert set(SERVICES) == {"redis", "worker", "beat", "flower", "archive"}
    command = SERVICES["redis"]["command"]
    assert command[0] == "redis-server"
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags == {
        "--appendonly": "yes",
        "--appendfsync": "everysec",
        # The dedup index needs its hashes compact (pipelines/dedup.py).
        "--hash-max-listpack-entries": "512",
    }
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])
    assert "healthcheck" in SERVICES["redis"]


def test_parts_are_built_from_the_one_dockerfile_and_run_real_commands() -> None:
    commands = set(get_command(cli).commands)  # type: ignore[attr-defined]
    for name in ("worker", "beat", "flower"):
        service = SERVICES[name]
        assert service["build"] == "."
        assert service["command"][0] == name and name in commands
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["ingest"]' in dockerfile
    assert "pip install ." in dockerfile


def test_the_archive_consumer_is_opt_in_and_keeps_its_name_and_file() -> None:
    archive = SERVICES["archive"]
    assert archive["profiles"] == ["consumers"]  # not started by a plain `up`
    command = archive["command"]
    assert command[0] == "consume" and "consume" in get_command(cli).commands  # type: ignore[attr-defined]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--name"] == "archive-1"  # stable: a restart finishes its own pending
    assert options["--sink"] == "jsonl:/archive/articles.jsonl"
    assert "archive:/archive" in archive["volumes"] and "archive" in COMPOSE["volumes"]
    assert archive["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_flower_requires_basic_auth_from_the_environment_and_listens_locally() -> None:
    flower = SERVICES["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert flower["command"] == ["flower", "--address", "0.0.0.0"]
    assert flower["ports"] == ["127.0.0.1:5555:5555"]


def test_worker_gets_time_for_a_warm_shutdown() -> None:
    grace = SERVICES["worker"]["stop_grace_period"]
    assert re.fullmatch(r"\d+m", grace) and int(grace[:-1]) >= 5


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^run: ", makefile, re.MULTILINE)
    assert re.search(r"^test: ", makefile, re.MULTILINE)
