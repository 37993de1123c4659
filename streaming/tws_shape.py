"""PIPELINE_SHAPE=tws: the same reconciliation on `transformWithStateInPandas` (Spark 4).

The same events, grouped by the same buckets, and the same pure `step` (streaming/state.py) as
the default shape; only where the state lives differs. Instead of one pickled value per bucket,
rewritten every batch, each order is its own entry in MapState:

    orders:  order_id -> JSON of its entry (as in `step`'s state)
    pending: order_id -> JSON of the payments no order has claimed yet
    due:     close time (epoch ms) -> JSON list of the order_ids to look at then

A batch loads only the entries of the order_ids it carries, steps them, and writes them back. An
event-time timer per close time brings the due entries back when the watermark passes it, and
`step` closes them (final outcome, or orphan payment). So a batch costs what it carries, not
what is open.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import types as T
from pyspark.sql.streaming.stateful_processor import (
    ExpiredTimerInfo,
    StatefulProcessor,
    StatefulProcessorHandle,
    TimerValues,
)

from streaming import parse
from streaming.rules import Rules
from streaming.state import Output, StepResult, step

_ID = T.StructType([T.StructField("order_id", T.StringType())])
_TS = T.StructType([T.StructField("close_ts", T.LongType())])
_JSON = T.StructType([T.StructField("json", T.StringType())])


def _json_of(store: Any, key: tuple[Any, ...]) -> Any:
    """The JSON value under `key`, or None. `containsKey` first: Spark 4.0 logs a WARN line for
    every `getValue` of a missing key."""
    if not store.containsKey(key):
        return None
    value = store.getValue(key)
    return None if value is None else json.loads(value[0])


class Reconciler(StatefulProcessor):
    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        self.orders = handle.getMapState("orders", _ID, _JSON)
        self.pending = handle.getMapState("pending", _ID, _JSON)
        self.due = handle.getMapState("due", _TS, _JSON)

    # -- loading and saving the entries a step needs ---------------------------------------

    def _load(self, ids: set[str]) -> dict[str, Any]:
        state: dict[str, Any] = {"orders": {}, "pending": {}}
        for oid in ids:
            for name, store in (("orders", self.orders), ("pending", self.pending)):
                value = _json_of(store, (oid,))
                if value is not None:
                    state[name][oid] = value
        return state

    def _file(self, close_ts: int, oids: list[str]) -> None:
        """Look at `oids` again when the watermark passes `close_ts`."""
        key = (close_ts,)
        known = _json_of(self.due, key) or []
        merged = list(dict.fromkeys(known + oids))
        if merged != known:
            self.due.updateValue(key, (json.dumps(merged),))
        self.handle.registerTimer(close_ts)

    def _save(self, before: dict[str, Any], after: dict[str, Any], watermark: int) -> None:
        closes: dict[int, list[str]] = {}
        for name, store in (("orders", self.orders), ("pending", self.pending)):
            old, new = before[name], after[name]
            for oid in old.keys() - new.keys():
                store.removeKey((oid,))
            for oid, value in new.items():
                if old.get(oid) != value:
                    store.updateValue((oid,), (json.dumps(value),))
                for ts in self._closes(name, value, old.get(oid)):
                    # never at or below the watermark: a timer there would not fire again
                    closes.setdefault(max(ts, watermark + 1), []).append(oid)
        for ts, oids in closes.items():
            self._file(ts, oids)

    def _closes(self, name: str, value: Any, old: Any) -> list[int]:
        """Close times of what is new in an entry (filed once, when it first appears)."""
        if name == "orders":
            return [] if old is not None else [self.rules.order_close_ts(value[0])]
        seen = old or {}
        return [self.rules.orphan_close_ts(p[2]) for pid, p in value.items() if pid not in seen]

    def _step(
        self, ids: set[str], events: list[tuple[Any, ...]], watermark: int, timer: int | None
    ) -> StepResult:
        state = self._load(ids)
        before = {k: {o: json.loads(json.dumps(v)) for o, v in d.items()} for k, d in state.items()}
        res = step(state, events, watermark, self.rules)
        self._save(before, state, watermark)
        if timer is not None:
            # A timer may fire with the watermark equal to its time, where `step` does not close
            # yet (it closes strictly below the watermark): look again just above it.
            close, orphan = self.rules.order_close_ts, self.rules.orphan_close_ts
            again = [oid for oid, e in state["orders"].items() if close(e[0]) <= timer]
            again += [
                oid
                for oid, by_id in state["pending"].items()
                if any(orphan(p[2]) <= timer for p in by_id.values())
            ]
            if again:
                self._file(watermark + 1, again)
        return res

    # -- Spark's entry points -----------------------------------------------------------------

    def handleInputRows(
        self, key: Any, rows: Iterator[pd.DataFrame], timerValues: TimerValues
    ) -> Iterator[pd.DataFrame]:
        from streaming.job import _dead_letters, _event_tuples, _frame

        malformed: list[Output] = []
        events: list[tuple[Any, ...]] = []
        for pdf in rows:
            bad = (pdf["kind"] == parse.MALFORMED).to_numpy()
            if bad.any():
                malformed.extend(_dead_letters(pdf[bad]))
                pdf = pdf[~bad]
            events.extend(_event_tuples(pdf))
        watermark = timerValues.getCurrentWatermarkInMs()
        res = self._step({ev[1] for ev in events}, events, watermark, None)
        outputs = malformed + res.outputs
        if outputs:
            yield _frame(outputs)

    def handleExpiredTimer(
        self, key: Any, timerValues: TimerValues, expiredTimerInfo: ExpiredTimerInfo
    ) -> Iterator[pd.DataFrame]:
        from streaming.job import _frame

        ts = expiredTimerInfo.getExpiryTimeInMs()
        due = _json_of(self.due, (ts,))
        if due is None:
            return
        ids = set(due)
        self.due.removeKey((ts,))
        res = self._step(ids, [], timerValues.getCurrentWatermarkInMs(), ts)
        if res.outputs:
            yield _frame(res.outputs)

    def close(self) -> None:
        pass


def reconcile_tws(events: DataFrame, rules: Rules, output_schema: T.StructType) -> DataFrame:
    """`events` as the default shape hands them to its state operator (with the watermark)."""
    return events.groupBy("bucket").transformWithStateInPandas(
        Reconciler(rules),
        outputStructType=output_schema,
        outputMode="Update",
        timeMode="EventTime",
    )
