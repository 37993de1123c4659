"""The source: both Kafka topics -> typed, watermarked events (or malformed records).

    orders topic   --read--> parse (contract.wire) --withWatermark(event_time)--\
                                                                                union -> a shape
    payments topic --read--> parse (contract.wire) --withWatermark(event_time)--/

Validity is decided once, here, by one parser: `contract/wire.py`, the same function the
producers' ground truth uses. It runs on the executors over Arrow batches of the raw key and
value bytes (`mapInArrow`), and everything downstream reads only the typed fields it returns.
Spark's own JSON readers were measured and not used for this: `from_json` and `parse_json`
accept trailing data and a second object after the first, and `parse_json` turns a lone
surrogate escape into `?` (docs/benchmarks.md has the table).

Each topic has its own watermark; Spark's global watermark is the minimum of the two, so a topic
read ahead of the other never makes the other's events late. Malformed records travel the same
path (without event time) and come out of the shape as dead letters, with their raw key and
value bytes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from conf.settings import Settings
from conf.spark_worker import lean_imports
from contract import wire
from contract.events import ORDER, PAYMENT, F

MALFORMED = "malformed"

# What the parser hands on, per Kafka record (the state step's input columns, see
# streaming.step.EVENT_COLUMNS, plus `reason`); NULL where a column does not apply.
PARSED = T.StructType(
    [
        T.StructField("kind", T.StringType()),  # ORDER, PAYMENT or MALFORMED
        T.StructField("order_id", T.StringType()),  # malformed: the key's preview, or ""
        T.StructField("payment_id", T.StringType()),
        T.StructField("event_ts", T.LongType()),
        T.StructField("amount", T.LongType()),
        T.StructField("currency", T.StringType()),
        T.StructField("method", T.StringType()),
        T.StructField("kafka_ts", T.LongType()),
        T.StructField("topic", T.StringType()),
        T.StructField("partition", T.IntegerType()),
        T.StructField("offset", T.LongType()),
        T.StructField("fields", T.StringType()),  # an order's contract fields, as JSON
        T.StructField("raw_key", T.BinaryType()),
        T.StructField("raw_value", T.BinaryType()),
        T.StructField("reason", T.StringType()),
    ]
)
_ARROW = to_arrow_schema(PARSED)
# The PARSED columns `parsed_row` computes, in its tuple's order; the others pass through from
# the Kafka batch (PARSED name -> the batch's column).
COMPUTED = ("kind", "order_id", "payment_id", "event_ts", "amount", "currency", "method",
            "fields", "reason")  # fmt: skip
PASSED = {"kafka_ts": "kafka_ts", "topic": "topic", "partition": "partition", "offset": "offset",
          "raw_key": "key", "raw_value": "value"}  # fmt: skip
# the order's own fields an outcome keeps (its ids, amount and time are in the outcome already)
ORDER_DETAIL = (F.CUSTOMER_ID, F.STORE_ID, F.CHANNEL, F.ITEMS)


def parsed_batch(batch: pa.RecordBatch, rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
    """A Kafka record batch and its rows' COMPUTED columns -> the PARSED Arrow batch."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(COMPUTED)
    computed = dict(zip(COMPUTED, cols, strict=True))
    return pa.RecordBatch.from_pydict(
        {n: computed[n] if n in computed else batch.column(PASSED[n]) for n in _ARROW.names},
        schema=_ARROW,
    )


def parsed_row(kind: str, key: bytes | None, value: bytes | None, kafka_ts: int,
               limits: dict[str, Any]) -> tuple[Any, ...]:  # fmt: skip
    """One record's COMPUTED columns, in that order."""
    try:
        f = wire.parse(kind, key, value, kafka_ts=kafka_ts, **limits)
    except wire.Invalid as exc:
        return (MALFORMED, wire.preview(key) or "", None, None, None, None, None, None, str(exc))
    return detail_of(kind, f)


def detail_of(kind: str, f: dict[str, Any]) -> tuple[Any, ...]:
    """A valid event's contract fields -> its COMPUTED columns (the Avro parser's too)."""
    if kind == ORDER:
        detail = json.dumps({k: f[k] for k in ORDER_DETAIL}, separators=(",", ":"))
        return (ORDER, f[F.ORDER_ID], None, f[F.ORDER_TS], f[F.AMOUNT], f[F.CURRENCY], None,
                detail, None)  # fmt: skip
    return (PAYMENT, f[F.ORDER_ID], f[F.PAYMENT_ID], f[F.PAYMENT_TS], f[F.AMOUNT],
            f[F.CURRENCY], f[F.METHOD], None, None)  # fmt: skip


