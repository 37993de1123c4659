"""The chaos run: faults strike while producers stream a seeded dirty scenario and the job runs
continuously; then MongoDB must equal the ground truth exactly.

    python -m scripts.chaos [--seed N] [--orders N] [--rate R] [--local] [--report FILE] ...

It starts a stack of its own (a Kafka broker, FerretDB, and a Spark master with two one-core
workers) on ports of its own under .stack/chaos/<run>/, so the everyday stack is never touched.
The job runs under `python -m scripts.supervise` as a user would run it: spark-submit to the
cluster through `python -m scripts.submit` (with `--local`: `python -m streaming`, no cluster).
Then, in the seeded order of `scripts/chaos_plan.schedule`, each fault strikes and the run
waits until the job has recovered before the next:

    kill -9 broker   SIGKILL of the broker; started again after 10-20 s
    stop mongodb     FerretDB stopped for --mongo-down-s (30 s); the sink retries with back-off,
                     and if its retries run out the query fails and the supervisor restarts it
    kill -9 job      SIGKILL of the job's process group (driver JVM, Python, workers); the
                     supervisor restarts it from the checkpoint
    kill -9 worker   (not with --local) SIGKILL of a Spark worker and its executors; started again

Recovery: from the moment the service answers again (the job: restarted) until the checkpoint
has committed every offset that was in Kafka at that moment. When the producers are done and
the job has caught up, MongoDB is compared with the truth. Prints the faults' table and the
comparison; exit 0 only when equal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conf.settings import REPO_ROOT, STACK_DIR, Settings, load_settings
from scripts import chaos_plan as plan
from scripts import cluster, stack
from scripts.chaos_probe import RECOVERY_TIMEOUT_S, Probe
from scripts.check_truth import differences, divergence, fetch

logger = logging.getLogger("chaos")
Docs = tuple[
    list[dict[str, Any]], list[dict[str, Any]]
]  # outcomes, dead letters (check_truth.fetch)

PORTS = {
    "STACK_KAFKA_PORT": "19092",
    "STACK_KAFKA_CONTROLLER_PORT": "19093",
    "STACK_MONGO_PORT": "27027",
    "STACK_SPARK_MASTER_PORT": "7377",
    "STACK_SPARK_MASTER_WEBUI_PORT": "8483",
}


def run_env(run: str, run_dir: Path, args: argparse.Namespace) -> dict[str, str]:
    """The environment of every process of this run: its own stack, topics, database and
    checkpoint."""
    env = {
        **os.environ,
        **PORTS,
        "STACK_DIR": str(run_dir / "stack"),
        "STACK_SPARK_WORKERS": "0" if args.local else "2",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{PORTS['STACK_KAFKA_PORT']}",
        "MONGO_URI": f"mongodb://127.0.0.1:{PORTS['STACK_MONGO_PORT']}/",
        "MONGO_DATABASE": f"chaos_{run.replace('-', '_')}",
        "TOPIC_ORDERS": f"orders-{run}",
        "TOPIC_PAYMENTS": f"payments-{run}",
        "TOPIC_DEAD_LETTERS": f"dead-letters-{run}",
        "TOPIC_OUTCOMES": f"outcomes-{run}",
        "SPARK_CHECKPOINT_LOCATION": str(run_dir / "checkpoint"),
        "PIPELINE_TRIGGER_INTERVAL_S": "2",
        "PIPELINE_MAX_OFFSETS_PER_TRIGGER": "3000",
        "PIPELINE_SINK_RETRIES": str(args.sink_retries),
        "MONGO_TIMEOUT_MS": str(args.mongo_timeout_ms),
    }
    return env


def link_binaries(stack_dir: Path) -> None:
    """The run's stack uses the binaries scripts/setup.sh installed; its data is its own."""
    (stack_dir / "kafka").mkdir(parents=True, exist_ok=True)
    for src, dst in (
        (STACK_DIR / "bin", stack_dir / "bin"),
        (STACK_DIR / "kafka" / "libs", stack_dir / "kafka" / "libs"),
    ):
        if not dst.exists():
            dst.symlink_to(src)


