"""The stream-stream join shape (PIPELINE_SHAPE=join): the user's first design, kept as an
option beside the default state-step shape (`streaming/job.py`) so the two can be measured on
the same data. See docs/benchmarks.md ("Join shape against state shape") for why it is not the
default.

    orders   -> parse -> valid -> withWatermark -> dropDuplicatesWithinWatermark(order_id)   \
                                                    full outer join: order_id, payment_ts in window
    payments -> parse -> valid -> withWatermark -> dropDuplicatesWithinWatermark(payment_id) /
    both     -> parse -> malformed ----------------------------------- union -> foreachBatch

The join emits a row per (order, payment) pair as soon as both sides are there, whichever came
first; an order without any payment only when the watermark passes its window (UNPAID), and a
payment without its order likewise (ORPHAN_PAYMENT). Summing split payments needs what the join
does not keep, so the sink merges each pair into the stored document (`merge_rows`, then
`sinks/join_sink.py` reads the stored documents): a read-modify-write per batch.

De-duplication is Spark's native `dropDuplicatesWithinWatermark`: applyInPandasWithState keyed
by order_id or payment_id runs ~1,000 keys/s on this machine (one Python call per key), which
this shape cannot afford; bucketed Python state is what the default shape already is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf

from conf.settings import Settings
from streaming import parse
from streaming.rules import Status
from streaming.state import ORDER, ORPHAN, OUTCOME, PAYMENT, Output, dead_letter, outcome_doc

PAIR, LONE_ORDER, LONE_PAYMENT, MALFORMED = "pair", "lone_order", "lone_payment", "malformed"
ORDER_COLUMNS = ("o_order_id", "o_ts", "o_amount", "o_currency", "o_raw", "o_kafka_ts")
PAYMENT_COLUMNS = ("p_order_id", "p_payment_id", "p_ts", "p_amount", "p_method", "p_currency",
                   "p_kafka_ts")  # fmt: skip
DEAD_COLUMNS = ("d_topic", "d_partition", "d_offset", "d_key", "d_reason", "d_raw", "d_kafka_ts")
COLUMNS = ("kind", *ORDER_COLUMNS, *PAYMENT_COLUMNS, *DEAD_COLUMNS)


def _side(df: DataFrame, prefix: str, cols: dict[str, str], lateness: str) -> DataFrame:
    valid = df.where(sf.col("kind") != parse.MALFORMED)
    named = valid.select(
        *[sf.col(src).alias(f"{prefix}_{dst}") for dst, src in cols.items()],
        sf.col("event_time").alias(f"{prefix}_time"),
    )
    return named.withWatermark(f"{prefix}_time", lateness)


def _malformed(df: DataFrame) -> DataFrame:
    bad = df.where(sf.col("kind") == parse.MALFORMED)
    return bad.select(
        sf.col("topic").alias("d_topic"),
        sf.col("partition").alias("d_partition"),
        sf.col("offset").alias("d_offset"),
        sf.col("order_id").alias("d_key"),
        sf.col("reason").alias("d_reason"),
        sf.col("raw").alias("d_raw"),
        sf.col("kafka_ts").alias("d_kafka_ts"),
    )


def _with_all_columns(df: DataFrame, kind: Column) -> DataFrame:
    have = set(df.columns)
    return df.select(
        kind.alias("kind"),
        *[sf.col(c) if c in have else sf.lit(None).alias(c) for c in COLUMNS[1:]],
    )


def build_join_outputs(spark: SparkSession, s: Settings) -> DataFrame:
    from streaming.job import read_topic  # one Kafka reader for both shapes

    p = s.pipeline
    lateness = f"{p.allowed_lateness_s} seconds"
    orders_all = parse.events(read_topic(spark, s, s.topics.orders), ORDER, 1)
    payments_all = parse.events(read_topic(spark, s, s.topics.payments), PAYMENT, 1)
    order_cols = {"order_id": "order_id", "ts": "event_ts", "amount": "amount",
                  "currency": "currency", "raw": "raw", "kafka_ts": "kafka_ts"}  # fmt: skip
    payment_cols = {"order_id": "order_id", "payment_id": "payment_id", "ts": "event_ts",
                    "amount": "amount", "method": "method", "currency": "currency",
                    "kafka_ts": "kafka_ts"}  # fmt: skip
    orders = _side(orders_all, "o", order_cols, lateness).dropDuplicatesWithinWatermark(
        ["o_order_id"]
    )
    payments = _side(payments_all, "p", payment_cols, lateness).dropDuplicatesWithinWatermark(
        ["p_payment_id"]
    )
    on = (
        (sf.col("o_order_id") == sf.col("p_order_id"))
        & (sf.col("p_time") >= sf.col("o_time") - sf.expr(f"INTERVAL {p.skew_before_s} SECONDS"))
        & (sf.col("p_time") <= sf.col("o_time") + sf.expr(f"INTERVAL {p.window_after_s} SECONDS"))
    )
    joined = orders.join(payments, on, "full_outer").drop("o_time", "p_time")
    kind = (
        sf.when(sf.col("o_order_id").isNull(), sf.lit(LONE_PAYMENT))
        .when(sf.col("p_payment_id").isNull(), sf.lit(LONE_ORDER))
        .otherwise(sf.lit(PAIR))
    )
    dead = _malformed(orders_all).unionByName(_malformed(payments_all))
    return _with_all_columns(joined, kind).unionByName(_with_all_columns(dead, sf.lit(MALFORMED)))


# --- the pure merge: join rows + stored documents -> outcome documents -----------------------


@dataclass(slots=True)
class _Order:
    order_ts: int
    amount: int
    currency: str
    payments: dict[str, list[Any]]  # payment_id -> [amount, method, payment_ts]
    kafka_ts: int
    raw: str | None  # the raw order, attached when its document is written first
    final: bool = False


def _from_doc(doc: Mapping[str, Any]) -> _Order:
    pays = {p["payment_id"]: [p["amount"], p["method"], p["payment_ts"]] for p in doc["payments"]}
    return _Order(doc["order_ts"], doc["amount"], doc["currency"], pays, 0, None, doc["final"])


def merge_rows(rows: Iterable[Mapping[str, Any]], stored: Mapping[str, Mapping[str, Any]]
               ) -> list[Output]:  # fmt: skip
    """A batch of join rows (dicts of COLUMNS) and the stored outcome documents of the orders
    they touch -> the documents to write. Payments merge by payment_id, so a replayed batch adds
    nothing; an order's `final` only ever goes from False to True."""
    orders: dict[str, _Order] = {}
    out: list[Output] = []
    for r in rows:
        kind = r["kind"]
        if kind == MALFORMED:
            out.append(
                dead_letter(
                    r["d_topic"],
                    int(r["d_partition"]),
                    int(r["d_offset"]),
                    r["d_key"],
                    r["d_reason"],
                    r["d_raw"],
                    int(r["d_kafka_ts"]),
                )  # fmt: skip
            )
            continue
        if kind == LONE_PAYMENT:
            doc = {
                "payment_id": r["p_payment_id"],
                "order_id": r["p_order_id"],
                "status": Status.ORPHAN_PAYMENT.value,
                "final": True,
                "amount": int(r["p_amount"]),
                "currency": r["p_currency"],
                "method": r["p_method"],
                "payment_ts": int(r["p_ts"]),
            }
            out.append(Output(ORPHAN, r["p_payment_id"], doc, kafka_ts=int(r["p_kafka_ts"])))
            continue
        oid = r["o_order_id"]
        o = orders.get(oid)
        if o is None:
            o = (
                _from_doc(stored[oid])
                if oid in stored
                else _Order(int(r["o_ts"]), int(r["o_amount"]), r["o_currency"], {}, 0, r["o_raw"])
            )
            orders[oid] = o  # fmt: skip
        o.kafka_ts = max(o.kafka_ts, int(r["o_kafka_ts"]))
        if kind == LONE_ORDER:
            o.final = True  # the watermark passed its window with no payment matched
        elif r["p_payment_id"] not in o.payments:
            o.payments[r["p_payment_id"]] = [int(r["p_amount"]), r["p_method"], int(r["p_ts"])]
            o.kafka_ts = max(o.kafka_ts, int(r["p_kafka_ts"]))
    for oid, o in orders.items():
        entry = [o.order_ts, o.amount, o.currency, o.payments, o.kafka_ts]
        out.append(Output(OUTCOME, oid, outcome_doc(oid, entry, o.final), o.raw, o.kafka_ts))
    return out
