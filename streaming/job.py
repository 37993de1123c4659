"""The streaming query: Kafka (orders, payments) -> parse -> per-bucket state -> foreachBatch.

    orders topic --parse--> events --withWatermark--\
                                                      union -> groupBy(bucket)
    payments topic --parse--> events --withWatermark-/   .applyInPandasWithState(step)
                                                           -> foreachBatch(MongoSink)

Each topic has its own watermark; Spark's global watermark is the minimum of the two, so a topic
read ahead of the other never makes the other's events late. Malformed records travel the same
path (without event time) and come out as dead letters.
"""

from __future__ import annotations

import datetime as dt
import logging
import pickle
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.streaming.state import GroupState, GroupStateTimeout

from conf.settings import Settings
from streaming import parse
from streaming.rules import Rules
from streaming.state import (
    EVENT_COLUMNS,
    ORDER,
    PAYMENT,
    Output,
    dead_letter,
    empty_state,
    step,
    to_json,
)

logger = logging.getLogger(__name__)

OUTPUT_SCHEMA = T.StructType(
    [
        T.StructField("kind", T.StringType()),
        T.StructField("doc_id", T.StringType()),
        T.StructField("doc", T.StringType()),  # JSON of the computed document
        T.StructField("raw", T.StringType()),
        T.StructField("kafka_ts", T.LongType()),
    ]
)
NEVER_LATE = dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc)  # within pandas ns range
_INT_COLUMNS = frozenset({"event_ts", "amount", "kafka_ts", "partition", "offset"})
STATE_SCHEMA = T.StructType([T.StructField("blob", T.BinaryType())])


def rules_of(s: Settings) -> Rules:
    p = s.pipeline
    return Rules.from_seconds(p.window_after_s, p.skew_before_s, p.allowed_lateness_s)


def read_topic(spark: SparkSession, s: Settings, topic: str) -> DataFrame:
    reader = spark.readStream.format("kafka").options(**s.kafka.spark_options())
    reader = reader.option("subscribe", topic)
    reader = reader.option("startingOffsets", s.pipeline.starting_offsets)
    reader = reader.option("failOnDataLoss", str(s.pipeline.fail_on_data_loss).lower())
    if s.pipeline.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", s.pipeline.max_offsets_per_trigger)
    return reader.load()


def _frame(outputs: list[Output]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": [o.kind for o in outputs],
            "doc_id": [o.doc_id for o in outputs],
            "doc": [to_json(o.doc) for o in outputs],
            "raw": [o.raw for o in outputs],
            "kafka_ts": pd.array([o.kafka_ts for o in outputs], dtype="Int64"),
        }
    )


