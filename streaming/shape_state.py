"""PIPELINE_SHAPE=state: the reconciliation on `applyInPandasWithState`, one pickled value per
bucket of order_ids.

Each batch unpickles a bucket's whole open state, `step`s it and pickles it back, so a batch
costs what is open, not what it carries (see README, "Shapes"). Kept as the comparison for the
default `tws` shape in the benchmarks, and because with little open state (short windows, low
rates) it makes the fewest calls between the JVM and Python.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import types as T
from pyspark.sql.streaming.state import GroupState, GroupStateTimeout

from conf.settings import Settings
from conf.spark_worker import lean_imports
from contract.rules import Rules
from streaming.frames import (
    OUTPUT_SCHEMA,
    Claims,
    frame,
    outputs_of,
    reject_reused,
    split_events,
)
from streaming.step import empty_state, step

STATE_SCHEMA = T.StructType([T.StructField("blob", T.BinaryType())])


def make_state_func(rules: Rules, claims: Claims | None = None):  # type: ignore[no-untyped-def]
    """The applyInPandasWithState function: unpickle a bucket, `step` it, pickle it back."""

    def reconcile_bucket(
        key: tuple[Any, ...], pdfs: Iterator[pd.DataFrame], state: GroupState
    ) -> Iterator[pd.DataFrame]:
        lean_imports()
        bucket_state = pickle.loads(state.get[0]) if state.exists else empty_state()
        watermark = state.getCurrentWatermarkMs()
        malformed, events = ([], []) if state.hasTimedOut else split_events(pdfs)
        reused, events = reject_reused(events, watermark, rules, claims)
        res = step(bucket_state, events, watermark, rules)
        if bucket_state["orders"] or bucket_state["pending"] or bucket_state["closed"]:
            state.update((pickle.dumps(bucket_state, protocol=5),))
            if res.next_close_ts is not None:
                state.setTimeoutTimestamp(max(res.next_close_ts, watermark + 1))
        elif state.exists:
            state.remove()
        outputs = outputs_of(res, watermark, malformed, reused)
        if outputs:
            yield frame(outputs)

    return reconcile_bucket


def build(events: DataFrame, s: Settings, claims: Claims | None = None) -> DataFrame:
    """`events` from streaming.source.read_events -> documents to write (OUTPUT_SCHEMA)."""
    return events.groupBy("bucket").applyInPandasWithState(
        make_state_func(s.pipeline.rules(), claims),
        OUTPUT_SCHEMA,
        STATE_SCHEMA,
        "Update",
        GroupStateTimeout.EventTimeTimeout,
    )
