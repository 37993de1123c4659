"""The streaming job end to end against the producers' ground truth: every kind of dirt, a restart
from the checkpoint, a kill -9 in the middle of a batch write, and a replayed batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conf.settings import REPO_ROOT, Settings
from contract.outputs import TALLY
from producers.scenario import ScenarioConfig, generate
from producers.truth import compute_truth
from scripts.check_truth import differences
from sinks.batch_stats import BatchStats, PartitionStats
from sinks.documents import Row
from sinks.mongo_io import MongoSink, PartitionWriter, PaymentClaims
from streaming.job import start_query
from tests.integration.helpers import (
    assert_figures_equal_truth,
    create_topics,
    docs,
    drain,
    job_env,
    mongo_db,
    produce,
    with_shape,
)
from tests.scenarios import DIRTY

pytestmark = pytest.mark.integration


def load_scenario(s: Settings, n_orders: int = 600, seed: int = 7) -> dict[str, Any]:
    """Produce a seeded scenario with every kind of dirt; return its truth (as JSON dict)."""
    cfg = ScenarioConfig(
        n_orders=n_orders, seed=seed, event_rate=0.2, rules=s.pipeline.rules(), **DIRTY
    )
    scenario = generate(cfg)
    names = {"orders": s.topics.orders, "payments": s.topics.payments}
    create_topics(s)
    produce(s, ((names[e.topic], e.key, e.value) for e in scenario.emissions))
    truth = compute_truth(scenario, s.topics.orders, s.topics.payments).to_json()
    # the scenario really has every kind of dirt, and some outcomes of each kind
    statuses = {o["status"] for o in truth["orders"]}
    assert {"PAID", "UNDERPAID", "OVERPAID", "UNPAID", "PENDING"} <= statuses
    reasons = {d["reason"].split(":")[0] for d in truth["dead_letters"]}
    assert {"late", "invalid_json", "missing_field", "wrong_type"} <= reasons
    assert any(o["final"] for o in truth["orphans"])
    return truth


def small_batches(s: Settings, per_trigger: int = 250) -> Settings:
    """Several micro-batches per run, so the watermark moves between them."""
    return s.model_copy(
        update={"pipeline": s.pipeline.model_copy(update={"max_offsets_per_trigger": per_trigger})}
    )


def mongo_state(s: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        [
            *docs(s, s.mongo.outcomes_collection).values(),
            *docs(s, s.mongo.orphans_collection).values(),
        ],
        list(docs(s, s.mongo.dead_letters_collection).values()),
    )


def assert_equals_truth(s: Settings, truth: dict[str, Any]) -> None:
    outcomes, dead = mongo_state(s)
    assert differences(truth, outcomes, dead) == []
    n_orphans = sum(o["final"] for o in truth["orphans"])
    assert len(outcomes) == len(truth["orders"]) + n_orphans
    assert len(dead) == len(truth["dead_letters"])
    assert_figures_equal_truth(s, truth)


class RecordingSink(MongoSink):
    """The real sink, also keeping each batch's rows by partition so that a test can replay
    them (collected to the driver for the test only; the sink itself never does)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, on_batch=lambda stats: self.stats.append(stats))
        self.batches: dict[int, dict[int, list[Row]]] = {}
        self.stats: list[BatchStats] = []

    def write_batch(self, batch_df: Any, batch_id: int) -> list[PartitionStats]:
        from pyspark.sql import functions as sf

        batch_df = batch_df.persist()  # computed once: for the rows kept here and for the sink
        by_partition: dict[int, list[Row]] = {}
        for r in batch_df.withColumn("_p", sf.spark_partition_id()).collect():
            row = Row(r["kind"], r["doc_id"], r["doc"], r["kafka_ts"], r["raw_key"], r["raw_value"])
            by_partition.setdefault(r["_p"], []).append(row)
        self.batches[batch_id] = by_partition
        try:
            return super().write_batch(batch_df, batch_id)
        finally:
            batch_df.unpersist()


def test_every_kind_of_dirt_equals_the_truth_and_replay_changes_nothing(
    spark, pipeline_settings: Settings
) -> None:
    s = small_batches(pipeline_settings)
    truth = load_scenario(s)
    sink = RecordingSink(s)
    sink.ensure_indexes()
    drain(spark, s, sink)
    assert len(sink.batches) >= 4
    assert_equals_truth(s, truth)

    # Spark re-runs its last batch after a crash: its figures are folded in again, and count once
    figures = mongo_db(s)[s.mongo.minutely_collection]
    before_figures = list(figures.find({}, {"updated_at": 0}))
    assert sink.figures is not None and sink.stats[-1].tally
    sink.figures.write(sink.stats[-1], sink.marker_id(sink.stats[-1].batch_id))
    assert list(figures.find({}, {"updated_at": 0})) == before_figures

    before = mongo_state(s)
    writer = PartitionWriter(s)
    last = max(b for b, parts in sink.batches.items() if parts)
    for partition, rows in sink.batches[last].items():  # its markers: already written
        assert writer.write_rows(rows, last, partition).skipped
    # as if the job crashed before the markers: every partition of the busiest batch again
    busiest = max(sink.batches, key=lambda b: sum(map(len, sink.batches[b].values())))
    markers = mongo_db(s)[s.mongo.batches_collection]
    for partition, rows in sink.batches[busiest].items():
        markers.delete_one({"_id": writer.partition_marker_id(partition)})
        replayed = writer.write_rows(rows, busiest, partition)
        documents = [r for r in rows if r.kind != TALLY]
        assert not replayed.skipped and replayed.written == len(documents)
    assert mongo_state(s) == before  # every field, timing included


