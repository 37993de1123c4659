"""A Spark standalone cluster from the pyspark distribution: one master and N workers on loopback,
so the job runs under spark-submit the way it runs on Dataproc (see scripts/submit.py).

    python -m scripts.cluster up | down | status | kill-worker N

`python -m scripts.stack up` starts it too when STACK_SPARK_WORKERS > 0, and `stack down` stops
it. Logs and pid files live under STACK_DIR/spark/; worker N runs its executors in
STACK_DIR/spark/worker-N/. `up` waits until the master's JSON status lists every worker ALIVE.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

from conf.settings import Settings, load_settings
from scripts.stack import Service, StackError, running_pid, start, stop, tail, wait_until

logger = logging.getLogger(__name__)

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    """The pyspark package: it ships Spark's jars and bin/ (spark-class, spark-submit)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def home(s: Settings) -> Path:
    return Path(s.stack.dir) / "spark"


def master_url(s: Settings) -> str:
    return f"spark://127.0.0.1:{s.stack.spark_master_port}"


# Each application leaves its executors' folder (logs, and a copy of every --jars jar: ~46 MB)
# in the worker's work dir; a worker deletes those of applications finished over an hour ago.
WORKER_OPTS = "-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=3600"


def _spark_class(*args: str, env: tuple[str, ...] = ()) -> list[str]:
    # `env` and spark-class both exec, so the pid `start` records is the JVM's. SPARK_LOCAL_IP
    # keeps the web UIs (and the executors the workers launch) on loopback too.
    return [
        "env",
        f"SPARK_HOME={spark_home()}",
        "SPARK_LOCAL_IP=127.0.0.1",
        *env,
        str(spark_home() / "bin" / "spark-class"),
        *args,
    ]


def master_service(s: Settings) -> Service:
    st = s.stack
    return Service(
        name="master",
        home=home(s),
        cmd=_spark_class(
            MASTER_CLASS,
            *("--host", "127.0.0.1", "--port", str(st.spark_master_port)),
            *("--webui-port", str(st.spark_master_webui_port)),
        ),
        # not the port: `down` must find the master whatever STACK_SPARK_MASTER_PORT says now
        marker=MASTER_CLASS,
    )


def worker_service(s: Settings, index: int) -> Service:
    """Worker `index` (1-based). Its web UI takes a free port (0): the master's JSON lists it."""
    st = s.stack
    work_dir = home(s) / f"worker-{index}"
    return Service(
        name=f"worker-{index}",
        home=home(s),
        cmd=_spark_class(
            WORKER_CLASS,
            master_url(s),
            *("--host", "127.0.0.1", "--cores", str(st.spark_worker_cores)),
            *("--memory", st.spark_worker_memory, "--webui-port", "0"),
            *("--work-dir", str(work_dir)),
            env=(f"SPARK_WORKER_OPTS={WORKER_OPTS}",),
        ),
        marker=f"--work-dir {work_dir}",
    )


def _workers(s: Settings) -> list[Service]:
    """The configured workers, and any other whose pid file is there (started under another
    STACK_SPARK_WORKERS), so that `down` stops whatever runs."""
    indexes = set(range(1, s.stack.spark_workers + 1))
    for pid_file in home(s).glob("worker-*.pid"):
        suffix = pid_file.stem.removeprefix("worker-")
        if suffix.isdigit():
            indexes.add(int(suffix))
    return [worker_service(s, i) for i in sorted(indexes)]


def master_state(s: Settings, timeout: float = 2.0) -> dict[str, Any] | None:
    """The master's JSON status (workers, apps), or None if it does not answer."""
    url = f"http://127.0.0.1:{s.stack.spark_master_webui_port}/json/"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            state: dict[str, Any] = json.load(resp)
            return state
    except (OSError, ValueError):
        return None


