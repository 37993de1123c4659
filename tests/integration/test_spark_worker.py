"""In the real job's Python workers (local mode; test_cluster.py does the same on the cluster),
Spark's archives are on the path and imported from, and once a worker-side function of the job
has run, pyspark's per-task `importlib.invalidate_caches()` reads none of them again."""

from __future__ import annotations

from typing import Any

import pytest

from conf.spark_worker import is_spark_archive

pytestmark = pytest.mark.integration


def test_workers_read_spark_archives_once(spark: Any) -> None:
    # defined here, so that Spark ships it by value (the workers cannot import tests/)
    def archive_reads(_: Any) -> Any:
        """A task's view: Spark's archives on its path and among its importers, and the archives
        one `importlib.invalidate_caches()` reads after the job's `lean_imports`."""
        import importlib
        import os
        import sys
        import zipimport

        from conf.spark_worker import is_spark_archive, lean_imports

        lean_imports()
        reads: list[str] = []
        original = zipimport._read_directory  # type: ignore[attr-defined]

        def counting(archive: str) -> Any:
            reads.append(archive)
            return original(archive)

        zipimport._read_directory = counting  # type: ignore[attr-defined]
        try:
            importlib.invalidate_caches()
        finally:
            zipimport._read_directory = original  # type: ignore[attr-defined]
        cached = [
            k for k, f in sys.path_importer_cache.items() if isinstance(f, zipimport.zipimporter)
        ]
        on_path = [p for p in sys.path if is_spark_archive(p)]
        cached = [k for k in cached if is_spark_archive(k)]
        yield {"pid": os.getpid(), "reads": reads, "path": on_path, "cached": cached}

    got = spark.sparkContext.parallelize(range(8), 8).mapPartitions(archive_reads).collect()
    assert len(got) == 8
    assert all(g["path"] and g["cached"] for g in got), got  # the cost is real here
    assert not [r for g in got for r in g["reads"] if is_spark_archive(r)], got
    assert len({g["pid"] for g in got}) < 8  # workers are reused: the hook stays with them
