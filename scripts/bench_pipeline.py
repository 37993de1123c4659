"""End-to-end benchmarks of the reconciliation job on the local stack. Prints figures; asserts
nothing (targets belong in docs/benchmarks.md, not in timed tests).

    python -m scripts.bench_pipeline throughput [--events 1000000] [--shapes tws,state]
    python -m scripts.bench_pipeline latency [--rate 2000] [--seconds 120]
    python -m scripts.bench_pipeline state [--rate 1000] [--minutes 10]

throughput: preload N events (a seeded scenario with the default dirt) into fresh topics, drain
  them with the job (Trigger.AvailableNow) into MongoDB, and compare with the raw ceiling measured
  in the same run: confluent-kafka reading the same topics plus pymongo bulk-upserting the same
  number of documents, no Spark.
latency: producers at a steady rate in wall-clock time; p50/p99 of Kafka record timestamp ->
  document written, over every document written after a warm-up.
state: a steady run; every 30 s the state store's rows and memory, and the orders held open.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from pymongo import ASCENDING, MongoClient, UpdateOne

from conf.settings import REPO_ROOT, MongoSettings, Settings, TopicSettings, load_settings
from conf.spark_worker import SWITCH
from producers.scenario import ScenarioConfig, generate
from producers.topics import ensure_topics
from scripts.eventlog import per_batch
from sinks.batch_stats import BatchStats, percentile
from sinks.mongo_io import OUTCOME_INDEXES, MongoSink, PaymentClaims
from sinks.mongo_store import CHUNK
from streaming.job import start_query
from streaming.session import build_session

logger = logging.getLogger("bench")


def isolated(s: Settings, name: str, **pipeline: Any) -> Settings:
    return s.model_copy(
        update={
            "topics": TopicSettings(orders=f"{name}-orders", payments=f"{name}-payments"),
            "mongo": MongoSettings(uri=s.mongo.uri, database=name.replace("-", "_")),
            "spark": s.spark.model_copy(
                update={"checkpoint_location": str(REPO_ROOT / ".stack" / "bench" / name)}
            ),
            "pipeline": s.pipeline.model_copy(update=pipeline),
        }
    )


def preload(s: Settings, events: int) -> int:
    from confluent_kafka import Producer

    ensure_topics(s, [s.topics.orders, s.topics.payments], s.topics.partitions)
    t0 = time.perf_counter()
    scenario = generate(
        ScenarioConfig(n_orders=int(events / 2.05), seed=5, rules=s.pipeline.rules())
    )
    names = {"orders": s.topics.orders, "payments": s.topics.payments}
    logger.info("generated %d events in %.1fs", len(scenario.emissions), time.perf_counter() - t0)
    p = Producer(
        {
            **s.kafka.client_config(),
            "linger.ms": 20,
            "compression.type": "lz4",
            "batch.size": 262144,
            "enable.idempotence": True,
        }
    )
    for e in scenario.emissions:
        while True:
            try:
                p.produce(names[e.topic], key=e.key, value=e.value)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(120) == 0
    return len(scenario.emissions)


def consume_all(s: Settings) -> tuple[int, float]:
    c = Consumer(
        {
            **s.kafka.client_config(),
            "group.id": f"bench-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    parts = []
    for t in (s.topics.orders, s.topics.payments):
        md = c.list_topics(t, timeout=10).topics[t]
        parts += [TopicPartition(t, p, 0) for p in md.partitions]
    ends = {(tp.topic, tp.partition): c.get_watermark_offsets(tp)[1] for tp in parts}
    total = sum(ends.values())
    c.assign(parts)
    n, t0 = 0, time.perf_counter()
    while n < total:
        for m in c.consume(10_000, timeout=1.0):
            if m.error() is None:
                n += 1
    c.close()
    return n, time.perf_counter() - t0


def mongo_ceiling(s: Settings, docs: int, sample: int | None = 100_000) -> float:
    """Seconds for pymongo to bulk-upsert `docs` documents, chunked and threaded as the sink does.

    The documents are the pipeline's own outcomes read back, so sizes match; each is upserted
    twice (new, then existing), as the pipeline writes an order on arrival and again when final.
    """
    db = MongoClient(s.mongo.uri.get_secret_value())[s.mongo.database]
    # at most `sample` documents (None: all of them, as the throughput run does), each
    # upserted twice; a sample is quicker to run and extrapolated
    found = db[s.mongo.outcomes_collection].find(batch_size=2000)
    limit = docs // 2 if sample is None else min(docs // 2, sample)
    picked = list(found.limit(limit))
    coll = db["ceiling"]
    coll.drop()  # a fresh collection with the outcomes' indexes, as the pipeline's
    for field in OUTCOME_INDEXES:
        coll.create_index([(field, ASCENDING)])
    # the second pass changes every document (`rev`), as the pipeline's later writes do: an
    # upsert that changes nothing is skipped by the server and would flatter the ceiling
    passes = [
        [UpdateOne({"_id": d["_id"]}, {"$set": {**d, "rev": rev}}, upsert=True) for d in picked]
        for rev in (0, 1)
    ]
    t0 = time.perf_counter()
    for ops in passes:
        for i in range(0, len(ops), CHUNK):
            coll.bulk_write(ops[i : i + CHUNK], ordered=False)
    elapsed = time.perf_counter() - t0
    return elapsed * docs / (2 * len(picked))  # scaled to exactly `docs` upserts


def ceiling_only(base: Settings, database: str, events: int, docs: int, sample: int | None) -> None:
    """The raw ceiling alone, against the topics and documents of an earlier throughput run."""
    name = database.replace("_", "-")
    s = isolated(base, name)
    consumed, consume_s = consume_all(s)
    mongo_s = mongo_ceiling(s, docs, sample)
    print(
        json.dumps(
            {
                "events": consumed,
                "raw_kafka_read_seconds": round(consume_s, 2),
                "raw_mongo_upserts_per_s": round(docs / mongo_s),
                "raw_ceiling_events_per_s": round(events / (consume_s + mongo_s)),
            },
            indent=1,
        )
    )


def drain_to_mongo(
    s: Settings, figures: bool = True, batches: list[BatchStats] | None = None
) -> tuple[float, int]:
    """Drain `s`'s topics into its database with the job (Trigger.AvailableNow): seconds from
    query start to the last batch written, and documents written. `figures`: with the
    per-minute figures; `batches` gets each batch's stats."""
    spark = build_session(s.spark)
    written = [0]

    def on_batch(stats: BatchStats) -> None:
        written[0] += stats.written
        if batches is not None:
            batches.append(stats)
        logger.info(
            "%s batch %d rows=%d seconds=%.1f",
            s.pipeline.shape, stats.batch_id, stats.rows, stats.seconds,
        )  # fmt: skip

    sink = MongoSink(s, on_batch=on_batch, figures=figures)
    sink.prepare()
    t0 = time.perf_counter()
    q = start_query(spark, s, sink, available_now=True, claims=PaymentClaims(s))
    q.awaitTermination()
    seconds = time.perf_counter() - t0
    spark.stop()
    return seconds, written[0]


