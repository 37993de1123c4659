"""Scale benchmarks of the reconciliation: prints figures, asserts nothing (docs/benchmarks.md).

    python -m scripts.bench_scale spark [--events 100000] [--shapes tws,state,per_key]
    python -m scripts.bench_scale open-state [--open 10000,100000,1000000,3000000] [--shape tws]
    python -m scripts.bench_scale memory [--events 100000,1000000]
    python -m scripts.bench_scale cluster [--events 200000] [--workers 1,2]
    python -m scripts.bench_scale horizon [--events 100000] [--shape tws]

spark: Spark's own cost. The same preloaded events (a seeded scenario with the default dirt) are
  drained by each shape into a sink that computes every batch and writes nothing (`noop`), and by
  the per-key baseline (scripts/baseline_per_key.py, the public design this project replaces).
open-state: the cost of a batch against the state held. Orders are preloaded with a window so
  long that none closes, until K are open; then a steady stream (producers.simulate, wall clock)
  runs for a while, and the batches of that phase are timed (computed, not written).
cluster: Spark's own cost on the local standalone cluster (scripts/cluster.py): the same
  preloaded events drained by the default shape under spark-submit, with 1 and with 2 one-core
  workers; with the driver's peak memory (its JVM and its Python) and, from the event log,
  where the executors' time went (scripts/eventlog.py).
horizon: the state the de-duplication horizon keeps (entries that only remember closed ids).
memory: the driver's peak memory while a preloaded backlog is drained in one batch with the
  real sink (rows written from the executors).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file by spark-submit (bench cluster)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import logging
import os
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from conf.settings import REPO_ROOT, Settings, load_settings
from contract.events import Item, Order
from producers import serde
from producers.topics import ensure_topics
from scripts.bench_pipeline import isolated, preload, produced_counts, run_producer
from scripts.eventlog import breakdown
from sinks.mongo_io import MongoSink
from streaming.job import start_query
from streaming.session import build_session

logger = logging.getLogger("bench")


def discard(batch_df: Any, batch_id: int) -> None:
    """A foreachBatch sink that computes the whole batch and writes nothing."""
    batch_df.write.format("noop").mode("overwrite").save()


def drain(
    spark: Any, s: Settings, shape: str, events: int, sink: Any = discard
) -> tuple[float, list[dict]]:
    """Run one shape until it has read `events` rows; seconds until that batch was done, and the
    progress of the batches with input. (Neither Trigger.AvailableNow nor processAllAvailable:
    with the per-key baseline's processing-time timeouts, the query keeps running no-data
    batches for them and neither returns.)"""
    if shape == "per_key":
        from scripts import baseline_per_key

        q = (
            baseline_per_key.build(spark, s)
            .writeStream.outputMode("update")
            .foreachBatch(sink)
            .option("checkpointLocation", s.spark.checkpoint_location)
            .start()
        )
    else:
        q = start_query(spark, with_shape(s, shape), sink)
    t0 = time.perf_counter()
    progress: list[dict[str, Any]] = []
    try:
        while q.isActive and sum(p["numInputRows"] for p in progress) < events:
            time.sleep(0.1)
            seen = {p["batchId"] for p in progress}
            progress += [
                p for p in q.recentProgress if p.get("numInputRows") and p["batchId"] not in seen
            ]
        seconds = time.perf_counter() - t0
    finally:
        q.stop()
    if q.exception():
        raise RuntimeError(f"{shape}: {q.exception()}")
    return seconds, progress


def with_shape(s: Settings, shape: str, **pipeline: Any) -> Settings:
    return s.model_copy(
        update={"pipeline": s.pipeline.model_copy(update={"shape": shape, **pipeline})}
    )


def checkpoint(s: Settings, name: str) -> Settings:
    path = str(Path(s.spark.checkpoint_location).parent / name)
    return s.model_copy(update={"spark": s.spark.model_copy(update={"checkpoint_location": path})})


def spark_side(base: Settings, events: int, shapes: list[str], topics: str | None = None) -> None:
    """`topics`: the name of an earlier run whose topics hold the events (no preload)."""
    name = topics or f"bench-{uuid.uuid4().hex[:6]}"
    s = isolated(base, name, max_offsets_per_trigger=200_000)
    n = sum(produced_counts(s).values()) if topics else preload(s, events)
    name = f"{name}-{uuid.uuid4().hex[:4]}" if topics else name
    spark = build_session(s.spark)
    result: dict[str, Any] = {"benchmark": "spark-side", "events": n}
    for shape in shapes:
        seconds, progress = drain(spark, checkpoint(s, f"{name}-{shape}"), shape, n)
        batches = [p["durationMs"]["triggerExecution"] for p in progress]
        result[shape] = {
            "seconds": round(seconds, 1),
            "events_per_s": round(n / seconds),
            "batches": len(batches),
            "batch_ms": batches,
        }
        print(json.dumps({shape: result[shape]}), flush=True)
    spark.stop()
    if "per_key" in result:
        for shape in shapes:
            if shape != "per_key":
                result[f"ratio_{shape}_to_per_key"] = round(
                    result[shape]["events_per_s"] / result["per_key"]["events_per_s"], 1
                )
    print(json.dumps(result, indent=1))


def horizon(base: Settings, events: int, shape: str) -> None:
    """What the de-duplication horizon keeps in state: a scenario with a short window (so most
    orders close) drained at the default horizon; then Spark's state reader counts the `tws`
    shape's entries that only remember closed ids, and their sizes."""
    import json as _json

    name = f"bench-{uuid.uuid4().hex[:6]}"
    windows = {"window_after_s": 60, "skew_before_s": 30}
    short = base.model_copy(update={"pipeline": base.pipeline.model_copy(update=windows)})
    s = with_shape(isolated(short, name, max_offsets_per_trigger=10_000), "tws")
    n = preload(s, events)
    spark = build_session(s.spark)
    seconds, progress = drain(spark, s, "tws", n)
    entries = (
        spark.read.format("statestore")
        .option("path", s.spark.checkpoint_location)
        .option("stateVarName", "entries")
        .load()
        .selectExpr("user_map_key.order_id AS k", "user_map_value.json AS v")
        .collect()
    )
    spark.stop()
    closed = [(r.k, r.v) for r in entries if _json.loads(r.v)[:2] == [None, None]]
    op = progress[-1]["stateOperators"][0]
    count = max(1, len(closed))
    result = {
        "benchmark": "dedup-horizon", "events": n, "horizon_s": s.pipeline.dedup_horizon_s,
        "seconds": round(seconds, 1), "state_rows": op["numRowsTotal"],
        "entries": len(entries), "entries_only_remembering_closed_ids": len(closed),
        "their_key_bytes_avg": round(sum(len(k.encode()) for k, _ in closed) / count, 1),
        "their_value_bytes_avg": round(sum(len(v.encode()) for _, v in closed) / count, 1),
        "example": closed[0] if closed else None,
    }  # fmt: skip
    print(json.dumps(result, indent=1))


