"""The Kafka Connect path against the direct path, in one run. Prints figures; asserts nothing.

    python -m scripts.bench_connect [--events 200000] [--port 28386]

The same preloaded topics (a seeded scenario, no dirt) are drained by the job twice
(Trigger.AvailableNow), each into its own database:
- direct: the job writes MongoDB (PIPELINE_WRITE_TO=mongo);
- connect: the job publishes the documents (PIPELINE_WRITE_TO=kafka) and a Kafka Connect worker
  of this run (scripts/connect.py, REST on --port) upserts them with MongoDB's sink connector.
Per path: the job's seconds, and for Connect the seconds until MongoDB holds what the direct
path wrote (every document equal but for the processing-time fields `timing` and
`dead_lettered_at`, which is checked),
from the job's start. With the raw upsert ceiling of the MongoDB-protocol server measured in the
same run (`scripts.bench_pipeline.mongo_ceiling`). The run's databases, topics and checkpoints
are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

from conf.settings import STACK_DIR, ConnectSettings, Settings, TopicSettings, load_settings
from producers.topics import ensure_topics
from scripts import connect
from scripts.bench_pipeline import drain_to_mongo, isolated, mongo_ceiling, preload

logger = logging.getLogger("bench")
COLLECTIONS = ("outcomes_collection", "orphans_collection", "dead_letters_collection")


PROCESSING_TIME = {"timing": 0, "dead_lettered_at": 0}  # differ between the paths by design


def documents(s: Settings) -> dict[str, dict[str, Any]]:
    """Every document of the run's three collections, processing-time fields left out, by
    collection:_id."""
    db = MongoClient(s.mongo.uri.get_secret_value())[s.mongo.database]
    out: dict[str, dict[str, Any]] = {}
    for field in COLLECTIONS:
        name = getattr(s.mongo, field)
        for d in db[name].find({}, PROCESSING_TIME, batch_size=5000):
            out[f"{name}:{d['_id']}"] = d
    return out


def counts(s: Settings) -> tuple[int, ...]:
    db = MongoClient(s.mongo.uri.get_secret_value())[s.mongo.database]
    outcomes = db[s.mongo.outcomes_collection]
    return (
        *(db[getattr(s.mongo, f)].estimated_document_count() for f in COLLECTIONS),
        outcomes.count_documents({"final": True}),
    )


def converge(s: Settings, want: dict[str, dict[str, Any]], timeout: float) -> bool:
    """Wait until `s`'s database holds `want`: cheap counts first, then every document."""
    target = (
        *(sum(k.startswith(f"{getattr(s.mongo, f)}:") for k in want) for f in COLLECTIONS),
        sum(1 for k, d in want.items() if k.startswith(s.mongo.outcomes_collection + ":")
            and d.get("final")),
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if counts(s) == target and documents(s) == want:
            return True
        time.sleep(1.0)
    return False


def run_settings(s: Settings, name: str, write_to: str, port: int) -> Settings:
    t = s.topics
    topics = TopicSettings(orders=t.orders, payments=t.payments, outcomes=f"{name}-outcomes",
                           orphans=f"{name}-orphans", dead_letters=f"{name}-dlq",
                           connect_errors=f"{name}-connect-errors")  # fmt: skip
    run = isolated(s, name, max_offsets_per_trigger=s.pipeline.max_offsets_per_trigger,
                   write_to=write_to)  # fmt: skip
    home = STACK_DIR / "bench" / f"{name}-stack"
    return run.model_copy(
        update={
            "topics": topics,
            "stack": s.stack.model_copy(update={"dir": str(home), "connect_port": port}),
            "connect": ConnectSettings(group_id=name, connector=f"{name}-sink"),
        }
    )


def start_worker(s: Settings) -> None:
    root = connect.home(s)
    root.mkdir(parents=True, exist_ok=True)
    for part in ("libs", "plugins"):
        if not (root / part).exists():
            (root / part).symlink_to(STACK_DIR / "connect" / part)
    ensure_topics(s, [s.topics.outcomes, s.topics.orphans, s.topics.dead_letters],
                  s.topics.partitions)  # fmt: skip
    connect.up(s)


def clean(s: Settings, runs: list[Settings]) -> None:
    client = MongoClient(s.mongo.uri.get_secret_value())
    admin = AdminClient(s.kafka.client_config())
    topics = [s.topics.orders, s.topics.payments]
    for run in runs:
        client.drop_database(run.mongo.database)
        gid = run.connect.group_id
        t = run.topics
        topics += [t.outcomes, t.orphans, t.dead_letters, t.connect_errors]
        topics += [f"{gid}.configs", f"{gid}.offsets", f"{gid}.status"]
        shutil.rmtree(run.spark.checkpoint_location, ignore_errors=True)
        shutil.rmtree(Path(run.stack.dir), ignore_errors=True)
    for future in admin.delete_topics(topics).values():
        future.exception(30)


def bench(base: Settings, events: int, port: int) -> dict[str, Any]:
    name = f"bench-cx-{uuid.uuid4().hex[:6]}"
    s = isolated(base, name, max_offsets_per_trigger=50_000)
    n = preload(s, events)
    direct = run_settings(s, f"{name}-direct", "mongo", port)
    via = run_settings(s, f"{name}-connect", "kafka", port)
    try:
        direct_s, written = drain_to_mongo(direct)
        want = documents(direct)
        start_worker(via)
        t0 = time.perf_counter()
        job_s, published = drain_to_mongo(via)
        equal = converge(via, want, timeout=1800)
        total_s = time.perf_counter() - t0
        connect.down(via)
        upsert_s = mongo_ceiling(direct, written, 50_000)
    finally:
        clean(s, [direct, via])
    ceiling = written / upsert_s  # upserts/s of the server alone
    return {
        "benchmark": "connect_vs_direct",
        "events": n,
        "documents": len(want),
        "writes": written,
        "raw_mongo_upserts_per_s": round(ceiling),
        "direct": {
            "seconds": round(direct_s, 1),
            "events_per_s": round(n / direct_s),
            "writes_per_s": round(written / direct_s),
            "ratio_writes_to_ceiling": round(written / direct_s / ceiling, 3),
        },
        "connect": {
            "job_publish_seconds": round(job_s, 1),
            "records_published": published,
            "seconds_until_mongodb_equal": round(total_s, 1),
            "events_per_s": round(n / total_s),
            "writes_per_s": round(published / total_s),
            "ratio_writes_to_ceiling": round(published / total_s / ceiling, 3),
            "mongodb_equals_direct_but_timing": equal,
        },
        "connect_seconds_over_direct": round(total_s / direct_s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_connect",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--port", type=int, default=28386, help="the worker's REST port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    print(json.dumps(bench(load_settings(), args.events, args.port), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