def throughput(base: Settings, events: int, shapes: list[str]) -> None:
    """Preload once; drain the same topics with each shape into its own database; then the raw
    ceiling once, on the first shape's documents, scaled to each shape's document count."""
    name = f"bench-{uuid.uuid4().hex[:6]}"
    s = isolated(base, name, max_offsets_per_trigger=200_000)
    n = preload(s, events)
    runs: dict[str, tuple[float, int, Settings]] = {}
    for shape in shapes:
        run = s.model_copy(
            update={
                "mongo": MongoSettings(uri=s.mongo.uri, database=f"{s.mongo.database}_{shape}"),
                "spark": s.spark.model_copy(
                    update={"checkpoint_location": f"{s.spark.checkpoint_location}-{shape}"}
                ),
                "pipeline": s.pipeline.model_copy(update={"shape": shape}),
            }
        )
        seconds, written = drain_to_mongo(run)
        runs[shape] = (seconds, written, run)
        logger.info("%s: %d events in %.1fs, %d documents", shape, n, seconds, written)
    consumed, consume_s = consume_all(s)
    first_written, first = runs[shapes[0]][1], runs[shapes[0]][2]
    per_doc = mongo_ceiling(first, first_written, None) / first_written
    report: dict[str, Any] = {
        "benchmark": "throughput",
        "events": n,
        "raw_kafka_read_seconds": round(consume_s, 2),
        "raw_mongo_upserts_per_s": round(1 / per_doc),
    }
    for shape, (seconds, written, _) in runs.items():
        ceiling = n / (consume_s + per_doc * written)
        report[shape] = {
            "documents_written": written,
            "pipeline_seconds": round(seconds, 1),
            "pipeline_events_per_s": round(n / seconds),
            "raw_ceiling_events_per_s": round(ceiling),
            "ratio_pipeline_to_ceiling": round(n / seconds / ceiling, 3),
        }
    print(json.dumps(report, indent=1))


