"""The public design this project replaces, ported for the benchmarks only (never run by the job).

Both topics unioned, `groupBy(order_id).applyInPandasWithState` with a processing-time timeout,
and the joined (order, payment) rows appended to MongoDB: the shape of the public pipelines
this project replaces, with their costs (one Python call per order_id per batch) and their
gaps (no event time, no dead letters, no de-duplication, no finality). It reads the same topics
and messages as the job, so `scripts/bench_scale.py` can run both on the same data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql import types as T
from pyspark.sql.streaming.state import GroupState, GroupStateTimeout

from conf.settings import Settings
from streaming.source import read_topic

_EVENT = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("payment_id", T.StringType()),
        T.StructField("amount", T.LongType()),
        T.StructField("currency", T.StringType()),
        T.StructField("method", T.StringType()),
    ]
)
_STATE = T.StructType(
    [T.StructField("order", T.StringType()), T.StructField("payments", T.StringType())]
)
JOINED = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("payment_id", T.StringType()),
        T.StructField("order_amount", T.LongType()),
        T.StructField("payment_amount", T.LongType()),
        T.StructField("method", T.StringType()),
    ]
)


def _events(spark: SparkSession, s: Settings, topic: str, kind: str) -> DataFrame:
    raw = read_topic(spark, s, topic)
    parsed = sf.from_json(sf.col("value").cast("string"), _EVENT)
    return raw.select(sf.lit(kind).alias("type"), parsed.alias("e")).select("type", "e.*")


def join_orders_payments(
    key: tuple[Any, ...], pdfs: Iterator[pd.DataFrame], state: GroupState
) -> Iterator[pd.DataFrame]:
    """Per order_id: keep the order and its payments; emit each (order, payment) pair once."""
    if state.hasTimedOut:
        state.remove()
        return
    order, payments = (
        (json.loads(v) if v else None for v in state.get) if state.exists else (None, None)
    )
    payments = payments or []
    for pdf in pdfs:
        for r in pdf.to_dict("records"):
            if r["type"] == "order":
                order = order or {"amount": r["amount"]}
            else:
                payments.append({"payment_id": r["payment_id"], "amount": r["amount"],
                                 "method": r["method"], "emitted": False})  # fmt: skip
    out = []
    if order is not None:
        for p in payments:
            if not p["emitted"]:
                out.append((key[0], p["payment_id"], order["amount"], p["amount"], p["method"]))
                p["emitted"] = True
    state.update((json.dumps(order) if order else None, json.dumps(payments)))
    state.setTimeoutDuration(15 * 60_000)
    if out:
        yield pd.DataFrame(out, columns=JOINED.fieldNames())


def build(spark: SparkSession, s: Settings) -> DataFrame:
    events = _events(spark, s, s.topics.orders, "order").unionByName(
        _events(spark, s, s.topics.payments, "payment")
    )
    return (
        events.where(sf.col("order_id").isNotNull())
        .groupBy("order_id")
        .applyInPandasWithState(
            join_orders_payments, JOINED, _STATE, "Update", GroupStateTimeout.ProcessingTimeTimeout
        )
    )
