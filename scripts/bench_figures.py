"""What the per-minute figures (issue 11) cost the job. Prints figures; asserts nothing.

    python -m scripts.bench_figures step  [--orders 30000] [--per-batch 2000]
    python -m scripts.bench_figures job   [--orders 20000] [--per-trigger 4000]

`step`: the pure state step (no Spark) over a seeded scenario's valid events, in batches per
bucket as the job runs it, once as it is and once with its tally switched off (in this process
only): the Python cost of counting the figures.

`job`: the same preloaded topics drained by the job (Trigger.AvailableNow) twice, into fresh
databases: with the figures and without (`MongoSink(figures=False)`). Per run: drain seconds,
batches, and for the figures the driver's fold per batch (median, max; documents touched); with
the raw upsert ceiling of the MongoDB-protocol server measured in the same run
(`scripts.bench_pipeline.mongo_ceiling`). The run's databases, topics and checkpoints are
removed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import time
import uuid
import zlib
from typing import Any

from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

from conf.settings import Settings, load_settings
from contract import minutely
from contract.events import F, Order
from producers import serde
from producers.scenario import ScenarioConfig, generate
from scripts.bench_pipeline import drain_to_mongo, isolated, mongo_ceiling, preload
from sinks.batch_stats import BatchStats
from streaming.step import StepResult, empty_state, step

logger = logging.getLogger("bench")
BUCKETS = 4


def step_events(orders: int) -> list[tuple[Any, ...]]:
    """The scenario's valid events as the state step receives them (streaming/step.py)."""
    cfg = ScenarioConfig(n_orders=orders, seed=5, p_malformed=0.0)
    out = []
    for i, e in enumerate(generate(cfg).emissions):
        ev = serde.decode(e.topic, e.value)
        if isinstance(ev, Order):
            fields = json.dumps({F.CHANNEL: ev.channel})
            out.append(("order", ev.order_id, None, ev.order_ts, ev.amount, ev.currency, None,
                        e.emit_ms, e.topic, 0, i, fields, e.key, e.value))  # fmt: skip
        elif ev is not None:
            out.append(("payment", ev.order_id, ev.payment_id, ev.payment_ts, ev.amount,
                        ev.currency, ev.method, e.emit_ms, e.topic, 0, i, None, e.key,
                        e.value))  # fmt: skip
    return out


def run_steps(events: list[tuple[Any, ...]], per_batch: int, lateness_ms: int) -> float:
    from contract.rules import Rules

    rules = Rules(allowed_lateness_ms=lateness_ms)
    states = [empty_state() for _ in range(BUCKETS)]
    watermark, t0 = -1, time.perf_counter()
    for i in range(0, len(events), per_batch):
        batch = events[i : i + per_batch]
        by_bucket: list[list[tuple[Any, ...]]] = [[] for _ in range(BUCKETS)]
        for ev in batch:
            by_bucket[zlib.crc32(ev[1].encode()) % BUCKETS].append(ev)
        for state, evs in zip(states, by_bucket, strict=True):
            step(state, evs, watermark, rules)
        watermark = max(watermark, max(ev[3] for ev in batch) - lateness_ms)
    return time.perf_counter() - t0


def bench_step(orders: int, per_batch: int) -> None:
    events = step_events(orders)
    lateness = 15 * 60_000
    run_steps(events[:5000], per_batch, lateness)  # warm-up
    counted = StepResult.count
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(5):  # interleaved, the best of each: a busy machine slows both alike
        for figures in (True, False):
            off = lambda self, contributions: None  # noqa: E731
            StepResult.count = counted if figures else off  # type: ignore[method-assign]
            try:
                times[figures].append(run_steps(events, per_batch, lateness))
            finally:
                StepResult.count = counted  # type: ignore[method-assign]
    with_tally, without = min(times[True]), min(times[False])
    print(json.dumps({"benchmark": "figures-step", "events": len(events),
                      "step_seconds_with_figures": round(with_tally, 3),
                      "step_seconds_without": round(without, 3),
                      "ratio": round(with_tally / without, 3)}, indent=1))  # fmt: skip


def drain(s: Settings, figures: bool) -> dict[str, Any]:
    stats: list[BatchStats] = []
    seconds, written = drain_to_mongo(s, figures, stats)
    folds = [b.figures_s for b in stats if b.rows]
    report: dict[str, Any] = {"drain_seconds": round(seconds, 1), "batches": len(stats),
                              "documents_written": written}  # fmt: skip
    if figures:
        db = MongoClient(s.mongo.uri.get_secret_value())[s.mongo.database]
        report.update(
            figure_documents=db[s.mongo.minutely_collection].count_documents(
                {"metric": {"$in": list(minutely.METRICS)}}
            ),
            fold_seconds_median=round(statistics.median(folds), 3),
            fold_seconds_max=round(max(folds), 3),
            fold_share_of_batch=round(sum(folds) / sum(b.seconds for b in stats), 3),
        )
    return report


def bench_job(base: Settings, orders: int, per_trigger: int) -> None:
    name = f"bench-fig-{uuid.uuid4().hex[:6]}"
    s = isolated(base, name, max_offsets_per_trigger=per_trigger)
    events = preload(s, int(orders * 2.05))
    runs: dict[str, Any] = {}
    try:
        # the first drain also warms the JVM up: it is run again last, and the faster one kept
        plan = (("without_figures", False, "a"), ("with_figures", True, "b"),
                ("without_figures", False, "c"))  # fmt: skip
        for label, figures, suffix in plan:  # each into its own database and checkpoint
            run = isolated(base, f"{name}-{suffix}", max_offsets_per_trigger=per_trigger)
            run = run.model_copy(update={"topics": s.topics})
            got = drain(run, figures)
            if label not in runs or got["drain_seconds"] < runs[label][0]["drain_seconds"]:
                runs[label] = (got, run)
            runs[suffix] = (got, run)  # (for the clean-up)
        report = {label: runs[label][0] for label in ("with_figures", "without_figures")}
        first = runs["with_figures"][1]
        docs = report["with_figures"]["documents_written"]
        upserts_s = docs / mongo_ceiling(first, docs)
        print(json.dumps({"benchmark": "figures-job", "events": events,
                          "raw_mongo_upserts_per_s": round(upserts_s), **report,
                          "drain_ratio": round(report["with_figures"]["drain_seconds"]
                                               / report["without_figures"]["drain_seconds"], 3)},
                         indent=1))  # fmt: skip
    finally:
        client: MongoClient[dict[str, Any]] = MongoClient(base.mongo.uri.get_secret_value())
        for _, run in runs.values():
            client.drop_database(run.mongo.database)
            shutil.rmtree(run.spark.checkpoint_location, ignore_errors=True)
        client.drop_database(s.mongo.database)
        AdminClient(base.kafka.client_config()).delete_topics([s.topics.orders, s.topics.payments])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="what", required=True)
    p_step = sub.add_parser("step")
    p_step.add_argument("--orders", type=int, default=30_000)
    p_step.add_argument("--per-batch", type=int, default=2_000)
    p_job = sub.add_parser("job")
    p_job.add_argument("--orders", type=int, default=20_000)
    p_job.add_argument("--per-trigger", type=int, default=4_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if args.what == "step":
        bench_step(args.orders, args.per_batch)
    else:
        bench_job(load_settings(), args.orders, args.per_trigger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
