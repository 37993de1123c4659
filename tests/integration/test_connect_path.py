"""The Kafka Connect path end to end: the job with PIPELINE_WRITE_TO=kafka publishes its documents
through Spark's Kafka sink, and Kafka Connect's MongoDB sink (a worker of this module's own,
scripts/connect.py, REST on port 28384) upserts them into FerretDB.

- The dirty scenario through job -> Kafka -> Connect -> MongoDB equals the ground truth (the same
  comparison as the direct path, every per-minute figure included).
- kill -9 of the Connect worker mid-stream (it has written part of the documents; the job,
  small batches, is usually still publishing), then a restart: the worker replays what it had
  not committed, and MongoDB still equals the truth.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conf.settings import Settings
from producers.topics import ensure_topics
from scripts import connect
from scripts.check_truth import differences
from scripts.stack import running_pid
from sinks.mongo_io import MongoSink
from tests.integration.helpers import (
    connect_worker,
    docs,
    drain,
    isolated,
    mongo_db,
    topic_names,
    wait_for,
)
from tests.integration.test_reconcile_e2e import (
    assert_equals_truth,
    load_scenario,
    mongo_state,
    small_batches,
)

pytestmark = pytest.mark.integration

PORT = 28384
CONVERGE_S = 120.0  # the connector writes at the server's pace, after the job has published


@pytest.fixture(scope="module")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("connect-path")
    with connect_worker(settings, home, f"cp-{uuid.uuid4().hex[:8]}", PORT) as s:
        yield s


def over_connect(worker: Settings, name: str, checkpoint: Path, per_trigger: int) -> Settings:
    """A test's own topics, database, checkpoint and connector, on the module's worker; the job
    publishes (PIPELINE_WRITE_TO=kafka); the sink for them created and RUNNING."""
    s = small_batches(isolated(worker, name, str(checkpoint)), per_trigger)
    s = s.model_copy(
        update={
            "pipeline": s.pipeline.model_copy(update={"write_to": "kafka"}),
            "connect": worker.connect.model_copy(update={"connector": f"{name}-sink"}),
        }
    )
    ensure_topics(s, topic_names(s), s.topics.partitions)  # (load_scenario makes the inputs)
    connect.create(s)
    connect.wait_running(s, 60)
    return s


def converged(s: Settings, truth: dict[str, Any], timeout: float = CONVERGE_S) -> None:
    """Wait until MongoDB shows the truth's documents (Connect writes after the job is done)."""
    wait_for(
        lambda: differences(truth, *mongo_state(s)) == [],
        lambda: f"MongoDB at the truth {differences(truth, *mongo_state(s))}",
        timeout,
        every=1.0,
    )


def test_truth_through_kafka_connect(
    spark, worker: Settings, unique: Callable[[str], str], tmp_path: Path
) -> None:
    s = over_connect(
        worker, unique("cx"), tmp_path / "checkpoint", per_trigger=150
    )  # per source: batch 0 ends before the late events
    truth = load_scenario(s, n_orders=400)
    drain(spark, s, MongoSink(s))
    converged(s, truth)
    assert_equals_truth(s, truth)
    outcomes = docs(s, s.mongo.outcomes_collection).values()
    # the first outcome's `order` fields survive the later outcomes (merged, not replaced)
    assert all("order" in d and "kind" in d and "timing" in d for d in outcomes)
    status = connect.connector_status(s)
    assert status and all(t["state"] == "RUNNING" for t in status["tasks"])


def test_kill_9_of_the_worker_mid_stream_then_restart_equals_truth(
    spark, worker: Settings, unique: Callable[[str], str], tmp_path: Path
) -> None:
    s = over_connect(worker, unique("ck"), tmp_path / "checkpoint", per_trigger=100)
    truth = load_scenario(s, n_orders=400)
    failed: list[BaseException] = []

    def run_job() -> None:
        try:
            drain(spark, s, MongoSink(s))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failed.append(exc)

    job = threading.Thread(target=run_job)
    job.start()
    outcomes = mongo_db(s)[s.mongo.outcomes_collection]
    deadline = time.monotonic() + 180
    while outcomes.find_one() is None:  # the connector's first documents are in
        assert not failed and time.monotonic() < deadline, failed
        time.sleep(0.1)
    pid = running_pid(connect.service(s))
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while running_pid(connect.service(s)) is not None:
        time.sleep(0.1)
    written_at_kill = outcomes.count_documents({})
    time.sleep(3)  # the job may go on publishing while no worker runs
    connect.start_worker(s)
    connect.wait_running(s, 90)
    job.join(timeout=600)
    assert not job.is_alive() and not failed, failed
    converged(s, truth)
    assert_equals_truth(s, truth)
    # the kill came mid-stream: the connector had written part of the outcomes
    assert written_at_kill < len(truth["orders"])