def batch_breakdown(progress: list[dict[str, Any]]) -> dict[str, float]:
    """Medians over the query's recent batches with input: where a micro-batch's time goes."""
    rows = [p for p in progress if p.get("numInputRows")]
    out: dict[str, float] = {}
    for key in ("triggerExecution", "latestOffset", "queryPlanning", "walCommit", "addBatch",
                "commitOffsets"):  # fmt: skip
        values = [p["durationMs"].get(key, 0) for p in rows]
        if values:
            out[key] = statistics.median(values)
    for key in ("allUpdatesTimeMs", "allRemovalsTimeMs", "commitTimeMs"):
        values = [(p.get("stateOperators") or [{}])[0].get(key, 0) for p in rows]
        if values:
            out[f"state.{key}"] = statistics.median(values)
    out["input_rows"] = statistics.median([p["numInputRows"] for p in rows]) if rows else 0
    return out


def time_budget(
    progress: list[dict[str, Any]],
    sink_stats: dict[int, BatchStats],
    timeline: dict[int, dict[str, float]],
) -> dict[str, float]:
    """Medians over the measured batches with input: where a live micro-batch's milliseconds
    go, in the order they are spent (Spark's progress report, the event log's stages and
    tasks, the sink's own stats). `*_sum` figures add up over the tasks of a stage, which run
    in parallel on the cores; the rest is wall-clock time."""
    rows = []
    for p in progress:
        batch, stats = p["batchId"], sink_stats.get(p["batchId"])
        if not p.get("numInputRows") or stats is None or batch not in timeline:
            continue
        d, t = p["durationMs"], timeline[batch]
        state = (p.get("stateOperators") or [{}])[0]
        job_ms = (
            t.get("map_wall_ms", 0) + t.get("between_stages_ms", 0) + t.get("reduce_wall_ms", 0)
        )
        row = {
            "1 offsets: latestOffset": d.get("latestOffset", 0),
            "2 planning: queryPlanning": d.get("queryPlanning", 0),
            "3 offsets log: walCommit": d.get("walCommit", 0),
            "4 map stage wall (Kafka fetch, parse, shuffle write)": t.get("map_wall_ms", 0),
            "4a map tasks": t.get("map_tasks", 0),
            "4b map task run, sum": t.get("map_run_ms", 0),
            "4c map task deserialize, sum": t.get("map_deserialize_ms", 0),
            "5 between the stages": t.get("between_stages_ms", 0),
            "6 reduce stage wall (shuffle read, state, sink writes)": t.get("reduce_wall_ms", 0),
            "6a reduce tasks": t.get("reduce_tasks", 0),
            "6b reduce task run, sum": t.get("reduce_run_ms", 0),
            "6c shuffle fetch wait, sum": t.get("shuffle_fetch_wait_ms", 0),
            "6d state operator updates, sum (allUpdatesTimeMs)": state.get("allUpdatesTimeMs", 0),
            "6e state store commit, sum (commitTimeMs)": state.get("commitTimeMs", 0),
            "6f sink writes and markers, sum": 1000 * sum(x.write_s for x in stats.partitions),
            "7 driver after the job (fold, figures, batch marker)": max(
                0.0, 1000 * stats.seconds - job_ms
            ),
            "7a of which per-minute figures": 1000 * stats.figures_s,
            "8 commit log: commitOffsets": d.get("commitOffsets", 0),
            "9 whole batch: triggerExecution": d.get("triggerExecution", 0),
            "rows": p["numInputRows"],
        }
        rows.append(row)
    if not rows:
        return {}
    return {k: round(statistics.median(r[k] for r in rows)) for k in rows[0]} | {
        "batches": len(rows)
    }


def produced_counts(s: Settings) -> dict[str, int]:
    """Messages in each of the run's topics (end minus start offsets)."""
    c = Consumer({**s.kafka.client_config(), "group.id": "bench-counts"})
    counts = {}
    for topic in (s.topics.orders, s.topics.payments):
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        counts[topic] = 0
        for p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            counts[topic] += hi - lo
    c.close()
    return counts


