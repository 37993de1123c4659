"""Throughput with hostile input (issue 13). Prints figures; asserts nothing (the target, with
garbage at most 2x the drain time without, belongs in docs/benchmarks.md).

    python -m scripts.bench_fuzz [--orders 60000] [--fuzz 10000] [--seed 5] [--per-trigger N]

The same seeded scenario (default dirt) is drained by the job (Trigger.AvailableNow) twice,
each time from fresh topics into a fresh database and checkpoint: once alone, once interleaved
with the fuzz producer's malformed messages (`producers/fuzz.py`), after an unmeasured warm-up
drain of a small mixed scenario. Per run: messages, valid
events, dead letters, drain seconds, messages/s, and whether MongoDB equals the (merged) ground
truth; then the ratio of the two drain times, and the raw upsert ceiling of the MongoDB-protocol
server measured on the first run's documents (`scripts.bench_pipeline.mongo_ceiling`). The
run's databases (`bench_fuzz_*`), topics and checkpoints are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import shutil
import sys
import time
import uuid
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

from conf.settings import Settings, load_settings
from producers import fuzz, serde
from producers.kafka_io import Outgoing, Sender
from producers.scenario import ScenarioConfig, generate
from producers.topics import ensure_topics
from producers.truth import compute_truth
from scripts.bench_pipeline import drain_to_mongo, isolated, mongo_ceiling
from scripts.check_truth import differences, fetch, merge

logger = logging.getLogger("bench")


def produce(s: Settings, items: list[Outgoing], max_bytes: int) -> float:
    """Send `items` to `s`'s topics (created fresh); seconds it took."""
    names = {serde.ORDERS: s.topics.orders, serde.PAYMENTS: s.topics.payments}
    ensure_topics(s, list(names.values()), s.topics.partitions)
    sender = Sender(s, names, **{"message.max.bytes": max_bytes})
    summary = sender.send_all(items, progress=False)
    if summary.failed or summary.acked != len(items):
        raise RuntimeError(f"produce failed: {summary.line()}")
    return summary.elapsed_s


def one_run(
    s: Settings, items: list[Outgoing], truth: dict[str, Any], max_bytes: int
) -> dict[str, Any]:
    """Produce `items`, drain them, compare MongoDB with `truth`: the run's figures."""
    produce_s = produce(s, items, max_bytes)
    seconds, written = drain_to_mongo(s)
    outcomes, dead, _ = fetch(s)
    diffs = differences(truth, outcomes, dead)
    valid = len(items) - len(truth["dead_letters"])
    logger.info("drained %d messages in %.1fs, %d differences", len(items), seconds, len(diffs))
    return {
        "messages": len(items),
        "megabytes": round(sum(len(i.value or b"") for i in items) / 2**20, 1),
        "valid_events": valid,
        "dead_letters": len(dead),
        "produce_seconds": round(produce_s, 1),
        "drain_seconds": round(seconds, 1),
        "messages_per_s": round(len(items) / seconds),
        "valid_events_per_s": round(valid / seconds),
        "documents_written": written,
        "equals_truth": not diffs,
        "load_average_1m": round(os.getloadavg()[0], 2),  # others' work on the machine
        **({"differences": diffs} if diffs else {}),
    }


def cleanup(runs: list[Settings]) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(runs[0].mongo.uri.get_secret_value())
    for s in runs:
        client.drop_database(s.mongo.database)
        shutil.rmtree(s.spark.checkpoint_location, ignore_errors=True)
    client.close()
    admin = AdminClient(runs[0].kafka.client_config())
    topics = [t for s in runs for t in (s.topics.orders, s.topics.payments)]
    for fut in admin.delete_topics(topics, request_timeout=30).values():
        with contextlib.suppress(KafkaException):  # not created: the run failed before
            fut.result()


def bench(base: Settings, orders: int, n_fuzz: int, seed: int, per_trigger: int) -> None:
    name = f"bench-fuzz-{uuid.uuid4().hex[:6]}"
    runs = [isolated(base, f"{name}-{run}", max_offsets_per_trigger=per_trigger)
            for run in ("warmup", "alone", "garbage")]  # fmt: skip
    warmup, alone, garbage = runs
    rules = alone.pipeline.rules()
    t0 = time.perf_counter()
    scenario = generate(ScenarioConfig(n_orders=orders, seed=seed, rules=rules))
    messages = fuzz.generate(n_fuzz, seed, base.pipeline.max_message_bytes)
    logger.info("generated in %.1fs", time.perf_counter() - t0)
    report: dict[str, Any] = {
        "benchmark": "fuzz",
        "orders": orders,
        "seed": seed,
        "fuzz_messages": n_fuzz,
        "max_offsets_per_trigger": per_trigger,
        "shape": base.pipeline.shape,
    }
    max_bytes = fuzz.message_max_bytes(messages)
    try:
        # not measured: the first query in a JVM pays for class loading and JIT compilation,
        # which would flatter whichever run came second
        small = generate(ScenarioConfig(n_orders=2000, seed=seed + 1, rules=rules))
        first: list[Outgoing] = list(small.emissions)
        produce(warmup, fuzz.interleave(random.Random(seed), first, messages[:500]), max_bytes)
        logger.info("warm-up drained in %.1fs", drain_to_mongo(warmup)[0])

        truth = compute_truth(scenario, alone.topics.orders, alone.topics.payments).to_json()
        report["alone"] = one_run(alone, list(scenario.emissions), truth, max_bytes)

        names = {serde.ORDERS: garbage.topics.orders, serde.PAYMENTS: garbage.topics.payments}
        truth = merge(
            [
                compute_truth(scenario, garbage.topics.orders, garbage.topics.payments).to_json(),
                fuzz.fuzz_truth(messages, names, rules, seed).to_json(),
            ]
        )
        valid: list[Outgoing] = list(scenario.emissions)
        mixed = fuzz.interleave(random.Random(seed), valid, messages)
        report["with_garbage"] = one_run(garbage, mixed, truth, max_bytes)

        report["ratio_drain_with_to_without"] = round(
            report["with_garbage"]["drain_seconds"] / report["alone"]["drain_seconds"], 2
        )
        docs = report["alone"]["documents_written"]  # upserted as the pipeline writes them
        report["raw_mongo_upserts_per_s"] = round(docs / mongo_ceiling(alone, docs, 10_000))
    finally:
        cleanup(runs)
    print(json.dumps(report, indent=1), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m scripts.bench_fuzz",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--orders", type=int, default=60_000, help="orders in the valid scenario")
    p.add_argument("--fuzz", type=int, default=10_000, help="malformed messages mixed in")
    p.add_argument("--seed", type=int, default=5, help="seed of the scenario and the fuzz")
    p.add_argument(
        "--per-trigger",
        type=int,
        default=10_000,
        help="PIPELINE_MAX_OFFSETS_PER_TRIGGER: several batches, so that late events are late",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("py4j", "streaming.job", "producers.kafka_io", "sinks.mongo_io"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    bench(load_settings(), args.orders, args.fuzz, args.seed, args.per_trigger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