@pytest.mark.parametrize("shape", ["state", "tws"])
def test_restart_from_checkpoint_halfway(spark, pipeline_settings: Settings, shape: str) -> None:
    s = with_shape(small_batches(pipeline_settings, per_trigger=150), shape)
    truth = load_scenario(s, seed=11)
    sink = MongoSink(s)
    query = start_query(spark, s, sink, claims=PaymentClaims(s))
    try:
        deadline = time.monotonic() + 300
        while (query.lastProgress or {}).get("batchId", -1) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        query.stop()
    # stopped halfway: some outcomes written, the truth not reached yet
    assert docs(s, s.mongo.outcomes_collection)
    assert differences(truth, *mongo_state(s))

    drain(spark, s, MongoSink(s))
    assert_equals_truth(s, truth)


def _wait_for_pause(job: subprocess.Popen[Any], flag: Path) -> None:
    """Until the job pauses in the middle of writing batch 2 (it touches `flag` then)."""
    deadline = time.monotonic() + 240
    while not flag.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert flag.exists(), "the job never reached the middle of batch 2"


def _rerun_to_the_end_equals_truth(s: Settings, truth: dict[str, Any]) -> None:
    """Restart the job from its checkpoint, drain the topics, compare with the truth. The
    restart re-runs the cut-off batch with the offsets its checkpoint holds, then reads the rest
    in batches of any size (small ones were needed only to cut the first run mid-way)."""
    rerun = subprocess.run(
        [sys.executable, "-m", "streaming", "--available-now"],
        cwd=REPO_ROOT,
        env=job_env(small_batches(s, per_trigger=5000)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_equals_truth(s, truth)


@pytest.mark.parametrize("shape", ["state", "tws"])
def test_kill_9_mid_batch_then_restart_equals_truth(
    pipeline_settings: Settings, tmp_path: Path, shape: str
) -> None:
    s = with_shape(small_batches(pipeline_settings, per_trigger=200), shape)
    truth = load_scenario(s, seed=23)
    flag = tmp_path / "paused"
    job = subprocess.Popen(
        [sys.executable, "-m", "streaming"],
        cwd=REPO_ROOT,
        env=job_env(s, PIPELINE_FAULT_PAUSE_AT_BATCH="2", PIPELINE_FAULT_FLAG_FILE=str(flag)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_pause(job, flag)
        written_before_kill = len(docs(s, s.mongo.outcomes_collection))
        os.kill(job.pid, signal.SIGKILL)
        job.wait(30)
    finally:
        if job.poll() is None:
            job.kill()
    assert written_before_kill > 0
    markers = {d["_id"] for d in mongo_db(s)[s.mongo.batches_collection].find()}
    assert MongoSink(s).marker_id(2) not in markers  # batch 2 really was cut off mid-write

    _rerun_to_the_end_equals_truth(s, truth)


def test_sigterm_mid_batch_finishes_the_batch_and_exits_cleanly(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    # small batches, so that data is left for the restart whichever batch the stop lands after
    # (a slow stop may let batch 3 finish too): Spark runs the batch that applies the final
    # watermark only after one that read data, never on a restart with nothing new to read
    s = small_batches(pipeline_settings, per_trigger=100)
    truth = load_scenario(s, seed=31)
    flag = tmp_path / "paused"
    env = job_env(s, PIPELINE_FAULT_PAUSE_AT_BATCH="2", PIPELINE_FAULT_FLAG_FILE=str(flag),
                   PIPELINE_FAULT_PAUSE_S="4")  # fmt: skip
    log = tmp_path / "job.log"
    with log.open("w") as out:
        job = subprocess.Popen(
            [sys.executable, "-m", "streaming"], cwd=REPO_ROOT, env=env, stdout=out, stderr=out
        )
        try:
            _wait_for_pause(job, flag)
            job.send_signal(signal.SIGTERM)  # half of batch 2 is written at this point
            job.wait(120)
        finally:
            if job.poll() is None:
                job.kill()
    stderr = log.read_text()
    assert job.returncode == 0, stderr[-3000:]
    assert "stopping after the current batch" in stderr
    # the batch in flight was finished and committed, not cut off
    markers = {d["_id"] for d in mongo_db(s)[s.mongo.batches_collection].find()}
    assert MongoSink(s).marker_id(2) in markers
    assert (Path(s.spark.checkpoint_location) / "commits" / "2").exists()

    _rerun_to_the_end_equals_truth(s, truth)