def preload_open_orders(s: Settings, n: int, end_ms: int, span_ms: int = 3_600_000) -> None:
    """`n` valid orders, event times spread over the `span_ms` before `end_ms`."""
    from confluent_kafka import Producer

    ensure_topics(s, [s.topics.orders, s.topics.payments], s.topics.partitions)
    p = Producer({**s.kafka.client_config(), "linger.ms": 20, "compression.type": "lz4",
                  "batch.size": 262144})  # fmt: skip
    item = (Item("p-1", "toys", 1, 2500),)
    for i in range(n):
        ts = end_ms - span_ms + (i * span_ms) // n
        order = Order(f"pre-{i}", "c-1", "s-1", "web", item, 2500, "EUR", ts, ts)
        while True:
            try:
                p.produce(
                    s.topics.orders, key=serde.key_of(order.order_id), value=serde.encode(order)
                )
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(300) == 0


# Nothing closes during the run; the steady phase's events are never late.
LONG_WINDOWS = {"window_after_s": 10 * 86_400, "allowed_lateness_s": 7_200, "skew_before_s": 120}


def open_state(base: Settings, sizes: list[int], shape: str, rate: float, seconds: float) -> None:
    for k in sizes:
        name = f"bench-{uuid.uuid4().hex[:6]}"
        s = with_shape(isolated(base, name, max_offsets_per_trigger=500_000), shape, **LONG_WINDOWS)
        t0 = time.perf_counter()
        preload_open_orders(s, k, int(time.time() * 1000) - 60_000)
        produced_s = time.perf_counter() - t0
        spark = build_session(s.spark)
        steady = s.model_copy(
            update={"pipeline": s.pipeline.model_copy(update={"max_offsets_per_trigger": None})}
        )
        q = start_query(spark, steady, discard)
        t0 = time.perf_counter()
        q.processAllAvailable()  # the preload, as large batches
        preload_s = time.perf_counter() - t0
        first_steady = (q.lastProgress or {}).get("batchId", -1) + 1
        producer = run_producer(s, rate, seconds, "--payment-delay-max-s", "60")
        producer.wait()
        time.sleep(5)
        progress = [p for p in q.recentProgress if p["batchId"] >= first_steady]
        q.stop()
        spark.stop()
        with_input = [p for p in progress if p.get("numInputRows")]
        ms = sorted(p["durationMs"]["triggerExecution"] for p in with_input)
        ops = [(p.get("stateOperators") or [{}])[0] for p in with_input]
        print(
            json.dumps(
                {
                    "benchmark": "open-state",
                    "shape": shape,
                    "open_orders": k,
                    "preload_produce_s": round(produced_s, 1),
                    "preload_drain_s": round(preload_s, 1),
                    "steady_batches": len(ms),
                    "steady_rows_per_batch_median": statistics.median(
                        p["numInputRows"] for p in with_input
                    )
                    if with_input
                    else None,
                    "batch_ms_median": statistics.median(ms) if ms else None,
                    "batch_ms_p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))] if ms else None,
                    "state_rows": ops[-1].get("numRowsTotal") if ops else None,
                    "state_memory_mb": round(ops[-1].get("memoryUsedBytes", 0) / 2**20, 1)
                    if ops
                    else None,
                    "state_ms_median": statistics.median(o.get("allUpdatesTimeMs", 0) for o in ops)
                    if ops
                    else None,
                }
            ),
            flush=True,
        )


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def driver_pids() -> dict[str, int]:
    """This process (the Python driver) and the JVM it started (py4j gateway)."""
    pids = {"python": os.getpid()}
    for child in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in child.read_text().split():
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"java" in cmd:
                pids["jvm"] = int(pid)
    return pids


