"""Shared fixtures: one real local stack (Kafka broker + FerretDB) and one SparkSession per run.

The stack is started here if it is not up (and stopped at the end if this run started it).
Each test gets unique topic, database and checkpoint names from `unique`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conf.settings import Settings, load_settings


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def stack(base_settings: Settings) -> Iterator[Settings]:
    from scripts import stack as stack_ctl

    services = [stack_ctl.kafka_service(base_settings), stack_ctl.mongo_service(base_settings)]
    was_running = all(stack_ctl.running_pid(s) for s in services)
    stack_ctl.up(base_settings)
    yield base_settings
    if not was_running:
        stack_ctl.down(base_settings)


@pytest.fixture(scope="session")
def settings(stack: Settings) -> Settings:
    return stack


@pytest.fixture(scope="session")
def kafka_conf(settings: Settings) -> dict[str, str]:
    return settings.kafka.client_config()


@pytest.fixture
def unique() -> Callable[[str], str]:
    run = uuid.uuid4().hex[:8]
    return lambda name="t": f"{name}-{run}"


@pytest.fixture(scope="session")
def spark(settings: Settings) -> Iterator[Any]:
    from streaming.session import build_session

    session = build_session(settings.spark, app_name="tests")
    yield session
    session.stop()


@pytest.fixture
def pipeline_settings(settings: Settings, unique: Callable[[str], str], tmp_path: Path) -> Settings:
    """Settings isolated for one test: own topics, database and checkpoint."""
    from tests.integration.helpers import isolated

    return isolated(settings, unique("t"), str(tmp_path / "checkpoint"))
