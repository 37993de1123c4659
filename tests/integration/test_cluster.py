"""The job under spark-submit on a real Spark standalone cluster (a master and two one-core
workers, scripts/cluster.py), as it runs on Dataproc: the executors run the venv's Python and the
packages of dist/payments-pipeline.zip; the dirty scenario equals the truth; and it still does
after losing the driver, or a worker with its executor, in the middle of a batch. (One module,
one cluster for its tests: `make test`'s workers run a module's tests one after the other. The
chaos run, with a cluster of its own, is tests/integration/test_chaos.py.)"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conf.settings import REPO_ROOT, Settings
from scripts import cluster, dist
from scripts.submit import MAIN, submit_command
from tests.integration.helpers import docs, job_env
from tests.integration.test_reconcile_e2e import (
    assert_equals_truth,
    load_scenario,
    small_batches,
)

pytestmark = pytest.mark.integration

WORKERS = 2


@pytest.fixture(scope="session")
def cluster_stack(settings: Settings) -> Iterator[Settings]:
    """Master and workers on ports and in a folder of their own (.stack/cluster-tests/spark), so
    that a cluster started with `make up` is neither reused nor stopped. Started unless already
    up; stopped at the end if started here."""
    st = settings.stack.model_copy(
        update={
            "dir": str(Path(settings.stack.dir) / "cluster-tests"),
            "spark_workers": WORKERS,
            "spark_master_port": 7177,
            "spark_master_webui_port": 8481,
            "spark_worker_cores": 1,
            "spark_worker_memory": "2g",
        }
    )
    s = settings.model_copy(update={"stack": st})
    was_running = len(cluster.alive_workers(cluster.master_state(s))) >= WORKERS
    if not was_running:  # the executors' folders of the last run go (~46 MB each)
        for i in range(1, WORKERS + 1):
            shutil.rmtree(cluster.home(s) / f"worker-{i}", ignore_errors=True)
    try:
        cluster.up(s)
        yield s
    finally:
        if not was_running:
            cluster.down(s)


@pytest.fixture
def on_cluster(pipeline_settings: Settings, cluster_stack: Settings) -> Settings:
    """This test's topics, database and checkpoint, submitted to the test cluster."""
    return pipeline_settings.model_copy(update={"stack": cluster_stack.stack})


