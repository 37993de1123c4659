"""Spark's Python workers: what the job's worker-side functions call first (`lean_imports`).

Before every task, pyspark's worker calls `importlib.invalidate_caches()`
(`pyspark.worker_util.setup_spark_files`), so that files added with `addPyFile` become
importable. On Python 3.11 and 3.12 that makes every cached `zipimporter` read its archive's
central directory again, and Spark puts its own archives first on every worker's PYTHONPATH:
`pyspark.zip` (1,220 entries), `py4j-*-src.zip` and the spark-core jar (5,261 entries; the
standard library's Jython probes in `copy` and `pickle` make its `org/` a package). A worker
holds 16 such importers once pyspark is imported: about 80 ms of every task, whatever it
carries, which made most of a live micro-batch (docs/benchmarks.md; Python 3.13 reads lazily,
and Spark's own fix, SPARK-54744, is in no 4.x release).

`lean_imports` gives Spark's archives an importer whose directory is read once per process:
they never change under a running worker. Everything else keeps Python's own importers, the
`--py-files` zip of the project included, so a file added while the job runs is still found.
Nothing is removed from `sys.path`, and the workers keep the pyspark that matches the JVM.
It travels with the project's code, so it works wherever the job runs: local mode,
spark-submit on a standalone cluster, Dataproc (pyspark from the image), docker-compose.
"""

from __future__ import annotations

import os
import sys
import zipimport

# Set to 0 to keep Python's own importers for Spark's archives too (the benchmarks compare the
# two: `python -m scripts.bench_pipeline latency --compare-lean-imports`). Read by the workers,
# which inherit the driver's environment.
SWITCH = "PIPELINE_LEAN_WORKER_IMPORTS"
_installed = False


def is_spark_archive(path: str) -> bool:
    """`path` is Spark's pyspark.zip, a py4j source zip or a jar, or a folder inside one."""
    for part in path.replace(os.sep, "/").split("/"):
        if part == "pyspark.zip" or part.endswith(".jar"):
            return True
        if part.startswith("py4j-") and part.endswith("-src.zip"):
            return True
    return False


class ReadOnceZipImporter(zipimport.zipimporter):
    """A zipimporter that keeps the directory it read: `invalidate_caches` does nothing."""

    def invalidate_caches(self) -> None:
        pass


def _hook(path: str) -> ReadOnceZipImporter:
    if not is_spark_archive(path):
        raise ImportError(path)  # the next hook (Python's own) takes it
    return ReadOnceZipImporter(path)


def lean_imports() -> None:
    """Install the hook once per process, and swap the importers already cached for Spark's
    archives (each keeps the directory it has read). Cheap after the first call."""
    global _installed
    if _installed:
        return
    _installed = True
    if os.environ.get(SWITCH, "1") == "0":
        return
    sys.path_hooks.insert(0, _hook)
    for key, finder in list(sys.path_importer_cache.items()):
        if type(finder) is zipimport.zipimporter and is_spark_archive(key):
            sys.path_importer_cache[key] = ReadOnceZipImporter(key)
