"""From Kafka records to typed events or dead letters, in native Spark expressions.

The schema and the validation are derived from `producers/events.py` (field names, types, the
order of checks and the reason words), so a malformed message gets the same reason here as in
the producers' ground truth. The first failing check names the reason:
invalid_json -> missing_field:<f> -> wrong_type:<f> -> unknown_schema_version -> negative_amount.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as sf
from pyspark.sql import types as T

from producers.events import (
    FIELD_TYPES,
    ITEM_FIELDS,
    ORDER_FIELDS,
    PAYMENT_FIELDS,
    SCHEMA_VERSION,
    F,
    Reason,
    reason,
)
from streaming.state import ORDER, PAYMENT

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


def events(kafka_df: DataFrame, kind: str, buckets: int) -> DataFrame:
    """Kafka rows -> the state step's input columns (see streaming.state.EVENT_COLUMNS), plus
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
