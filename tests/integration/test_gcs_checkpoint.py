"""gs:// through Google's Cloud Storage API.

Without an emulator, a gs:// checkpoint reaches Google's Cloud Storage connector (installed by
scripts/setup.sh) and stops at Google's sign-in: no bucket is reachable from here, so the query
fails at start with the connector's own error, not with Hadoop's "No FileSystem for scheme".

With fake-gcs-server (scripts/gcs.py; this module starts its own on a free port of 4450-4459 and
stops it at the end), Google's connector and google-cloud-storage talk to a real server: the job
keeps its checkpoint there through a stop halfway and a restart and equals the truth, and its log
is rotated and uploaded there, and read back."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conf.settings import REPO_ROOT, GcsSettings, JobLogSettings, Settings
from producers.scenario import ScenarioConfig, generate
from scripts import gcs
from scripts.check_truth import differences
from scripts.stack import Service, stop
from sinks.mongo_io import MongoSink, PaymentClaims
from streaming.job import start_query
from streaming.log_upload import build_handler, storage_client
from streaming.session import (
    CHECKPOINT_FILE_MANAGER,
    LOCAL_FILE_MANAGER,
    gcs_hadoop_conf,
    session_setting,
)
from tests.integration.helpers import create_topics, docs, drain, job_env, produce
from tests.integration.test_prometheus import free_port
from tests.integration.test_reconcile_e2e import (
    assert_equals_truth,
    load_scenario,
    mongo_state,
    small_batches,
)
from tests.scenarios import DIRTY

pytestmark = pytest.mark.integration


def test_gs_checkpoint_fails_at_start_with_the_connectors_error(spark) -> None:
    writer = (
        spark.readStream.format("rate")
        .load()
        .writeStream.format("noop")
        .option("checkpointLocation", "gs://payments-recon-no-such-bucket/checkpoint")
    )
    with pytest.raises(Exception) as info:
        q = writer.start()
        q.stop()
    message = str(info.value)
    assert "No FileSystem for scheme" not in message
    # without credentials: "ComputeEngineCredentials cannot find the metadata server";
    # with them: the bucket does not exist or is not ours
    assert any(w in message for w in ("Credentials", "metadata server", "404", "403")), message


def test_a_local_checkpoints_file_manager_stays_with_its_query(spark, tmp_path: Path) -> None:
    """The local file manager start_query sets is the started query's own: its stream keeps it,
    the session gets its value back, and a gs:// query started next in the same session still
    reaches Google's connector (it met Hadoop's "No FileSystem for scheme" when it leaked)."""
    before = spark.conf.get(CHECKPOINT_FILE_MANAGER, None)
    writer = (
        spark.readStream.format("rate")
        .load()
        .writeStream.format("noop")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
    )
    with session_setting(spark, CHECKPOINT_FILE_MANAGER, LOCAL_FILE_MANAGER):
        query = writer.start()
    try:
        stream_conf = query._jsq.streamingQuery().sparkSessionForStream().conf()
        assert stream_conf.get(CHECKPOINT_FILE_MANAGER) == LOCAL_FILE_MANAGER
        assert spark.conf.get(CHECKPOINT_FILE_MANAGER, None) == before
        test_gs_checkpoint_fails_at_start_with_the_connectors_error(spark)
    finally:
        query.stop()


@pytest.fixture(scope="module")
def emulator(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """fake-gcs-server on a port of its own; its base URL (what GCS_EMULATOR_HOST says)."""
    home = tmp_path_factory.mktemp("gcs")
    port = free_port(range(4450, 4460))
    svc = Service("gcs", home, gcs.command(gcs.binary(settings.stack.dir), port), gcs.MARKER)
    try:
        gcs.launch(svc, [], timeout=60)
        yield gcs.address(svc)
    finally:
        stop(svc)


def objects(url: str, bucket: str, prefix: str = "") -> list[Any]:
    """The bucket's objects under `prefix`, by name, listed through google-cloud-storage."""
    client = storage_client(GcsSettings(emulator_host=url))
    return sorted(client.list_blobs(bucket, prefix=prefix), key=lambda b: b.name)


@contextmanager
def on_emulator(spark: Any, url: str) -> Iterator[None]:
    """The session's connector settings pointed at the emulator for the block, then as they were
    (session settings are copied into each query's Hadoop configuration; the connector's
    FileSystem is cached per bucket, and each test's bucket is new)."""
    conf = gcs_hadoop_conf(GcsSettings(emulator_host=url))
    before = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, old in before.items():
            if old is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, old)


def test_gs_checkpoint_on_the_emulator_restart_halfway_equals_truth(
    spark, pipeline_settings: Settings, emulator: str, unique
) -> None:
    bucket = unique("ck")
    assert gcs.ensure_bucket(emulator, bucket)
    s = small_batches(pipeline_settings, per_trigger=150)
    spark_settings = s.spark.model_copy(update={"checkpoint_location": f"gs://{bucket}/reconcile"})
    s = s.model_copy(update={"spark": spark_settings})
    truth = load_scenario(s, seed=11)
    with on_emulator(spark, emulator):
        query = start_query(spark, s, MongoSink(s), claims=PaymentClaims(s))
        try:
            deadline = time.monotonic() + 300
            while (query.lastProgress or {}).get("batchId", -1) < 1:
                assert time.monotonic() < deadline and query.isActive, query.exception()
                time.sleep(0.2)
        finally:
            query.stop()
        # stopped halfway: some outcomes written, the truth not reached yet
        assert docs(s, s.mongo.outcomes_collection)
        assert differences(truth, *mongo_state(s))
        halfway = objects(emulator, bucket, "reconcile/commits/")

        drain(spark, s, MongoSink(s))
    assert_equals_truth(s, truth)

    names = [b.name for b in objects(emulator, bucket, "reconcile/")]
    assert "reconcile/metadata" in names
    for folder in ("offsets", "commits", "state"):
        assert any(n.startswith(f"reconcile/{folder}/") for n in names), (folder, names[:20])

    def batch_ids(folder: str) -> list[int]:
        tails = [n.rsplit("/", 1)[1] for n in names if n.startswith(f"reconcile/{folder}/")]
        return sorted(int(t) for t in tails if t.isdigit())

    commits = batch_ids("commits")
    # the restart went on from the checkpoint: the halfway commits are there, and more after them
    assert commits == list(range(len(commits))) and len(commits) > len(halfway) >= 2
    assert batch_ids("offsets")[: len(commits)] == commits
    assert any("/state/0/" in n and n.endswith(".changelog") for n in names)


