"""spark-submit the streaming job to the local Spark cluster, the way Dataproc runs it.

    python -m scripts.submit [job flags...]      e.g. --available-now --summary

The job's packages go to the executors as dist/payments-pipeline.zip (`--py-files`, rebuilt
when a source changed), the Kafka connector as `--jars` from SPARK_JARS_DIR (or SPARK_PACKAGES).
Driver and executors run this interpreter (the project's venv). Start the cluster first with
`STACK_SPARK_WORKERS=2 make up`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conf.settings import REPO_ROOT, Settings, load_settings
from scripts import dist
from scripts.cluster import master_state, master_url, spark_home

MAIN = REPO_ROOT / "streaming" / "main.py"


def submit_conf(s: Settings) -> dict[str, str]:
    st = s.stack
    return {
        # one core per executor: the cluster's cores are the job's executors, one per worker
        # core, so losing a worker loses exactly its executors
        "spark.executor.cores": "1",
        "spark.cores.max": str(st.spark_workers * st.spark_worker_cores),
        # driver and executors' Python workers: the venv, which has pandas, pyarrow, pymongo
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        # as streaming/session.py does for local mode: pyspark 4.0's Arrow serializer trips a
        # pandas FutureWarning on every batch, in each executor's log
        "spark.executorEnv.PYTHONWARNINGS": "ignore::FutureWarning",
    }


def submit_command(
    s: Settings, args: list[str], app: Path = MAIN, conf: dict[str, str] | None = None
) -> list[str]:
    """The spark-submit command line that runs `app` with `args` on the local cluster, with
    `conf` added to the submit settings."""
    from streaming.session import connector_jars

    if s.stack.spark_workers < 1:
        raise ValueError("STACK_SPARK_WORKERS is 0: there is no cluster to submit to")
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", master_url(s)]
    cmd += ["--deploy-mode", "client", "--driver-memory", s.spark.driver_memory]
    cmd += ["--py-files", str(dist.DIST_ZIP)]
    jars = connector_jars(s.spark)
    if jars:
        cmd += ["--jars", ",".join(jars)]
    if s.spark.packages:
        cmd += ["--packages", s.spark.packages]
    for key, value in {**submit_conf(s), **(conf or {})}.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, str(app), *args]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    s = load_settings()
    if s.stack.spark_workers < 1 or master_state(s) is None:
        print(
            f"submit: no Spark master answers for {master_url(s)}: set STACK_SPARK_WORKERS "
            "(e.g. 2) and run `make up` (or `python -m scripts.cluster up`)",
            file=sys.stderr,
        )
        return 2
    dist.ensure_built()
    cmd = submit_command(s, args)
    print(" ".join(cmd), file=sys.stderr)
    env = {**os.environ, "SPARK_HOME": str(spark_home())}
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