class PeakRss:
    """Samples the resident memory of some processes every 0.2 s while in a `with` block."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before = {k: rss_mb(pid) for k, pid in pids.items()}
        self.peak = dict(self.before)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            for k, pid in self.pids.items():
                self.peak[k] = max(self.peak[k], rss_mb(pid))
            time.sleep(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


class TreeRss(PeakRss):
    """Peak resident memory of a spark-submit driver: its JVM (`pid`) and the Python process
    it starts (found again at every sample, as it starts after the JVM)."""

    def __init__(self, pid: int) -> None:
        super().__init__({"driver_jvm": pid})
        self.root = pid

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak["driver_jvm"] = max(self.peak["driver_jvm"], rss_mb(self.root))
            for child in Path(f"/proc/{self.root}/task").glob("*/children"):
                for pid in child.read_text().split():
                    try:
                        is_python = b"python" in Path(f"/proc/{pid}/cmdline").read_bytes()
                    except FileNotFoundError:
                        continue  # gone meanwhile
                    if is_python:
                        got = rss_mb(int(pid))
                        self.peak["driver_python"] = max(self.peak.get("driver_python", 0), got)
            time.sleep(0.2)


def memory(base: Settings, sizes: list[int], shape: str) -> None:
    for n_events in sizes:
        name = f"bench-{uuid.uuid4().hex[:6]}"
        s = with_shape(isolated(base, name, max_offsets_per_trigger=None), shape)
        n = preload(s, n_events)
        spark = build_session(s.spark)
        sink = MongoSink(s)
        sink.prepare()
        rss = PeakRss(driver_pids())
        with rss:
            seconds, progress = drain(spark, s, shape, n, sink)
        spark.stop()
        print(
            json.dumps(
                {
                    "benchmark": "driver-memory",
                    "shape": shape,
                    "events": n,
                    "batches_with_input": sum(1 for p in progress if p.get("numInputRows")),
                    "seconds": round(seconds, 1),
                    "rss_mb_before": {k: round(v) for k, v in rss.before.items()},
                    "rss_mb_peak": {k: round(v) for k, v in rss.peak.items()},
                }
            ),
            flush=True,
        )


def cluster(base: Settings, events: int, workers: list[int]) -> None:
    import subprocess

    from scripts import cluster as cluster_ctl
    from scripts import dist
    from scripts.submit import submit_command

    name = f"bench-{uuid.uuid4().hex[:6]}"
    n = preload(isolated(base, name), events)
    dist.ensure_built()
    results: dict[str, Any] = {"benchmark": "cluster", "events": n}
    for w in workers:
        s = base.model_copy(update={"stack": base.stack.model_copy(update={"spark_workers": w})})
        logs = REPO_ROOT / ".stack" / "bench" / f"{name}-eventlog-w{w}"
        logs.mkdir(parents=True, exist_ok=True)
        conf = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": logs.as_uri(),
                "spark.eventLog.compress": "false"}  # fmt: skip
        cluster_ctl.up(s)
        try:
            args = ["spark", "--shapes", "tws", "--topics", name]
            cmd = submit_command(s, args, app=Path(__file__).resolve(), conf=conf)
            env = {**os.environ, "SPARK_HOME": str(cluster_ctl.spark_home())}
            job = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)  # fmt: skip
            with TreeRss(job.pid) as rss:
                out, err = job.communicate(timeout=3600)
        finally:
            cluster_ctl.down(s)
        lines = [x for x in out.splitlines() if x.startswith('{"tws"')]
        if job.returncode != 0 or not lines:
            raise RuntimeError(f"workers={w} exit={job.returncode}: {err[-3000:]}")
        result = json.loads(lines[0])["tws"]
        result["driver_rss_mb_peak"] = {k: round(v) for k, v in rss.peak.items()}
        # Spark 4 rolls its event log: a directory of events_<n>_<app> files
        parts = sorted(logs.rglob("events_*"), key=lambda p: int(p.name.split("_")[1]))
        lines = [line for part in parts for line in part.read_text().splitlines()]
        result["where_the_time_goes"] = breakdown(lines)
        results[f"workers_{w}"] = result
        print(json.dumps({f"workers_{w}": result}), flush=True)
    if len(workers) == 2:
        a, b = (results[f"workers_{w}"]["events_per_s"] for w in workers)
        results["ratio"] = round(b / a, 2)
    print(json.dumps(results, indent=1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.bench_scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("mode", choices=["spark", "open-state", "memory", "cluster", "horizon"])
    p.add_argument("--topics", help="spark: drain an earlier run's topics (no preload)")
    p.add_argument("--workers", default="1,2", help="cluster: worker counts to compare")
    p.add_argument("--events", default="100000", help="spark, cluster: N; memory: N,N,...")
    p.add_argument("--shapes", default="tws,state,per_key", help="spark: shapes to run")
    p.add_argument("--shape", default="tws", help="open-state, memory: the shape")
    p.add_argument("--open", default="10000,100000,1000000,3000000", help="open-state: sizes")
    p.add_argument("--rate", type=float, default=500.0, help="open-state: events/s")
    p.add_argument("--seconds", type=float, default=120.0, help="open-state: steady phase")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    s = load_settings()
    if args.mode == "spark":
        spark_side(s, int(args.events), args.shapes.split(","), args.topics)
    elif args.mode == "horizon":
        horizon(s, int(args.events), args.shape)
    elif args.mode == "cluster":
        cluster(s, int(args.events), [int(x) for x in args.workers.split(",")])
    elif args.mode == "open-state":
        sizes = [int(x) for x in args.open.split(",")]
        open_state(s, sizes, args.shape, args.rate, args.seconds)
    else:
        memory(s, [int(x) for x in args.events.split(",")], args.shape)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