def log_handler(url: str, tmp_path: Path, **log: Any) -> Any:
    settings = JobLogSettings(file=str(tmp_path / "job.log"), **log)
    handler = build_handler(settings, GcsSettings(emulator_host=url), run="run-1")
    assert handler is not None
    return handler


def write_lines(handler: Any, n: int) -> list[str]:
    """`n` numbered lines through a logger of their own into `handler`, which is then closed."""
    log = logging.getLogger(f"test.job_log.{id(handler)}")
    log.propagate, log.level = False, logging.INFO
    log.addHandler(handler)
    lines = [f"line={i:04d} " + "x" * 60 for i in range(n)]
    try:
        for line in lines:
            log.info(line)
    finally:
        log.removeHandler(handler)
        handler.close()
    return [line.split()[0] for line in lines]


def test_the_log_rotates_and_every_file_is_uploaded_in_order(
    emulator: str, unique, tmp_path: Path
) -> None:
    bucket = unique("logs")
    assert gcs.ensure_bucket(emulator, bucket)
    handler = log_handler(emulator, tmp_path, max_bytes=2048, backups=2, gcs_bucket=bucket,
                          gcs_prefix="logs/job")  # fmt: skip
    written = write_lines(handler, 120)

    blobs = objects(emulator, bucket)
    names = [b.name for b in blobs]
    assert len(names) >= 5 and names == [f"logs/job/run-1/{i:05d}.log" for i in range(len(names))]
    assert handler.uploaded == names
    texts = [b.download_as_bytes().decode() for b in blobs]
    assert all(len(t.encode()) <= 2048 for t in texts[:-1])  # the rotated ones: one size each
    assert re.findall(r"line=\d{4}", "".join(texts)) == written  # each line once, in order
    # on disk: the current file and JOB_LOG_BACKUPS rotated ones; the rest is only in the bucket
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "job.log", "job.log.1", "job.log.2"
    ]  # fmt: skip
    assert not any((tmp_path / "job.log.pending").iterdir())  # each upload's link removed


def test_an_upload_that_fails_is_a_warning_and_logging_goes_on(
    emulator: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handler = log_handler(emulator, tmp_path, max_bytes=1024, backups=1,
                          gcs_bucket="payments-no-such-bucket", upload_timeout_s=5)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="streaming.log_upload"):
        written = write_lines(handler, 40)
    assert handler.uploaded == []
    failed = [r.getMessage() for r in caplog.records if "log upload failed" in r.getMessage()]
    assert failed and all("NotFound" in m for m in failed), failed
    # the lines are still written: the newest ones on disk, in order
    on_disk = (tmp_path / "job.log.1").read_text() + (tmp_path / "job.log").read_text()
    kept = re.findall(r"line=\d{4}", on_disk)
    assert kept and kept == written[-len(kept) :]


def test_the_job_checkpoints_to_gs_and_uploads_its_log_at_exit(
    pipeline_settings: Settings, emulator: str, unique, tmp_path: Path
) -> None:
    """`python -m streaming` with only settings: the session's connector settings and the log
    upload come from GCS_EMULATOR_HOST, SPARK_CHECKPOINT_LOCATION and JOB_LOG_*."""
    s = pipeline_settings
    bucket = unique("job")
    assert gcs.ensure_bucket(emulator, bucket)
    cfg = ScenarioConfig(n_orders=100, seed=5, event_rate=0.2, rules=s.pipeline.rules(), **DIRTY)
    names = {"orders": s.topics.orders, "payments": s.topics.payments}
    create_topics(s)
    produce(s, ((names[e.topic], e.key, e.value) for e in generate(cfg).emissions))
    local_log = tmp_path / "job.log"
    env = job_env(s, SPARK_CHECKPOINT_LOCATION=f"gs://{bucket}/checkpoint",
                  GCS_EMULATOR_HOST=emulator, JOB_LOG_FILE=str(local_log),
                  JOB_LOG_GCS_BUCKET=bucket, JOB_LOG_GCS_PREFIX="logs")  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "streaming", "--available-now"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    blobs = objects(emulator, bucket)
    logs = [b for b in blobs if b.name.startswith("logs/")]
    assert len(logs) == 1 and re.fullmatch(r"logs/\d{8}T\d{6}Z-.+-\d+/00000\.log", logs[0].name)
    uploaded = logs[0].download_as_bytes().decode()
    assert "query stopped last_batch_id=" in uploaded
    assert local_log.read_text().startswith(uploaded)
    assert any(b.name.startswith("checkpoint/commits/") for b in blobs)
    assert docs(s, s.mongo.outcomes_collection)
