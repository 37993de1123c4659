"""The SparkSession's configuration, derived from settings (no JVM started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conf.settings import GcsSettings, SparkSettings
from streaming.session import GCS_FILESYSTEM, ROCKSDB_PROVIDER, session_conf


def jars_dir(tmp_path: Path, *names: str) -> str:
    for name in names:
        (tmp_path / name).write_bytes(b"")
    return str(tmp_path)


def test_local_checkpoint_rocksdb_and_local_jars(tmp_path: Path) -> None:
    d = jars_dir(tmp_path, "spark-sql-kafka-0-10_2.13-4.0.0.jar", "kafka-clients-3.9.0.jar")
    conf = session_conf(SparkSettings(jars_dir=d, checkpoint_location=str(tmp_path / "ck")))
    assert conf["spark.sql.streaming.stateStore.providerClass"] == ROCKSDB_PROVIDER
    assert conf["spark.jars"].split(",") == sorted(str(p) for p in tmp_path.glob("*.jar"))
    assert "spark.hadoop.fs.gs.impl" not in conf


def test_gs_checkpoint_uses_googles_connector(tmp_path: Path) -> None:
    d = jars_dir(tmp_path, "spark-sql-kafka-0-10_2.13-4.0.0.jar")
    conf = session_conf(SparkSettings(jars_dir=d, checkpoint_location="gs://bucket/ck/reconcile"))
    assert conf["spark.hadoop.fs.gs.impl"] == GCS_FILESYSTEM


def test_an_emulator_points_the_connector_at_it_signed_out(tmp_path: Path) -> None:
    d = jars_dir(tmp_path, "spark-sql-kafka-0-10_2.13-4.0.0.jar")
    spark = SparkSettings(jars_dir=d, checkpoint_location="gs://bucket/ck")
    for host in ("http://127.0.0.1:4443", "127.0.0.1:4443/"):
        conf = session_conf(spark, GcsSettings(emulator_host=host))
        assert conf["spark.hadoop.fs.gs.storage.root.url"] == "http://127.0.0.1:4443/"
        assert conf["spark.hadoop.fs.gs.auth.type"] == "UNAUTHENTICATED"
        assert conf["spark.hadoop.fs.gs.operation.move.enable"] == "false"  # no move call there
        assert conf["spark.hadoop.fs.gs.impl"] == GCS_FILESYSTEM
    # without one: Google's service, with Application Default Credentials
    conf = session_conf(spark, GcsSettings(emulator_host=""))
    assert "spark.hadoop.fs.gs.storage.root.url" not in conf
    assert "spark.hadoop.fs.gs.auth.type" not in conf


def test_packages_instead_of_local_jars(tmp_path: Path) -> None:
    coords = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0"
    conf = session_conf(SparkSettings(jars_dir=str(tmp_path / "none"), packages=coords))
    assert conf["spark.jars.packages"] == coords and "spark.jars" not in conf


def test_missing_connector_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run scripts/setup.sh"):
        session_conf(SparkSettings(jars_dir=str(tmp_path)))


def test_local_checkpoints_use_the_file_system_manager_and_others_spark_default() -> None:
    from streaming.session import LOCAL_FILE_MANAGER, checkpoint_file_manager

    for local in ("/tmp/cp", "checkpoints/reconcile", "file:/tmp/cp", "file:///tmp/cp"):
        assert checkpoint_file_manager(local) == LOCAL_FILE_MANAGER, local
    for remote in ("gs://bucket/cp", "hdfs:///cp", "s3a://bucket/cp"):
        assert checkpoint_file_manager(remote) is None, remote