def run_producer(
    s: Settings, rate: float, seconds: float, *extra: str, whole: bool = False
) -> subprocess.Popen[bytes]:
    """producers.simulate in wall-clock mode at `rate` events/s, with the job's event-time rules.
    It stops after `seconds`; with `whole`, it sends the whole scenario of `seconds` of orders
    instead (the payments due after the last order too, as a `--truth` file expects)."""
    orders_per_s = rate / 2.05  # an order brings ~1.05 payments
    count = int(orders_per_s * seconds) + (0 if whole else 10)
    cmd = [sys.executable, "-m", "producers.simulate", "--clock", "wall",
           "--rate", str(orders_per_s), "--count", str(count),
           *([] if whole else ["--duration", str(seconds)]), "--orders-topic", s.topics.orders,
           "--payments-topic", s.topics.payments, "--log-level", "WARNING", *extra]  # fmt: skip
    rules = ("window_after_s", "allowed_lateness_s", "skew_before_s", "dedup_horizon_s")
    env = {**os.environ, **{f"PIPELINE_{k.upper()}": str(getattr(s.pipeline, k)) for k in rules}}
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


# The state run uses short windows so that orders close within the run and the state can level
# off: a window of 2 min after the order, 4 min of allowed lateness, payments within 1 min
# (the producers require lateness >= payment delay + 2 min).
SHORT_WINDOWS = {"window_after_s": 120, "allowed_lateness_s": 240, "skew_before_s": 30}


def steady(
    base: Settings,
    rate: float,
    seconds: float,
    sample_every: float | None,
    warmup: float = 20,
    short_windows: bool = False,
    budget: bool = False,
) -> None:
    name = f"bench-{uuid.uuid4().hex[:6]}"
    windows = SHORT_WINDOWS if short_windows else {}
    s = isolated(base, name, max_offsets_per_trigger=None, starting_offsets="earliest", **windows)
    ensure_topics(s, [s.topics.orders, s.topics.payments], s.topics.partitions)
    logs = REPO_ROOT / ".stack" / "bench" / f"{name}-eventlog"
    if budget:
        logs.mkdir(parents=True, exist_ok=True)
    conf = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": logs.as_uri(),
            "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false"
            } if budget else None  # fmt: skip
    spark = build_session(s.spark, extra=conf)
    latencies: Counter[int] = Counter()
    warmup_until = time.time() + warmup
    batches: list[float] = []
    sink_stats: dict[int, BatchStats] = {}

    def on_batch(stats: BatchStats) -> None:
        batches.append(stats.seconds)
        if time.time() > warmup_until:
            latencies.update(stats.latency)
            sink_stats[stats.batch_id] = stats

    sink = MongoSink(s, on_batch=on_batch)
    sink.prepare()
    q = start_query(spark, s, sink, claims=PaymentClaims(s))
    # payments within 60 s of their order, so that they are produced within the run and the
    # offered load is `rate` (with the default delays of up to 15 min most would fall after it)
    producer = run_producer(s, rate, seconds, "--payment-delay-max-s", "60")
    samples = []
    t0 = time.time()
    outcomes = MongoClient(s.mongo.uri.get_secret_value())[s.mongo.database][
        s.mongo.outcomes_collection
    ]
    while producer.poll() is None:
        time.sleep(sample_every or 1)
        if sample_every:
            ops = (q.lastProgress or {}).get("stateOperators") or [{}]
            recent = [p for p in q.recentProgress if p.get("numInputRows")][-10:]
            sample = {
                "t_s": round(time.time() - t0),
                "state_rows": ops[0].get("numRowsTotal"),
                "state_memory_mb": round(ops[0].get("memoryUsedBytes", 0) / 2**20, 1),
                "open_orders": outcomes.count_documents({"final": False}),
                "input_rows_per_s": round((q.lastProgress or {}).get("processedRowsPerSecond", 0)),
                "batch_ms_median_recent": statistics.median(
                    p["durationMs"]["triggerExecution"] for p in recent
                )
                if recent
                else None,
            }
            samples.append(sample)
            print(json.dumps(sample), flush=True)
    if producer.returncode != 0:
        print(f"producer failed with exit code {producer.returncode}", file=sys.stderr)
    time.sleep(5)
    breakdown = batch_breakdown(q.recentProgress)
    progress = list(q.recentProgress)
    q.stop()
    spark.stop()
    produced = sum(produced_counts(s).values())
    result: dict[str, Any] = {
        "benchmark": "state" if sample_every else "latency",
        "shape": s.pipeline.shape,
        "rate_events_per_s": rate,
        "windows": windows or "default",
        "seconds": seconds,
        "warmup_seconds": warmup,
        "events_produced": produced,
        "offered_events_per_s": round(produced / seconds),
        "documents_measured": sum(latencies.values()),
        "batch_seconds_median": round(statistics.median(batches), 2),
    }
    if latencies:  # from the sink's latency histogram (within 5%)
        for q in (50, 99, 100):
            result[f"p{q}_ms"] = round(percentile(latencies, q) or 0)
    result["median_batch_ms"] = breakdown
    if budget:
        (log_file,) = logs.iterdir()
        with log_file.open(encoding="utf-8") as f:
            timeline = per_batch(f)
        result["budget_ms"] = time_budget(progress, sink_stats, timeline)
    if samples:
        result["samples"] = samples
    print(json.dumps(result, indent=1))