def alive_workers(state: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [w for w in (state or {}).get("workers", []) if w.get("state") == "ALIVE"]


def is_running(s: Settings) -> bool:
    return running_pid(master_service(s)) is not None or any(running_pid(w) for w in _workers(s))


def up(s: Settings) -> None:
    n = s.stack.spark_workers
    if n < 1:
        raise StackError("STACK_SPARK_WORKERS is 0: no Spark cluster to start")
    master = master_service(s)
    pid = start(master)
    timeout = s.stack.start_timeout_s
    wait_until(lambda: master_state(s) is not None, master, timeout)
    workers = [worker_service(s, i) for i in range(1, n + 1)]
    for w in workers:
        (home(s) / w.name).mkdir(parents=True, exist_ok=True)
        start(w)

    def all_registered() -> bool:
        for w in workers:
            if running_pid(w) is None:
                raise StackError(f"{w.name} exited during start-up; log tail:\n{tail(w.log_file)}")
        return len(alive_workers(master_state(s))) >= n

    wait_until(all_registered, master, timeout)
    print(
        f"spark     up  pid={pid} master={master_url(s)} workers={n} "
        f"ui=http://127.0.0.1:{s.stack.spark_master_webui_port}/"
    )


def _proc_children() -> dict[int, list[int]]:
    """Live processes by parent pid. Zombies are left out: spark-class leaves one below each
    daemon (its launcher subshell, never reaped once java replaced bash)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue  # exited while we looked
        if state != "Z":
            children.setdefault(int(ppid), []).append(int(stat.parent.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: a worker's executors, their Python daemons and workers."""
    children = _proc_children()
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, sig)


def kill_tree(pid: int) -> list[int]:
    """SIGKILL `pid` and everything below it, as a machine that dies takes them all. Each is
    stopped first (SIGSTOP), so none can start a child between the listing and the kill."""
    seen: set[int] = set()
    while True:
        new = [p for p in [pid, *descendants(pid)] if p not in seen]
        if not new:
            break
        _signal(new, signal.SIGSTOP)
        seen.update(new)
    _signal(sorted(seen), signal.SIGKILL)
    return sorted(seen)


def kill_worker(s: Settings, index: int) -> list[int]:
    """kill -9 worker `index` and its executors (losing that machine); returns the pids."""
    svc = worker_service(s, index)
    pid = running_pid(svc)
    if pid is None:
        raise StackError(f"{svc.name} is not running")
    killed = kill_tree(pid)
    logger.warning("killed service=%s pids=%s", svc.name, killed)
    return killed


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def down(s: Settings) -> None:
    """Stop the workers (SIGTERM: a worker kills its executors), then the master. Processes left
    below a worker after it stopped are killed: an executor must not outlive its cluster."""
    for w in _workers(s):
        pid = running_pid(w)
        below = {p: _start_time(p) for p in descendants(pid)} if pid else {}
        stopped = stop(w)
        # the same pid and start time: still that process, not a new one with a reused pid
        _signal([p for p, t in below.items() if t and _start_time(p) == t], signal.SIGKILL)
        print(f"{w.name:9} {'stopped' if stopped else 'was not running'}")
    master = master_service(s)
    print(f"{'spark':9} {'stopped' if stop(master) else 'was not running'}")


def status(s: Settings) -> dict[str, bool]:
    state = master_state(s)
    alive = len(alive_workers(state))
    ok = state is not None and alive >= max(s.stack.spark_workers, 1)
    pid = running_pid(master_service(s))
    apps = len((state or {}).get("activeapps", []))
    print(
        f"{'spark':9} {'up' if ok else 'down'}  pid={pid or '-'}  master={master_url(s)}  "
        f"alive_workers={alive}  active_apps={apps}  log={master_service(s).log_file}"
    )
    for w in _workers(s):
        print(f"  {w.name:7} pid={running_pid(w) or '-'}  log={w.log_file}")
    return {"spark": ok}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status", "kill-worker"])
    parser.add_argument("index", nargs="?", type=int, help="kill-worker: which worker (1..N)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    s = load_settings()
    try:
        if args.command == "up":
            up(s)
        elif args.command == "down":
            down(s)
        elif args.command == "status":
            return 0 if status(s)["spark"] else 1
        else:
            if args.index is None:
                parser.error("kill-worker needs the worker's index")
            print(f"killed pids={kill_worker(s, args.index)}")
    except StackError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
