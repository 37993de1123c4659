"""Shared fixtures: one real local stack (Kafka broker + FerretDB) and one SparkSession per
test process.

The stack is started here if it is not up (and stopped at the end if this run started it).
`make test` runs two pytest-xdist workers (`--dist loadfile`: each module whole on one worker,
as its module fixtures start services on fixed ports): the first worker to need the stack starts
it (under a file lock), and the controller stops it when both are done. Each test gets unique
topic, database and checkpoint names from `unique`.

The modules are handed out longest first (LONGEST_FIRST, then the rest in their own order;
`make test` passes --no-loadscope-reorder so xdist keeps this order instead of putting the
modules with the most tests first): a long module that started last would run alone at the end.
"""

from __future__ import annotations

import fcntl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conf.settings import Settings, load_settings

# the integration modules that take longest (test durations on a 2-core machine), longest first
LONGEST_FIRST = (
    "test_reconcile_e2e.py",
    "test_cluster.py",
    "test_chaos.py",
    "test_kafka_sasl.py",
    "test_connect_path.py",
    "test_gcs_checkpoint.py",
    "test_avro.py",
    "test_hostile_input.py",
    "test_exact_values.py",
    "test_prometheus.py",
    "test_fuzz.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: in-module order


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return load_settings()


def _started_marker(s: Settings) -> Path:
    """Present while the stack runs because a test run started it."""
    return Path(s.stack.dir) / "started-by-tests"


@pytest.fixture(scope="session")
def stack(base_settings: Settings) -> Iterator[Settings]:
    from scripts import stack as stack_ctl

    Path(base_settings.stack.dir).mkdir(parents=True, exist_ok=True)
    with open(Path(base_settings.stack.dir) / "tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker starts it; the other finds it running
        services = [stack_ctl.kafka_service(base_settings), stack_ctl.mongo_service(base_settings)]
        if not all(stack_ctl.running_pid(s) for s in services):
            _started_marker(base_settings).touch()
        stack_ctl.up(base_settings)
    yield base_settings


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In the controller (or the only process), after every test: stop the stack if this run
    started it."""
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller decides
        return
    s = load_settings()
    if _started_marker(s).exists():
        from scripts import stack as stack_ctl

        _started_marker(s).unlink()
        stack_ctl.down(s)


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