def compare_lean_imports(argv: list[str]) -> None:
    """The same latency run twice, one after the other, each in a process of its own (the
    workers take the switch from the environment their JVM started with): off, then on."""
    args = [a for a in argv if a != "--compare-lean-imports"]
    results = {}
    for label, value in (("off", "0"), ("on", "1")):
        env = {**os.environ, SWITCH: value}
        cmd = [sys.executable, "-m", "scripts.bench_pipeline", *args]
        run = subprocess.run(cmd, env=env, cwd=REPO_ROOT, check=True, capture_output=True)
        out = "\n" + run.stdout.decode()
        results[label] = json.loads(out[out.rindex("\n{") :])
        print(json.dumps({"lean_imports": label, **results[label]}, indent=1), flush=True)
    off, on = results["off"], results["on"]
    print(json.dumps({k: round(on[k] / off[k], 3) for k in ("batch_seconds_median", "p50_ms",
                      "p99_ms") if off.get(k) and on.get(k)}, indent=1))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m scripts.bench_pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("mode", choices=["throughput", "latency", "state", "ceiling"])
    p.add_argument("--database", help="ceiling: the throughput run's database")
    p.add_argument("--docs", type=int, default=0, help="ceiling: documents that run wrote")
    p.add_argument(
        "--sample", type=int, default=0, help="ceiling: upsert at most this many (0: all)"
    )
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument(
        "--shapes", default="tws,state", help="throughput: shapes to drain the same topics with"
    )
    p.add_argument("--rate", type=float, default=2000.0, help="events/s (latency, state)")
    p.add_argument("--seconds", type=float, default=120.0, help="latency run length")
    p.add_argument("--minutes", type=float, default=10.0, help="state run length")
    p.add_argument(
        "--warmup", type=float, default=20.0, help="latency: seconds not measured at the start"
    )
    p.add_argument(
        "--windows",
        choices=["short", "default"],
        default="short",
        help="state: short windows (orders close within the run) or the settings' own",
    )
    p.add_argument(
        "--shape",
        choices=["state", "join", "tws"],
        default=None,
        help="PIPELINE_SHAPE for this run",
    )
    p.add_argument(
        "--budget",
        action="store_true",
        help="latency: also print the median batch's time budget (from Spark's event log)",
    )
    p.add_argument(
        "--compare-lean-imports",
        action="store_true",
        help="latency: run twice, back to back, with the workers' lean imports off, then on "
        "(conf/spark_worker.py), and print both",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("py4j", "streaming.job"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    base = load_settings()
    if args.shape:
        base = base.model_copy(
            update={"pipeline": base.pipeline.model_copy(update={"shape": args.shape})}
        )
    if args.mode == "throughput":
        throughput(base, args.events, args.shapes.split(","))
    elif args.mode == "ceiling":
        ceiling_only(base, args.database, args.events, args.docs, args.sample or None)
    elif args.mode == "latency" and args.compare_lean_imports:
        compare_lean_imports(argv or sys.argv[1:])
    elif args.mode == "latency":
        steady(base, args.rate, args.seconds, None, args.warmup, budget=args.budget)
    else:
        steady(base, args.rate, args.minutes * 60, 30.0, short_windows=args.windows == "short")
    Path(REPO_ROOT / ".stack" / "bench").mkdir(parents=True, exist_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
