"""The source: both Kafka topics -> typed, watermarked events (or malformed records), natively.

    orders topic   --read--> parse + validate --withWatermark(order_ts)---\
                                                                          union -> a shape
    payments topic --read--> parse + validate --withWatermark(payment_ts)-/

Each topic has its own watermark; Spark's global watermark is the minimum of the two, so a topic
read ahead of the other never makes the other's events late. Malformed records travel the same
path (without event time) and come out of the shape as dead letters.

The schema and the validation are derived from `contract/events.py` (field names, types, the
order of checks and the reason words), so a malformed message gets the same reason here as in
the producers' ground truth. The first failing check names the reason:
invalid_json -> missing_field:<f> -> wrong_type:<f> -> unknown_schema_version -> negative_amount.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql import types as T

from conf.settings import Settings
from contract.events import (
    FIELD_TYPES,
    ITEM_FIELDS,
    ORDER,
    ORDER_FIELDS,
    PAYMENT,
    PAYMENT_FIELDS,
    SCHEMA_VERSION,
    F,
    Reason,
    reason,
)

MALFORMED = "malformed"
_SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "long": T.LongType(),
    "timestamp": T.TimestampType(),
}
# JSON types Spark would silently coerce (a number into a string column, epoch seconds into a
# timestamp): for these the raw text is checked to hold a JSON string.
_QUOTED = ("string", "timestamp")


def spark_type(name: str) -> T.DataType:
    if FIELD_TYPES[name] == "items":
        item = T.StructType([T.StructField(f, spark_type(f)) for f in ITEM_FIELDS])
        return T.ArrayType(item)
    return _SPARK_TYPES[FIELD_TYPES[name]]


def schema(fields: tuple[str, ...]) -> T.StructType:
    return T.StructType([T.StructField(f, spark_type(f)) for f in fields])


def _is_json_string(raw: Column, name: str) -> Column:
    return raw.rlike(f'"{name}"\\s*:\\s*"')


def reason_expr(raw: Column, parsed: Column, fields: tuple[str, ...]) -> Column:
    """The dead-letter reason of a record, or NULL when it is a valid event."""
    keys = sf.json_object_keys(raw)
    expr = sf.when(keys.isNull(), sf.lit(reason(Reason.INVALID_JSON)))
    for name in fields:
        expr = expr.when(~sf.array_contains(keys, name), sf.lit(reason(Reason.MISSING_FIELD, name)))
    for name in fields:
        bad = parsed[name].isNull()
        if FIELD_TYPES[name] in _QUOTED:
            bad = bad | ~_is_json_string(raw, name)
        expr = expr.when(bad, sf.lit(reason(Reason.WRONG_TYPE, name)))
    expr = expr.when(
        parsed[F.SCHEMA_VERSION] != SCHEMA_VERSION, sf.lit(reason(Reason.UNKNOWN_SCHEMA_VERSION))
    )
    return expr.when(parsed[F.AMOUNT] < 0, sf.lit(reason(Reason.NEGATIVE_AMOUNT)))


def _ms(ts: Column) -> Column:
    return sf.unix_millis(ts)


def parse_topic(kafka_df: DataFrame, kind: str, buckets: int) -> DataFrame:
    """Kafka rows -> the state step's input columns (see streaming.step.EVENT_COLUMNS), plus
    `event_time` for the watermark and `reason` (NULL unless malformed)."""
    fields = ORDER_FIELDS if kind == ORDER else PAYMENT_FIELDS
    ts_field = F.ORDER_TS if kind == ORDER else F.PAYMENT_TS
    raw = sf.col("value").cast("string")
    df = kafka_df.select(
        raw.alias("raw"),
        sf.col("key").cast("string").alias("key"),
        "topic",
        "partition",
        "offset",
        _ms(sf.col("timestamp")).alias("kafka_ts"),
    )
    parsed = sf.from_json(sf.col("raw"), schema(fields), {"mode": "PERMISSIVE"})
    df = df.withColumn("p", parsed).withColumn(
        "reason", reason_expr(sf.col("raw"), sf.col("p"), fields)
    )
    valid = sf.col("reason").isNull()
    order_id = sf.when(valid, sf.col(f"p.{F.ORDER_ID}")).otherwise(
        sf.coalesce(sf.col("key"), sf.lit(""))
    )
    return df.select(
        sf.pmod(sf.xxhash64(order_id), sf.lit(buckets)).cast("int").alias("bucket"),
        sf.when(valid, sf.lit(kind)).otherwise(sf.lit(MALFORMED)).alias("kind"),
        order_id.alias("order_id"),
        (sf.col(f"p.{F.PAYMENT_ID}") if kind == PAYMENT else sf.lit(None).cast("string")).alias(
            "payment_id"
        ),
        sf.when(valid, _ms(sf.col(f"p.{ts_field}"))).alias("event_ts"),
        sf.when(valid, sf.col(f"p.{F.AMOUNT}")).alias("amount"),
        sf.when(valid, sf.col(f"p.{F.CURRENCY}")).alias("currency"),
        (sf.col(f"p.{F.METHOD}") if kind == PAYMENT else sf.lit(None).cast("string")).alias(
            "method"
        ),
        "kafka_ts",
        "topic",
        "partition",
        "offset",
        "raw",
        "reason",
        sf.when(valid, sf.col(f"p.{ts_field}")).alias("event_time"),
    )


NEVER_LATE = dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc)  # within pandas ns range


def read_topic(spark: SparkSession, s: Settings, topic: str) -> DataFrame:
    reader = spark.readStream.format("kafka").options(**s.kafka.spark_options())
    reader = reader.option("subscribe", topic)
    reader = reader.option("startingOffsets", s.pipeline.starting_offsets)
    reader = reader.option("failOnDataLoss", str(s.pipeline.fail_on_data_loss).lower())
    if s.pipeline.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", s.pipeline.max_offsets_per_trigger)
    return reader.load()


def read_events(spark: SparkSession, s: Settings) -> DataFrame:
    """Both topics' events (and malformed records), watermarked, as a shape takes them, with
    their grouping column `bucket`."""
    lateness = f"{s.pipeline.allowed_lateness_s} seconds"
    buckets = s.pipeline.state_buckets
    orders = parse_topic(read_topic(spark, s, s.topics.orders), ORDER, buckets)
    payments = parse_topic(read_topic(spark, s, s.topics.payments), PAYMENT, buckets)
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
