"""Avro (with the schema registry) against JSON on the wire, in one run. Prints figures; asserts
nothing.

    python -m scripts.bench_avro [--events 100000] [--port 28091]

One seeded scenario (no dirt) is produced twice, to topics of each format: JSON as the producers
write it, and Confluent-framed Avro through confluent-kafka's AvroSerializer with the schemas
registered in an Apicurio Registry this run starts (scripts/registry.py, on --port). Per format:
the bytes on the wire (keys and values), then the job drains the topics (Trigger.AvailableNow)
twice: into MongoDB (the whole pipeline, bounded by the server's write rate) and into Spark's
`noop` sink (Spark's own cost: decoding, the state step, no writes). The run's topics,
databases and checkpoints are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
import uuid
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

from conf.settings import STACK_DIR, FormatSettings, SchemaRegistrySettings, Settings, load_settings
from producers import avro_serde, registry_io, serde
from producers.scenario import ScenarioConfig, generate
from producers.topics import ensure_topics
from scripts import registry
from scripts.bench_pipeline import drain_to_mongo, isolated
from scripts.stack import stop
from streaming.job import start_query
from streaming.session import build_session

logger = logging.getLogger("bench")


def produce(s: Settings, records: list[tuple[str, bytes | None, bytes]]) -> None:
    p = Producer({**s.kafka.client_config(), "linger.ms": 20, "batch.size": 262144,
                  "enable.idempotence": True})  # fmt: skip
    for topic, key, value in records:
        while True:
            try:
                p.produce(topic, key=key, value=value)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(120) == 0


def drain_noop(s: Settings) -> float:
    """Seconds for the job to compute every batch of `s`'s topics, writing nothing."""
    spark = build_session(s.spark)

    def noop(batch_df: Any, _batch_id: int) -> None:
        batch_df.write.format("noop").mode("append").save()

    t0 = time.perf_counter()
    q = start_query(spark, s, noop, available_now=True)
    q.awaitTermination()
    seconds = time.perf_counter() - t0
    spark.stop()
    return seconds


def bench(base: Settings, events: int, port: int) -> dict[str, Any]:
    name = f"bench-avro-{uuid.uuid4().hex[:6]}"
    svc = registry.service_for(STACK_DIR, port, home=STACK_DIR / "bench" / f"{name}-registry")
    registry.launch(svc, 120)
    runs: dict[str, Settings] = {}
    try:
        url = registry.address(svc)
        cfg = ScenarioConfig(
            n_orders=int(events / 2.05), seed=5, rules=base.pipeline.rules(), p_malformed=0.0
        )
        scenario = generate(cfg)
        report: dict[str, Any] = {"benchmark": "avro_vs_json", "events": len(scenario.emissions)}
        for fmt in ("json", "avro"):
            s = isolated(base, f"{name}-{fmt}")
            s = s.model_copy(update={"wire": FormatSettings(pipeline_format=fmt),
                                     "registry": SchemaRegistrySettings(url=url)})  # fmt: skip
            runs[fmt] = s
            names = {serde.ORDERS: s.topics.orders, serde.PAYMENTS: s.topics.payments}
            ensure_topics(s, list(names.values()), s.topics.partitions)
            emissions = scenario.emissions
            t0 = time.perf_counter()
            if fmt == "avro":
                reg = registry_io.register(s, names)
                emissions = avro_serde.to_avro(scenario, reg.encode, reg.ids).emissions
            encode_s = time.perf_counter() - t0
            records = [(names[e.topic], e.key, e.value) for e in emissions]
            produce(s, records)
            wire = sum(len(k or b"") + len(v) for _, k, v in records)
            noop_ck = s.spark.model_copy(
                update={"checkpoint_location": s.spark.checkpoint_location + "-noop"}
            )
            noop_s = drain_noop(s.model_copy(update={"spark": noop_ck}))
            mongo_s, written = drain_to_mongo(s)
            report[fmt] = {
                "bytes_on_wire": wire,
                "value_bytes_per_event": round(
                    sum(len(v) for _, _, v in records) / len(records), 1
                ),
                "encode_seconds": round(encode_s, 2),
                "spark_only_seconds": round(noop_s, 1),
                "spark_only_events_per_s": round(len(records) / noop_s),
                "to_mongodb_seconds": round(mongo_s, 1),
                "to_mongodb_events_per_s": round(len(records) / mongo_s),
                "documents_written": written,
            }
        report["avro_bytes_over_json"] = round(
            report["avro"]["bytes_on_wire"] / report["json"]["bytes_on_wire"], 3
        )
        report["avro_spark_only_seconds_over_json"] = round(
            report["avro"]["spark_only_seconds"] / report["json"]["spark_only_seconds"], 2
        )
        return report
    finally:
        stop(svc)
        client = MongoClient(base.mongo.uri.get_secret_value())
        topics: list[str] = []
        for s in runs.values():
            client.drop_database(s.mongo.database)
            topics += [s.topics.orders, s.topics.payments]
            shutil.rmtree(s.spark.checkpoint_location, ignore_errors=True)
            shutil.rmtree(s.spark.checkpoint_location + "-noop", ignore_errors=True)
        for future in AdminClient(base.kafka.client_config()).delete_topics(topics).values():
            future.exception(30)
        shutil.rmtree(svc.home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_avro",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=28091, help="the registry's port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    print(json.dumps(bench(load_settings(), args.events, args.port), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