def parser(
    kind: str, limits: dict[str, Any]
) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The mapInArrow function parsing a topic's records (key, value, topic, partition, offset,
    kafka_ts) into PARSED rows. Never raises for a record: a bad one becomes a MALFORMED row."""

    def parse_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        lean_imports()
        for batch in batches:
            keys, values = batch.column("key").to_pylist(), batch.column("value").to_pylist()
            kafka_ts = batch.column("kafka_ts").to_pylist()
            rows = [
                parsed_row(kind, k, v, ts, limits)
                for k, v, ts in zip(keys, values, kafka_ts, strict=True)
            ]
            yield parsed_batch(batch, rows)

    return parse_batches


def parse_topic(kafka_df: DataFrame, kind: str, buckets: int, limits: dict[str, Any]) -> DataFrame:
    """Kafka rows -> PARSED rows, plus `bucket` (the state's grouping column) and `event_time`
    (for the watermark; NULL unless a valid event)."""
    records = kafka_df.select(
        "key", "value", "topic", "partition", "offset",
        sf.unix_millis(sf.col("timestamp")).alias("kafka_ts"),
    )  # fmt: skip
    return for_shape(records.mapInArrow(parser(kind, limits), PARSED), buckets)


# The integer columns a shape's pandas frames carry. Spark hands a shape pandas, and pyarrow turns
# an integer column holding a null into float64, which keeps integers exactly only up to 2**53:
# a shape's integer columns therefore never hold a null (a malformed record's are 0, and it
# carries no event time). streaming/frames.py refuses any other dtype.
SHAPE_INTEGERS = ("event_ts", "amount", "kafka_ts", "partition", "offset")


def for_shape(parsed: DataFrame, buckets: int) -> DataFrame:
    """PARSED rows -> what a shape takes: `bucket` (the state's grouping column), the PARSED
    columns with no null in SHAPE_INTEGERS, and `event_time` (for the watermark; NULL unless a
    valid event)."""
    return parsed.select(
        sf.pmod(sf.xxhash64("order_id"), sf.lit(buckets)).cast("int").alias("bucket"),
        *(
            sf.coalesce(name, sf.lit(0).cast(PARSED[name].dataType)).alias(name)
            if name in SHAPE_INTEGERS
            else name
            for name in PARSED.fieldNames()
        ),
        sf.timestamp_millis("event_ts").alias("event_time"),
    )


NEVER_LATE = dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc)  # within pandas ns range


def parse_tasks(spark: SparkSession, s: Settings) -> int:
    """How many tasks read and parse one topic in a batch (SPARK_PARSE_TASKS)."""
    return s.spark.parse_tasks or max(1, spark.sparkContext.defaultParallelism // 2)


def read_topic(spark: SparkSession, s: Settings, topic: str) -> DataFrame:
    """A topic's Kafka records, in at most `parse_tasks` partitions per batch (a coalesce: each
    task reads several Kafka partitions one after the other; nothing is shuffled)."""
    return _reader(spark, s, topic).load().coalesce(parse_tasks(spark, s))


def _reader(spark: SparkSession, s: Settings, topic: str) -> Any:
    reader = spark.readStream.format("kafka").options(**s.kafka.spark_options())
    reader = reader.option("subscribe", topic)
    reader = reader.option("startingOffsets", s.pipeline.starting_offsets)
    reader = reader.option("failOnDataLoss", str(s.pipeline.fail_on_data_loss).lower())
    if s.pipeline.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", s.pipeline.max_offsets_per_trigger)
    return reader


# (Kafka rows, kind, topic) -> PARSED rows with `bucket` and `event_time`: another wire format's
# parser (streaming/avro_source.py), in place of `parse_topic`
TopicParser = Callable[[DataFrame, str, str], DataFrame]


def read_events(
    spark: SparkSession, s: Settings, parse_topic_of: TopicParser | None = None
) -> DataFrame:
    """Both topics' events (and malformed records), watermarked, as a shape takes them, with
    their grouping column `bucket`."""
    lateness = f"{s.pipeline.allowed_lateness_s} seconds"
    buckets = s.pipeline.state_buckets
    limits = {
        "max_bytes": s.pipeline.max_message_bytes,
        "max_future_ms": s.pipeline.max_future_s * 1000,
    }
    if parse_topic_of is None:

        def parse_topic_of(df: DataFrame, kind: str, topic: str) -> DataFrame:
            return parse_topic(df, kind, buckets, limits)

    orders = parse_topic_of(read_topic(spark, s, s.topics.orders), ORDER, s.topics.orders)
    payments = parse_topic_of(read_topic(spark, s, s.topics.payments), PAYMENT, s.topics.payments)
    events = orders.withWatermark("event_time", lateness).unionByName(
        payments.withWatermark("event_time", lateness)
    )
    # Spark silently drops rows behind the watermark before a stateful operator, judged on the
    # watermarked column the operator's input carries. A second watermark on a constant
    # far-future column moves that mark off `event_time` (Spark keeps it on the newest
    # watermarked column) without moving the watermark itself (the global one is the minimum).
    # Late rows thus reach the shape, which dead-letters them as `late` instead of losing them.
    return (
        events.withColumn("never_late", sf.lit(NEVER_LATE))
        .withWatermark("never_late", "0 seconds")
        .drop("event_time")
    )
