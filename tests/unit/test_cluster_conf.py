"""The Spark cluster's pure parts, no JVM: the spark-submit command, the services' command
lines, the --py-files zip (which packages, staleness, that it covers what the job imports), and
killing a process tree as a lost machine does."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conf.settings import REPO_ROOT, Settings, SparkSettings, StackSettings
from scripts import cluster, dist
from scripts.submit import MAIN, submit_command

KAFKA_JARS = ("spark-sql-kafka-0-10_2.13-4.0.0.jar", "kafka-clients-3.9.0.jar")


def settings(tmp_path: Path, **spark: str) -> Settings:
    for name in KAFKA_JARS:
        (tmp_path / name).write_bytes(b"")
    stack = StackSettings(
        dir=str(tmp_path / "stack"), spark_workers=3, spark_worker_cores=2, spark_master_port=7177
    )
    return Settings(spark=SparkSettings(jars_dir=str(tmp_path), **spark), stack=stack)


def conf_of(cmd: list[str]) -> dict[str, str]:
    pairs = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--conf"]
    return dict(p.split("=", 1) for p in pairs)


def test_submit_command_targets_the_cluster_with_zip_jars_and_venv(tmp_path: Path) -> None:
    cmd = submit_command(settings(tmp_path), ["--available-now", "--summary"])
    assert cmd[0] == str(cluster.spark_home() / "bin" / "spark-submit")
    assert cmd[cmd.index("--master") + 1] == "spark://127.0.0.1:7177"
    assert cmd[cmd.index("--py-files") + 1] == str(dist.DIST_ZIP)
    jars = cmd[cmd.index("--jars") + 1].split(",")
    assert jars == sorted(str(tmp_path / j) for j in KAFKA_JARS)
    conf = conf_of(cmd)
    assert conf["spark.executor.cores"] == "1"
    assert conf["spark.cores.max"] == "6"  # 3 workers x 2 cores: one executor per core
    assert conf["spark.pyspark.python"] == sys.executable
    assert conf["spark.driver.host"] == "127.0.0.1"
    assert cmd[-3:] == [str(MAIN), "--available-now", "--summary"]  # the job's flags last


def test_submit_with_packages_instead_of_local_jars(tmp_path: Path) -> None:
    coords = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0"
    s = settings(tmp_path).model_copy(
        update={"spark": SparkSettings(jars_dir=str(tmp_path / "none"), packages=coords)}
    )
    cmd = submit_command(s, [])
    assert cmd[cmd.index("--packages") + 1] == coords and "--jars" not in cmd


def test_no_cluster_no_submit(tmp_path: Path) -> None:
    s = settings(tmp_path)
    s = s.model_copy(update={"stack": s.stack.model_copy(update={"spark_workers": 0})})
    with pytest.raises(ValueError, match="STACK_SPARK_WORKERS"):
        submit_command(s, [])


def test_services_listen_on_loopback_and_work_under_the_stack_dir(tmp_path: Path) -> None:
    s = settings(tmp_path)
    master = cluster.master_service(s)
    assert "SPARK_LOCAL_IP=127.0.0.1" in master.cmd
    assert master.cmd[master.cmd.index("--port") + 1] == "7177"
    assert master.cmd[master.cmd.index("--webui-port") + 1] == "8480"
    worker = cluster.worker_service(s, 2)
    args = worker.cmd[worker.cmd.index(cluster.WORKER_CLASS) + 1 :]
    assert args[0] == "spark://127.0.0.1:7177"
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args[args.index("--cores") + 1] == "2"
    assert args[args.index("--work-dir") + 1] == str(tmp_path / "stack" / "spark" / "worker-2")
    assert worker.pid_file == tmp_path / "stack" / "spark" / "worker-2.pid"


def test_down_finds_workers_by_their_pid_files(tmp_path: Path) -> None:
    s = settings(tmp_path)  # 3 configured
    home = cluster.home(s)
    home.mkdir(parents=True)
    (home / "worker-5.pid").write_text("1")  # left by an `up` with STACK_SPARK_WORKERS=5
    assert [w.name for w in cluster._workers(s)] == [f"worker-{i}" for i in (1, 2, 3, 5)]


def fake_project(root: Path, include: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f"[tool.setuptools.packages.find]\ninclude = {include!r}\n".replace("'", '"')
    )
    for pkg in ("alpha", "alpha/sub", "beta", "scripts", "gamma", "tests"):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
        (root / pkg / "mod.py").write_text(f"NAME = {pkg!r}\n")
    (root / "docs").mkdir()
    (root / "docs" / "notes.py").write_text("")  # not a package
    return root


def test_packages_come_from_pyprojects_include_list_less_scripts(tmp_path: Path) -> None:
    root = fake_project(tmp_path, ["alpha*", "beta*", "scripts*"])
    assert dist.packages(root) == ["alpha", "alpha.sub", "beta"]
    assert list(dist.sources(root)) == [
        "alpha/__init__.py",
        "alpha/mod.py",
        "alpha/sub/__init__.py",
        "alpha/sub/mod.py",
        "beta/__init__.py",
        "beta/mod.py",
    ]


def test_zip_is_reproducible_and_stale_when_a_source_changes(tmp_path: Path) -> None:
    root = fake_project(tmp_path / "p", ["alpha*", "beta*"])
    out = tmp_path / "dist" / "job.zip"
    assert dist.is_stale(out, root)
    first = dist.build(out, root).read_bytes()
    assert not dist.is_stale(out, root)
    assert dist.build(out, root).read_bytes() == first  # same sources, same bytes
    with zipfile.ZipFile(out) as z:
        assert z.read("alpha/sub/mod.py") == b"NAME = 'alpha/sub'\n"

    later = time.time() + 5
    os.utime(root / "beta" / "mod.py", (later, later))
    assert dist.is_stale(out, root)  # an edited module
    dist.build(out, root)
    (root / "beta" / "mod.py").unlink()
    assert dist.is_stale(out, root)  # a deleted one must not linger in the zip


def top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_zip_holds_every_project_package_the_job_imports() -> None:
    """A package added to the project (a new lowest layer) but not to pyproject's include list
    would import on the driver (the checkout is on its path) and fail on every executor."""
    shipped = {p.split(".")[0] for p in dist.packages()}
    assert {"conf", "streaming", "sinks"} <= shipped and "scripts" not in shipped
    project = {d.name for d in REPO_ROOT.iterdir() if (d / "__init__.py").is_file()}
    for path in [MAIN, *dist.sources().values()]:
        missing = (top_level_imports(path) & project) - shipped
        assert not missing, f"{path.relative_to(REPO_ROOT)} imports {missing}, not in the zip"


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


SLEEP = "import time; time.sleep(60)"
PARENT = (
    f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {SLEEP!r}]); {SLEEP}"
)


def test_kill_tree_takes_the_children_too() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    try:
        deadline = time.monotonic() + 10
        while not cluster.descendants(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        children = cluster.descendants(parent.pid)
        assert len(children) == 1
        assert cluster.kill_tree(parent.pid) == sorted([parent.pid, *children])
        assert parent.wait(10) == -9
        deadline = time.monotonic() + 10
        while alive(children[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(children[0])
    finally:
        parent.kill()