def _submit(
    s: Settings, args: list[str], env: dict[str, str], log: Path, app: Path = MAIN
) -> subprocess.Popen[Any]:
    """spark-submit in a process group of its own: the driver is its JVM and that JVM's Python
    child, and losing the driver means losing both."""
    dist.ensure_built()  # as scripts.submit does: the executors get the sources as they are now
    with log.open("ab") as out:
        return subprocess.Popen(
            submit_command(s, args, app),
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _kill_driver(job: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(job.pid, signal.SIGKILL)
    job.wait(30)


def _run(s: Settings, args: list[str], env: dict[str, str], log: Path) -> int:
    job = _submit(s, args, env, log)
    try:
        return job.wait(600)
    finally:
        _kill_driver(job)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def _apps(s: Settings) -> dict[str, dict[str, Any]]:
    state = cluster.master_state(s) or {}
    return {a["id"]: a for a in state.get("activeapps", []) + state.get("completedapps", [])}


def _executors_by_worker(s: Settings, app_id: str) -> dict[str, int]:
    """Executors each live worker ran (or runs) for `app_id`, from the workers' own JSON."""
    found = {}
    for w in cluster.alive_workers(cluster.master_state(s)):
        with urllib.request.urlopen(f"{w['webuiaddress']}/json/", timeout=5) as resp:
            state = json.load(resp)
        execs = state.get("executors", []) + state.get("finishedexecutors", [])
        found[w["id"]] = sum(e.get("appid") == app_id for e in execs)
    return found


def _new_app(s: Settings, before: dict[str, dict[str, Any]]) -> dict[str, Any]:
    new = [a for i, a in _apps(s).items() if i not in before]
    assert len(new) == 1, f"expected one new application on the master, found {new}"
    return new[0]


def _wait_for_pause(job: subprocess.Popen[Any], flag: Path, log: Path) -> None:
    deadline = time.monotonic() + 300
    while not flag.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert flag.exists(), f"the job never reached the middle of batch 2:\n{_tail(log)}"


def _wait_until_idle(s: Settings, timeout: float = 90) -> None:
    """Until the master runs no application and no worker has a process left below it: a dead
    driver's executors (and their Python workers) must go with it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = cluster.master_state(s) or {}
        pids = [cluster.running_pid(cluster.worker_service(s, i)) for i in range(1, WORKERS + 1)]
        left = [p for pid in pids if pid for p in cluster.descendants(pid)]
        if state.get("status") == "ALIVE" and not state.get("activeapps") and not left:
            return
        time.sleep(0.5)
    pytest.fail(f"cluster still busy after {timeout}s: apps={state.get('activeapps')} pids={left}")


def _sleeping(pid: int) -> bool:
    """True while the process's main thread sleeps in nanosleep (time.sleep)."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
        syscall = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    return "nanosleep" in wchan or (os.uname().machine == "x86_64" and syscall in {"35", "230"})


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _worker_of_paused_task(s: Settings, timeout: float = 30) -> int | None:
    """The worker whose executor runs the task paused at the fault point: a Python worker below
    it sleeping (the pause is a time.sleep in the task)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i in range(1, WORKERS + 1):
            pid = cluster.running_pid(cluster.worker_service(s, i))
            for p in cluster.descendants(pid) if pid else []:
                if _sleeping(p) and "python" in _cmdline(p):
                    return i
        time.sleep(0.5)
    return None


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stack_down_stops_a_cluster_whatever_the_settings_say(
    settings: Settings, tmp_path: Path
) -> None:
    """`stack down` finds the cluster by its pid files: one started (one worker, ports of its
    own) in a private folder is stopped by settings that name no cluster and other ports, and
    nothing is left behind. Kafka and FerretDB have no pid files there: they are left alone."""
    from scripts import stack

    st = settings.stack.model_copy(update={"dir": str(tmp_path)})
    own = st.model_copy(
        update={"spark_workers": 1, "spark_master_port": 7277, "spark_master_webui_port": 8482}
    )
    s = settings.model_copy(update={"stack": own})
    try:
        cluster.up(s)
        pids = [cluster.running_pid(cluster.master_service(s))]
        pids.append(cluster.running_pid(cluster.worker_service(s, 1)))
        assert all(pids), pids
    finally:
        stack.down(
            settings.model_copy(update={"stack": st.model_copy(update={"spark_workers": 0})})
        )
    assert not [p for p in pids if p and _alive(p)]
    assert cluster.master_state(s, timeout=1) is None


PROBE = """
import importlib, json, sys
from conf.settings import load_settings
from streaming.session import build_session

packages, jars_dir = json.loads(sys.argv[1]), sys.argv[2]

def where(_):
    import sys, zipimport
    files = [importlib.import_module(p).__file__ for p in packages]
    from conf.spark_worker import is_spark_archive, lean_imports
    lean_imports()  # then pyspark's per-task invalidate_caches reads no Spark archive
    reads = []
    original = zipimport._read_directory
    zipimport._read_directory = lambda archive: (reads.append(archive), original(archive))[1]
    try:
        importlib.invalidate_caches()
    finally:
        zipimport._read_directory = original
    yield [sys.executable, [r for r in reads if is_spark_archive(r)]] + files

spark_settings = load_settings().spark.model_copy(update={"jars_dir": jars_dir})
spark = build_session(spark_settings, app_name="cluster-probe")
found = spark.sparkContext.parallelize(range(8), 8).mapPartitions(where).collect()
print("PROBE " + json.dumps({"master": spark.sparkContext.master, "found": found}))
spark.stop()
"""


def test_executors_run_the_venv_and_import_the_zip(on_cluster: Settings, tmp_path: Path) -> None:
    """What Dataproc relies on: the driver keeps spark-submit's master (streaming/session.py
    sets none under spark-submit), and the executors' Python is the venv's and imports every
    shipped package from the --py-files zip, not from the checkout; after the job's
    `lean_imports` (conf/spark_worker.py), a task reads none of Spark's archives again."""
    s = on_cluster
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    log = tmp_path / "probe.log"
    packages = dist.packages()
    # imported from the zip, conf's default paths are not the checkout's: the jars' folder is
    # an argument (not SPARK_JARS_DIR, which Spark's launcher script overwrites with its own)
    args = [json.dumps(packages), s.spark.jars_dir]
    job = _submit(s, args, job_env(s), log, app=probe)
    try:
        assert job.wait(300) == 0, _tail(log)
    finally:
        _kill_driver(job)
    line = next(x for x in log.read_text().splitlines() if x.startswith("PROBE "))
    result = json.loads(line.removeprefix("PROBE "))
    assert result["master"] == cluster.master_url(s)
    for python, spark_archives_read, *files in result["found"]:
        assert python == sys.executable
        assert spark_archives_read == []
        assert len(files) == len(packages)
        assert all(f"{dist.DIST_ZIP.name}/" in f for f in files), files


def test_dirty_scenario_on_the_cluster_equals_the_truth(
    on_cluster: Settings, tmp_path: Path
) -> None:
    s = small_batches(on_cluster)
    truth = load_scenario(s)
    before = _apps(s)
    log = tmp_path / "submit.log"
    assert _run(s, ["--available-now"], job_env(s), log) == 0, _tail(log)
    assert_equals_truth(s, truth)
    # it really ran on the cluster: a finished application with an executor on each worker
    app = _new_app(s, before)
    assert app["state"] == "FINISHED"
    assert sorted(_executors_by_worker(s, app["id"]).values()) == [1] * WORKERS


def test_kill_9_of_the_driver_mid_batch_then_resubmit_equals_truth(
    on_cluster: Settings, tmp_path: Path
) -> None:
    s = small_batches(on_cluster, per_trigger=200)
    truth = load_scenario(s, seed=23)
    flag, log = tmp_path / "paused", tmp_path / "submit.log"
    env = job_env(s, PIPELINE_FAULT_PAUSE_AT_BATCH="2", PIPELINE_FAULT_FLAG_FILE=str(flag))
    job = _submit(s, [], env, log)
    try:
        _wait_for_pause(job, flag, log)
        written_before_kill = len(docs(s, s.mongo.outcomes_collection))
    finally:
        _kill_driver(job)
    assert written_before_kill > 0
    assert not (Path(s.spark.checkpoint_location) / "commits" / "2").exists()  # cut off mid-way
    _wait_until_idle(s)  # the master let the dead driver's executors go

    rerun_log = tmp_path / "resubmit.log"
    assert _run(s, ["--available-now"], job_env(s), rerun_log) == 0, _tail(rerun_log)
    assert_equals_truth(s, truth)


def test_kill_9_of_a_worker_mid_batch_the_query_finishes_equal_to_truth(
    on_cluster: Settings, tmp_path: Path
) -> None:
    """Contract with the sink: the fault point runs in the executor task that writes a
    partition; the first task to reach it touches the flag file and sleeps, no other pauses.
    Losing that task's worker (with its executor) must not lose or double a row: Spark runs the
    task again on the other worker."""
    s = small_batches(on_cluster, per_trigger=200)
    truth = load_scenario(s, seed=29)
    flag, log = tmp_path / "paused", tmp_path / "submit.log"
    env = job_env(
        s,
        PIPELINE_FAULT_PAUSE_AT_BATCH="2",
        PIPELINE_FAULT_FLAG_FILE=str(flag),
        PIPELINE_FAULT_PAUSE_S="180",  # bounds the run if the pause is not where it should be
    )
    before = _apps(s)
    job = _submit(s, ["--available-now"], env, log)
    try:
        _wait_for_pause(job, flag, log)
        lost = _worker_of_paused_task(s)
        assert lost is not None, "no executor task is paused at the fault point (the driver is?)"
        cluster.kill_worker(s, lost)
        returncode = job.wait(600)
        survivors = cluster.alive_workers(cluster.master_state(s))
    finally:
        _kill_driver(job)
        cluster.up(s)  # the lost worker back, for whatever runs next
    assert returncode == 0, _tail(log)
    assert_equals_truth(s, truth)
    app = _new_app(s, before)
    assert app["state"] == "FINISHED"
    # the query finished on the worker that was left
    by_worker = _executors_by_worker(s, app["id"])
    assert len(survivors) == WORKERS - 1
    assert by_worker[survivors[0]["id"]] >= 1