class Chaos:
    def __init__(self, args: argparse.Namespace, s: Settings, env: dict[str, str], run_dir: Path):
        self.args, self.s, self.env, self.run_dir = args, s, env, run_dir
        self.pid_file = run_dir / "job.pid"
        self.probe = Probe(s, run_dir / "checkpoint", run_dir / "job.log")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.t0 = 0.0

    def spawn(self, cmd: list[str], log: str) -> subprocess.Popen[bytes]:
        with (self.run_dir / log).open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.procs.append(proc)
        return proc

    def start_producers(self, truth: Path) -> list[subprocess.Popen[bytes]]:
        a = self.args
        common = [
            "--count",
            str(a.orders),
            "--seed",
            str(a.seed),
            "--rate",
            str(a.rate),
            "--event-rate",
            str(a.event_rate),
        ]
        py = sys.executable
        return [
            self.spawn(
                [py, "-m", "producers.orders", *common, "--truth", str(truth)], "orders.log"
            ),
            self.spawn(
                [py, "-m", "producers.payments", *common, "--rate", str(a.rate * 1.2)],
                "payments.log",
            ),  # ~1.2 payments per order: same length
        ]

    def start_job(self) -> subprocess.Popen[bytes]:
        job = [sys.executable, "-m", "streaming" if self.args.local else "scripts.submit"]
        supervise = f"-m scripts.supervise --pid-file {self.pid_file} --backoff-s 2 --stable-s 30"
        cmd = [sys.executable, *supervise.split(), "--", *job]
        return self.spawn(cmd, "job.log")

    def job_pid(self) -> int:
        return int(self.pid_file.read_text())

    # --- the faults: each returns when the service answers again

    def kill_broker(self, f: plan.Fault) -> None:
        svc = stack.kafka_service(self.s)
        pid = stack.running_pid(svc)
        if pid is None:
            raise stack.StackError("the broker is not running")
        os.kill(pid, signal.SIGKILL)
        time.sleep(f.down_s)
        stack.start(svc)
        stack.wait_until(lambda: stack.kafka_ready(self.s.kafka.bootstrap_servers), svc, 120)

    def stop_mongo(self, f: plan.Fault) -> None:
        svc = stack.mongo_service(self.s)
        stack.stop(svc)
        time.sleep(f.down_s)
        stack.start(svc)
        uri = self.s.mongo.uri.get_secret_value()
        stack.wait_until(lambda: stack.mongo_ready(uri), svc, 120)

    def kill_job(self, f: plan.Fault) -> None:
        pid = self.job_pid()
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while self.job_pid() == pid and time.monotonic() < deadline:
            time.sleep(0.2)

    def kill_worker(self, f: plan.Fault) -> None:
        cluster.kill_worker(self.s, f.target)
        time.sleep(f.down_s)
        cluster.up(self.s)

    def strike(self, f: plan.Fault) -> plan.Outcome:
        actions: dict[str, Callable[[plan.Fault], None]] = {
            plan.BROKER: self.kill_broker,
            plan.MONGO: self.stop_mongo,
            plan.JOB: self.kill_job,
            plan.WORKER: self.kill_worker,
        }
        time.sleep(f.gap_s)
        starts = self.probe.starts()
        at = time.monotonic()
        logger.info("fault=%r at_s=%.1f down_s=%.1f", f.kind, at - self.t0, f.down_s)
        actions[f.kind](f)
        back = time.monotonic()
        recovery = self.probe.wait_caught_up(self.probe.produced())
        outcome = plan.Outcome(f, at - self.t0, back - at, recovery, self.probe.starts() - starts)
        logger.info(
            "recovered fault=%r downtime_s=%.1f recovery_s=%s restarts=%d",
            f.kind,
            outcome.downtime_s,
            recovery,
            outcome.restarts,
        )
        return outcome

    def run(self) -> int:
        a = self.args
        workers = 0 if a.local else a.worker_kills
        faults = plan.schedule(
            a.seed,
            a.broker_kills,
            a.mongo_outages,
            a.mongo_down_s,
            a.job_kills,
            workers,
            gap_s=a.gap_s,
            broker_down_s=a.broker_down_s,
            worker_down_s=a.worker_down_s,
        )
        a.orders = a.orders or plan.orders_to_outlast(faults, a.rate)
        print(
            f"{a.orders} orders at {a.rate}/s; schedule: "
            + ", ".join(f"{f.kind} (+{f.gap_s:.0f}s)" for f in faults),
            flush=True,
        )
        truth = self.run_dir / "truth.json"
        subprocess.run(
            [sys.executable, "-m", "producers.topics"],
            cwd=REPO_ROOT,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        producers = self.start_producers(truth)
        supervisor = self.start_job()
        self.t0 = time.monotonic()
        first = self.probe.wait_caught_up(1)
        if first is None:
            raise RuntimeError(
                f"the job committed nothing in {RECOVERY_TIMEOUT_S:.0f}s: "
                f"see {self.run_dir / 'job.log'}"
            )
        outcomes = [self.strike(f) for f in faults]
        for p in producers:
            if p.poll() is not None:
                logger.warning("producers finished before the faults did: raise --orders")
                break
        codes = [p.wait() for p in producers]
        drained = self.probe.wait_caught_up(self.probe.produced())
        expected = json.loads(truth.read_text())
        diffs, docs = self.wait_equal(expected)
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(120)
        return self.report(outcomes, codes, drained, expected, diffs, docs)

    def wait_equal(self, truth: dict[str, Any], timeout: float = 180.0) -> tuple[list[str], Docs]:
        """Differences from the truth, polled until none (the last batches close orders as
        the final watermark passes them) or the timeout; and the documents last read."""
        deadline = time.monotonic() + timeout
        while True:
            outcomes, dead, _ = fetch(self.s)
            docs = (outcomes, dead)
            diffs = differences(truth, *docs)
            if not diffs or time.monotonic() > deadline:
                return diffs, docs
            time.sleep(3)

    def report(
        self,
        outcomes: list[plan.Outcome],
        codes: list[int],
        drained: float | None,
        truth: dict[str, Any],
        diffs: list[str],
        docs: Docs,
    ) -> int:
        t = plan.tally(divergence(truth, *docs))
        n_orphans = sum(o["final"] for o in truth["orphans"])
        lines = [
            plan.table(outcomes),
            "",
            f"producers exit codes {codes}; the job drained "
            + ("NOT" if drained is None else f"in {drained:.1f}s")
            + f" after they stopped; {self.probe.starts()} job starts in all",
            f"truth: {len(truth['orders'])} orders, {n_orphans} orphan payments, "
            f"{len(truth['dead_letters'])} dead letters",
            f"MongoDB: lost {t['lost']}, duplicated {t['duplicated']}, wrong {t['wrong']}"
            + (" -> EQUALS the truth" if not diffs else " -> DIFFERS:\n  " + "\n  ".join(diffs)),
        ]
        text = "\n".join(lines)
        print(text, flush=True)
        if self.args.report:
            Path(self.args.report).write_text(text + "\n")
        return 0 if not diffs and drained is not None and codes == [0, 0] else 1

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.pid_file.exists():  # the job, if the supervisor left it behind
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(self.job_pid(), signal.SIGKILL)
        if not self.args.local:
            cluster.down(self.s)
        stack.down(self.s)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m scripts.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seed", type=int, default=7, help="seeds the scenario and the schedule")
    p.add_argument(
        "--orders",
        type=int,
        default=0,
        help="orders in the scenario (default: enough to outlast the faults)",
    )
    p.add_argument("--rate", type=float, default=15.0, help="orders-topic messages/s")
    p.add_argument(
        "--event-rate",
        type=float,
        default=0.5,
        help="orders per second of event time (0.5: most orders close in the run)",
    )
    p.add_argument("--broker-kills", type=int, default=2)
    p.add_argument("--mongo-outages", type=int, default=1)
    p.add_argument("--mongo-down-s", type=float, default=30.0)
    p.add_argument("--job-kills", type=int, default=5)
    p.add_argument("--worker-kills", type=int, default=1)
    p.add_argument(
        "--local", action="store_true", help="run the job in local mode (no cluster, no worker)"
    )
    p.add_argument(
        "--gap-s",
        type=float,
        nargs=2,
        default=(3.0, 15.0),
        metavar=("MIN", "MAX"),
        help="seconds between one fault's recovery and the next fault",
    )
    p.add_argument(
        "--broker-down-s",
        type=float,
        nargs=2,
        default=(10.0, 20.0),
        metavar=("MIN", "MAX"),
        help="seconds a killed broker stays down",
    )
    p.add_argument(
        "--worker-down-s",
        type=float,
        nargs=2,
        default=(5.0, 15.0),
        metavar=("MIN", "MAX"),
        help="seconds a killed Spark worker stays down",
    )
    p.add_argument("--sink-retries", type=int, default=5, help="PIPELINE_SINK_RETRIES")
    p.add_argument("--mongo-timeout-ms", type=int, default=10_000, help="MONGO_TIMEOUT_MS")
    p.add_argument("--report", default=None, help="also write the table and result here")
    p.add_argument("--keep", action="store_true", help="keep the run's folder (logs, data)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run = time.strftime("chaos-%Y%m%d-%H%M%S")
    run_dir = STACK_DIR / "chaos" / run
    run_dir.mkdir(parents=True)
    env = run_env(run, run_dir, args)
    link_binaries(Path(env["STACK_DIR"]))
    os.environ.update(env)  # this process's own settings: the run's stack
    s = load_settings()
    chaos = Chaos(args, s, env, run_dir)
    print(f"run {run}: logs in {run_dir}", flush=True)
    try:
        stack.up(s)
        return chaos.run()
    finally:
        chaos.stop_all()
        if not args.keep:
            shutil.rmtree(run_dir / "stack", ignore_errors=True)
            shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
