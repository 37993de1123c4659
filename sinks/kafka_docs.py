"""PIPELINE_WRITE_TO=kafka: each batch's documents published to Kafka for Kafka Connect's
MongoDB sink (conf/connect/mongo-sink.json) to upsert, instead of written by the job.

The documents are the ones the direct path writes (sinks/documents.py), one record each: key =
the document's `_id`, value = the document as MongoDB Extended JSON (relaxed: a dead letter's
raw bytes as `$binary`), which the connector parses back into the same BSON. The topic says the
collection: outcomes -> TOPIC_OUTCOMES, orphan payments -> TOPIC_ORPHANS, dead letters ->
TOPIC_DEAD_LETTERS. A document MongoDB would refuse for its field names becomes the same
`unstorable_document` dead letter as on the direct path.

The connector `$set`s each record's fields into the document with that `_id` (an order's later
outcomes do not repeat its `order` fields). Publishing is at least once: a batch Spark re-runs
is published again with the same keys and values, which leaves the same documents. What differs
from the direct path by design: `timing.first_written_at` and a dead letter's `dead_lettered_at`
are when the job last handed the document to Kafka (the direct path keeps the first write,
`$min`), and `timing.latency_ms` is measured to that moment.

Each task turns its partition into records plus one stats row (the per-minute tallies, counts,
latencies); the driver publishes the records with Spark's Kafka sink and collects the stats.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from bson import json_util

from conf.settings import Settings
from conf.spark_worker import lean_imports
from sinks.batch_stats import PartitionStats
from sinks.documents import REFUSED, Row, Write, plan, refused_names, rows_of, whole

RECORD_SCHEMA = "topic string, key string, value string, stats string"
Record = tuple[str, str, str]  # topic, key, value


def extended_json(doc: dict[str, Any]) -> str:
    return json_util.dumps(doc, json_options=json_util.RELAXED_JSON_OPTIONS)


def records(
    rows: Iterable[Row], written_at_ms: int, topics: dict[str, str], partition: int = -1
) -> tuple[list[Record], PartitionStats]:
    """A partition's rows -> its records (`topics`: outcomes, orphans, dead_letters -> topic
    names) and its stats. Pure."""
    rows = list(rows)
    p = plan(rows, written_at_ms)
    stats = PartitionStats(partition, len(rows), counts=Counter(p.counts))
    stats.tally, stats.watermark = p.tally, p.watermark
    out: list[Record] = []
    refused: list[dict[str, Any]] = []
    groups: list[tuple[str, list[Write]]] = [
        ("outcomes", p.outcomes), ("orphans", p.orphans), ("dead_letters", p.dead_letters)
    ]  # fmt: skip
    for name, writes in groups:
        for w in writes:
            letter = refused_names(topics[name], w)
            if letter is None:
                out.append((topics[name], w.doc_id, extended_json(whole(w))))
            else:
                refused.append(letter)
    out += [(topics["dead_letters"], d["_id"], extended_json(d)) for d in refused]
    stats.counts[REFUSED] += len(refused)
    stats.written = len(out)
    stats.observe_written(rows, refused, written_at_ms)
    return out, stats


def topics_of(settings: Settings) -> dict[str, str]:
    t = settings.topics
    return {"outcomes": t.outcomes, "orphans": t.orphans, "dead_letters": t.dead_letters}


def to_records(topics: dict[str, str], batches: Iterator[Any]) -> Iterator[Any]:
    """The mapInArrow function: this task's rows in; its records and one stats row out."""
    import pyarrow as pa
    from pyspark import TaskContext

    lean_imports()
    started = time.monotonic()
    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    rows = [row for batch in batches for row in rows_of(batch)]
    out, stats = records(rows, int(time.time() * 1000), topics, partition)
    stats.write_s = time.monotonic() - started
    topic, key, value = zip(*out, strict=True) if out else ((), (), ())
    yield pa.RecordBatch.from_pydict(
        {
            "topic": [*topic, None],
            "key": [*key, None],
            "value": [*value, None],
            "stats": [None] * len(out) + [stats.to_json()],
        },
        schema=pa.schema([(name, pa.string()) for name in ("topic", "key", "value", "stats")]),
    )


def publish_documents(batch_df: Any, settings: Settings) -> list[PartitionStats]:
    """Publish the batch's documents with Spark's Kafka sink; each partition's stats back."""
    from pyspark.sql import functions as sf

    convert = functools.partial(to_records, topics_of(settings))
    out = batch_df.mapInArrow(convert, RECORD_SCHEMA).persist()  # computed once, read twice
    try:
        got = out.where(sf.col("stats").isNotNull()).select("stats").collect()
        stats = [PartitionStats.from_json(r[0]) for r in got]
        if sum(p.written for p in stats):
            (
                out.where(sf.col("topic").isNotNull())
                .select("topic", "key", "value")
                .write.format("kafka")
                .options(**settings.kafka.spark_options())
                .save()
            )
        return stats
    finally:
        out.unpersist()
