"""Builds the SparkSession the job runs in, with Spark's Kafka source on its classpath."""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from conf.settings import GcsSettings, SparkSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
HDFS_PROVIDER = "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider"
GCS_FILESYSTEM = "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem"
GCS_ABSTRACT_FILESYSTEM = "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS"
REDACTION_REGEX = "(?i)secret|password|token|access[.]?key|jaas"  # Spark's default, and jaas


def connector_jars(spark: SparkSettings) -> list[str]:
    """Local jars from scripts/setup.sh; empty when SPARK_PACKAGES names them instead."""
    if spark.packages:
        return []
    jars = sorted(glob.glob(str(Path(spark.jars_dir) / "*.jar")))
    if not any("spark-sql-kafka" in j for j in jars):
        raise FileNotFoundError(
            f"Spark's Kafka source is not in {spark.jars_dir}: run scripts/setup.sh, "
            "or set SPARK_PACKAGES=org.apache.spark:spark-sql-kafka-0-10_2.13:<spark version>"
        )
    return jars


def gcs_hadoop_conf(gcs: GcsSettings) -> dict[str, str]:
    """Hadoop settings of Google's Cloud Storage connector (gcs-connector 3.x names): its
    classes, and with GCS_EMULATOR_HOST its root URL on the emulator, signed out. Without an
    emulator it signs in with Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS or
    gcloud's (on Dataproc, the VM's service account)."""
    conf = {"fs.gs.impl": GCS_FILESYSTEM, "fs.AbstractFileSystem.gs.impl": GCS_ABSTRACT_FILESYSTEM}
    if gcs.emulator_url:
        conf["fs.gs.storage.root.url"] = f"{gcs.emulator_url}/"  # + "storage/v1/", "upload/..."
        conf["fs.gs.auth.type"] = "UNAUTHENTICATED"
        # a rename as copy + delete: the emulator (fake-gcs-server) has no objects.move call,
        # which the connector uses by default for renames within a bucket
        conf["fs.gs.operation.move.enable"] = "false"
    return conf


# Checkpoints on a local disk are written through Hadoop's FileSystem API, not FileContext.
# FileContext's local file system resolves symbolic links by running `readlink` in a child
# process of the JVM for each status and rename, several per file: ~45 ms of the offsets log,
# ~50 ms of the commit log and ~70 ms of each state store's changelog commit in every batch
# (measured with a RocksDB aggregation: 45/52/140 ms against 12/16/34 ms). A local rename is
# atomic either way (POSIX rename), which is what a checkpoint needs. Other file systems
# (gs://, hdfs://) keep Spark's default: there FileContext's atomic rename with overwrite is
# the one to trust.
CHECKPOINT_FILE_MANAGER = "spark.sql.streaming.checkpointFileManagerClass"
LOCAL_FILE_MANAGER = "org.apache.spark.sql.execution.streaming.FileSystemBasedCheckpointFileManager"


def checkpoint_file_manager(location: str) -> str | None:
    """The checkpoint file manager for a checkpoint at `location` (None: Spark's default)."""
    scheme = location.split("://", 1)[0] if "://" in location else "file"
    return LOCAL_FILE_MANAGER if scheme == "file" else None


@contextmanager
def session_setting(spark: SparkSession, key: str, value: str | None) -> Iterator[None]:
    """`key` set to `value` (None: Spark's default) while the block starts a query, and the
    session's own value back after it. A query reads its settings when it starts (its offsets
    and commit logs are made then, its batches run in a copy of the session taken then), so a
    setting one query needs does not leak into the next query the same session starts (a gs://
    checkpoint started after a local one would get the local file manager)."""
    before = spark.conf.get(key, None)
    _put(spark, key, value)
    try:
        yield
    finally:
        _put(spark, key, before)


def _put(spark: SparkSession, key: str, value: str | None) -> None:
    if value is None:
        spark.conf.unset(key)
    else:
        spark.conf.set(key, value)


def session_conf(spark: SparkSettings, gcs: GcsSettings | None = None) -> dict[str, str]:
    conf = {
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        "spark.sql.streaming.stateStore.providerClass": (
            ROCKSDB_PROVIDER if spark.state_store == "rocksdb" else HDFS_PROVIDER
        ),
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        # The job has one stateful operator and re-declares the watermark column before it so
        # that late rows reach the state function (streaming/job.py); that redefinition is
        # allowed only with this set to false.
        "spark.sql.streaming.statefulOperator.allowMultiple": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": spark.driver_memory,
        "spark.sql.adaptive.enabled": "false",
        "spark.python.worker.reuse": "true",
        # The Kafka JAAS option holds the password. Spark already hides a conf or option whose
        # key or value matches the first pattern (its value has `password=`); `jaas` makes the
        # key itself match, in the UI, event log and plans as well.
        "spark.redaction.regex": REDACTION_REGEX,
        "spark.sql.redaction.options.regex": "(?i)url|jaas",
    }
    gcs = gcs or GcsSettings(emulator_host="")
    if spark.checkpoint_location.startswith("gs://") or gcs.emulator_url:
        # Google's connector (on Dataproc already; locally from scripts/setup.sh)
        conf.update({f"spark.hadoop.{k}": v for k, v in gcs_hadoop_conf(gcs).items()})
    jars = connector_jars(spark)
    if jars:
        conf["spark.jars"] = ",".join(jars)
    if spark.packages:
        conf["spark.jars.packages"] = spark.packages
    return conf


def build_session(  # type: ignore[no-untyped-def]
    spark: SparkSettings,
    app_name: str = "payments-reconciliation",
    gcs: GcsSettings | None = None,
    extra: dict[str, str] | None = None,
):
    """A SparkSession for `spark.master` (ignored under spark-submit, which sets its own);
    `extra`: more Spark settings (a benchmark's event log)."""
    from pyspark.sql import SparkSession

    # the Python workers must run the same interpreter as the driver (the project's venv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # pyspark 4.0's own Arrow serializer trips a pandas FutureWarning on every batch
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    builder = SparkSession.builder.appName(app_name)
    if "SPARK_SUBMIT_OPTS" not in os.environ and not os.environ.get("SPARK_ENV_LOADED"):
        builder = builder.master(spark.master)
    for key, value in {**session_conf(spark, gcs), **(extra or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