def _event_tuples(pdf: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Valid rows as plain Python tuples in EVENT_COLUMNS order (Arrow hands nullable longs over
    as floats; valid events have no nulls there, so they are cast back to int)."""
    cols = []
    for c in EVENT_COLUMNS:
        col = pdf[c]
        if c in _INT_COLUMNS:
            col = col.astype("int64")
        cols.append(col.tolist())
    return list(zip(*cols, strict=True))


def _dead_letters(pdf: pd.DataFrame) -> list[Output]:
    return [
        dead_letter(topic, partition, offset, key, reason, raw, kafka_ts)
        for topic, partition, offset, key, reason, raw, kafka_ts in zip(
            pdf["topic"].tolist(),
            pdf["partition"].astype("int64").tolist(),
            pdf["offset"].astype("int64").tolist(),
            pdf["order_id"].tolist(),
            pdf["reason"].tolist(),
            pdf["raw"].tolist(),
            pdf["kafka_ts"].astype("int64").tolist(),
            strict=True,
        )
    ]


def split_events(pdfs: Iterable[pd.DataFrame]) -> tuple[list[Output], list[tuple[Any, ...]]]:
    """A group's rows as the state operator hands them over: malformed records as dead letters,
    valid events as `step`'s tuples."""
    malformed: list[Output] = []
    events: list[tuple[Any, ...]] = []
    for pdf in pdfs:
        bad = (pdf["kind"] == parse.MALFORMED).to_numpy()
        if bad.any():
            malformed.extend(_dead_letters(pdf[bad]))
            pdf = pdf[~bad]
        events.extend(_event_tuples(pdf))
    return malformed, events


def make_state_func(rules: Rules):  # type: ignore[no-untyped-def]
    """The applyInPandasWithState function: unpickle a bucket, `step` it, pickle it back."""

    def reconcile_bucket(
        key: tuple[Any, ...], pdfs: Iterator[pd.DataFrame], state: GroupState
    ) -> Iterator[pd.DataFrame]:
        bucket_state = pickle.loads(state.get[0]) if state.exists else empty_state()
        watermark = state.getCurrentWatermarkMs()
        malformed, events = ([], []) if state.hasTimedOut else split_events(pdfs)
        res = step(bucket_state, events, watermark, rules)
        if bucket_state["orders"] or bucket_state["pending"]:
            state.update((pickle.dumps(bucket_state, protocol=5),))
            if res.next_close_ts is not None:
                state.setTimeoutTimestamp(max(res.next_close_ts, watermark + 1))
        elif state.exists:
            state.remove()
        outputs = malformed + res.outputs
        if outputs:
            yield _frame(outputs)

    return reconcile_bucket


def watermarked_events(spark: SparkSession, s: Settings) -> DataFrame:
    """Both topics' events (and malformed records), watermarked, as the state operator takes
    them, with its grouping column `bucket`."""
    lateness = f"{s.pipeline.allowed_lateness_s} seconds"
    buckets = s.pipeline.state_buckets
    orders = parse.events(read_topic(spark, s, s.topics.orders), ORDER, buckets)
    payments = parse.events(read_topic(spark, s, s.topics.payments), PAYMENT, buckets)
    events = orders.withWatermark("event_time", lateness).unionByName(
        payments.withWatermark("event_time", lateness)
    )
    # Spark silently drops rows behind the watermark before a stateful operator, judged on the
    # watermarked column the operator's input carries. A second watermark on a constant
    # far-future column moves that mark off `event_time` (Spark keeps it on the newest
    # watermarked column) without moving the watermark itself (the global one is the minimum).
    # Late rows thus reach `step`, which dead-letters them as `late` instead of losing them.
    return (
        events.withColumn("never_late", sf.lit(NEVER_LATE))
        .withWatermark("never_late", "0 seconds")
        .drop("event_time")
    )


def build_outputs(spark: SparkSession, s: Settings) -> DataFrame:
    """The streaming DataFrame of documents to write (see OUTPUT_SCHEMA)."""
    events = watermarked_events(spark, s)
    if s.pipeline.shape == "tws":
        from streaming.tws_shape import reconcile_tws

        if s.spark.state_store != "rocksdb":
            raise ValueError(
                "PIPELINE_SHAPE=tws needs SPARK_STATE_STORE=rocksdb (transformWithStateInPandas "
                f"runs on RocksDB only), not {s.spark.state_store!r}"
            )

        return reconcile_tws(events, rules_of(s), OUTPUT_SCHEMA)
    return events.groupBy("bucket").applyInPandasWithState(
        make_state_func(rules_of(s)),
        OUTPUT_SCHEMA,
        STATE_SCHEMA,
        "Update",
        GroupStateTimeout.EventTimeTimeout,
    )


def start_query(
    spark: SparkSession,
    s: Settings,
    sink,
    *,
    available_now: bool = False,  # type: ignore[no-untyped-def]
    query_name: str = "reconcile",
) -> StreamingQuery:
    if s.pipeline.shape == "join":
        from streaming.join_shape import build_join_outputs

        # two de-duplications and a join: three stateful operators, in append mode
        spark.conf.set("spark.sql.streaming.statefulOperator.allowMultiple", "true")
        outputs, mode = build_join_outputs(spark, s), "append"
    else:
        spark.conf.set("spark.sql.streaming.statefulOperator.allowMultiple", "false")
        outputs, mode = build_outputs(spark, s), "update"
    writer = (
        outputs.writeStream.queryName(query_name)
        .outputMode(mode)
        .foreachBatch(sink)
        .option("checkpointLocation", s.spark.checkpoint_location)
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{s.pipeline.trigger_interval_s} seconds")
    query = writer.start()
    logger.info(
        "query started name=%s id=%s checkpoint=%s",
        query_name,
        query.id,
        s.spark.checkpoint_location,
    )
    return query
