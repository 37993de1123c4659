"""conf/spark_worker.py: in a Python process whose path starts with Spark's archives, as Spark
starts its workers, `importlib.invalidate_caches()` (which pyspark's worker calls before every
task) reads Spark's archives again, and after `lean_imports` it reads none of them, while the
project's own zip and folders keep Python's importers (a module added later is still found)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pyspark

from conf.spark_worker import is_spark_archive

CHILD = r"""
import importlib, json, sys, zipimport
reads = []
original = zipimport._read_directory
def counting(archive):
    reads.append(archive)
    return original(archive)
zipimport._read_directory = counting

def invalidate():
    reads.clear()
    importlib.invalidate_caches()
    return sorted(set(reads))

import pyspark.daemon, pyspark.worker, pyspark.sql  # as a worker does, from pyspark.zip
import shipped
before = invalidate()
path_before = list(sys.path)
from conf.spark_worker import lean_imports
lean_imports()
lean_imports()  # once per process, however often it is called
import pyspark.sql.pandas.types  # imported after the hook: also read once
after = invalidate()
open(sys.argv[1] + "/added.py", "w").write("X = 1\n")  # a module that appears later
importlib.invalidate_caches()
import added
same = sys.path == path_before
print(json.dumps({"before": before, "after": after, "pyspark": pyspark.__file__,
                  "shipped": shipped.__file__, "added": added.X, "path_same": same}))
"""


def spark_pythonpath() -> list[str]:
    """The archives Spark puts first on a worker's PYTHONPATH (PythonUtils.sparkPythonPath)."""
    home = Path(pyspark.__file__).parent
    return [str(home / "python/lib/pyspark.zip"), *map(str, (home / "python/lib").glob(
        "py4j-*-src.zip")), *map(str, (home / "jars").glob("spark-core_*.jar"))]  # fmt: skip


def test_spark_archives_are_read_once_per_worker_process(tmp_path: Path) -> None:
    shipped = tmp_path / "payments-pipeline.zip"  # as the --py-files zip is named
    with zipfile.ZipFile(shipped, "w") as z:
        z.writestr("shipped/__init__.py", "")
    later = tmp_path / "later"
    later.mkdir()
    repo = Path(__file__).resolve().parents[2]
    archives = spark_pythonpath()
    assert len(archives) == 3 and all(Path(a).exists() for a in archives)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*archives, str(shipped), str(repo),
                                                        str(later)])}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", CHILD, str(later)], env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    got = json.loads(out.strip().splitlines()[-1])
    assert "pyspark.zip" in got["pyspark"]  # the worker's pyspark is Spark's, from the zip
    assert any(is_spark_archive(a) for a in got["before"])  # the cost: every task read these
    assert got["after"] == [str(shipped)], got["after"]  # now only the project's own zip
    assert str(shipped) in got["shipped"] and got["added"] == 1 and got["path_same"]


def test_what_counts_as_spark_archive() -> None:
    home = "/x/site-packages/pyspark"
    for path in (f"{home}/python/lib/pyspark.zip", f"{home}/python/lib/pyspark.zip/pyspark/sql",
                 f"{home}/python/lib/py4j-0.10.9.9-src.zip", f"{home}/jars/spark-core_2.13.jar",
                 "/yarn/container_1/pyspark.zip"):  # fmt: skip
        assert is_spark_archive(path), path
    for path in ("/tmp/payments-pipeline.zip", "/srv/app", "/x/pyspark.zip.d/y", ""):
        assert not is_spark_archive(path), path
