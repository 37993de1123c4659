"""PIPELINE_SHAPE=tws: the same reconciliation on `transformWithStateInPandas` (Spark 4).

The same events, grouped by the same buckets, and the same pure `step` (streaming/state.py) as
the default shape; only where the state lives differs. Instead of one pickled value per bucket,
rewritten every batch, each order is its own entry in MapState:

    orders:  order_id -> JSON of its entry (as in `step`'s state)
    pending: order_id -> JSON of the payments no order has claimed yet
    due:     slot (close time rounded down to SLOT_MS) -> [[order_id, close time], ...]
    slots:   the slots in use, sorted;  timer: the bucket's one event-time timer

A batch loads only the entries of the order_ids it carries, steps them, and writes them back.
Each bucket keeps one timer, at the earliest close time it holds. When the watermark passes it,
every entry whose close time is below the watermark is stepped (`step` closes it: final
outcome, or orphan payment) and the timer moves to the next close time. So a batch costs what
it carries and what closes in it, not what is open; and a window closes in the same batch as
in the default shape. (A timer per close time, tried first, cost one Python call per closing
order and fell behind at ~250 closes/s.)
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

from streaming.rules import Rules
from streaming.state import StepResult, step

_ID = T.StructType([T.StructField("order_id", T.StringType())])
_TS = T.StructType([T.StructField("close_ts", T.LongType())])
_JSON = T.StructType([T.StructField("json", T.StringType())])


def _raw_of(store: Any, key: tuple[Any, ...]) -> str | None:
    """The JSON text under `key`, or None. `containsKey` first: Spark 4.0 logs a WARN line for
    every `getValue` of a missing key."""
    if not store.containsKey(key):
        return None
    value = store.getValue(key)
    return None if value is None else str(value[0])


def _json_of(store: Any, key: tuple[Any, ...]) -> Any:
    raw = _raw_of(store, key)
    return None if raw is None else json.loads(raw)


SLOT_MS = 10_000  # the due index groups close times into slots of this width


class Reconciler(StatefulProcessor):
    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        self.orders = handle.getMapState("orders", _ID, _JSON)
        self.pending = handle.getMapState("pending", _ID, _JSON)
        self.due = handle.getMapState("due", _TS, _JSON)  # slot -> [[order_id, close_ts]]
        self.slots = handle.getValueState("slots", _JSON)  # sorted slots in use
        self.timer = handle.getValueState("timer", _TS)  # the one timer set, if any

    # -- loading and saving the entries a step needs ---------------------------------------

    def _load(self, ids: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The stored entries of `ids`: one copy for `step` to change, one to compare with."""
        state: dict[str, Any] = {"orders": {}, "pending": {}}
        before: dict[str, Any] = {"orders": {}, "pending": {}}
        for oid in ids:
            for name, store in (("orders", self.orders), ("pending", self.pending)):
                raw = _raw_of(store, (oid,))
                if raw is not None:
                    state[name][oid] = json.loads(raw)
                    before[name][oid] = json.loads(raw)
        return state, before

    def _slots(self) -> list[int]:
        got = self.slots.get() if self.slots.exists() else None
        return json.loads(got[0]) if got else []

    def _timer(self) -> int | None:
        got = self.timer.get() if self.timer.exists() else None
        return int(got[0]) if got else None

    def _set_timer(self, ts: int | None) -> None:
        """Keep exactly one timer per bucket, at `ts` (None: none)."""
        current = self._timer()
        if current == ts:
            return
        if current is not None:
            self.handle.deleteTimer(current)
        if ts is None:
            self.timer.clear()
        else:
            self.handle.registerTimer(ts)
            self.timer.update((ts,))

    def _save(self, before: dict[str, Any], after: dict[str, Any], watermark: int) -> None:
        new: dict[int, list[list[Any]]] = {}
        for name, store in (("orders", self.orders), ("pending", self.pending)):
            old, cur = before[name], after[name]
            for oid in old.keys() - cur.keys():
                store.removeKey((oid,))
            for oid, value in cur.items():
                if old.get(oid) != value:
                    store.updateValue((oid,), (json.dumps(value),))
                for ts in self._closes(name, value, old.get(oid)):
                    new.setdefault(ts - ts % SLOT_MS, []).append([oid, ts])
        if not new:
            return
        slots = self._slots()
        for slot, pairs in new.items():
            self.due.updateValue(
                (slot,), (json.dumps((_json_of(self.due, (slot,)) or []) + pairs),)
            )
            if slot not in slots:
                slots.append(slot)
        self.slots.update((json.dumps(sorted(slots)),))
        earliest = min(ts for pairs in new.values() for _, ts in pairs)
        current = self._timer()
        if current is None or earliest < current:
            # never at or below the watermark: a timer there would not fire again
            self._set_timer(max(earliest, watermark + 1))

    def _closes(self, name: str, value: Any, old: Any) -> list[int]:
        """Close times of what is new in an entry (filed once, when it first appears)."""
        if name == "orders":
            return [] if old is not None else [self.rules.order_close_ts(value[0])]
        seen = old or {}
        return [self.rules.orphan_close_ts(p[2]) for pid, p in value.items() if pid not in seen]

    def _step(self, ids: set[str], events: list[tuple[Any, ...]], watermark: int) -> StepResult:
        state, before = self._load(ids)
        res = step(state, events, watermark, self.rules)
        self._save(before, state, watermark)
        return res

    def _close_due(self, watermark: int) -> StepResult:
        """Step every entry whose close time the watermark has passed (`step` closes them), then
        set the timer at the earliest close time left."""
        slots = self._slots()
        passed = [slot for slot in slots if slot < watermark]
        ids: set[str] = set()
        left: list[int] = []
        for slot in passed:
            pairs = _json_of(self.due, (slot,)) or []
            ids.update(oid for oid, ts in pairs if ts < watermark)
            keep = [[oid, ts] for oid, ts in pairs if ts >= watermark]
            if keep:
                self.due.updateValue((slot,), (json.dumps(keep),))
                left.extend(ts for _, ts in keep)
            else:
                self.due.removeKey((slot,))
                slots.remove(slot)
        res = self._step(ids, [], watermark)
        self.slots.update((json.dumps(slots),))
        if not left and slots:
            first = [slot for slot in slots if slot >= watermark][:1]
            left = [ts for s in first for _, ts in (_json_of(self.due, (s,)) or [])]
        self._set_timer(max(min(left), watermark + 1) if left else None)
        return res

    # -- Spark's entry points -----------------------------------------------------------------

    def handleInputRows(
        self, key: Any, rows: Iterator[pd.DataFrame], timerValues: TimerValues
    ) -> Iterator[pd.DataFrame]:
        from streaming.job import _frame, split_events

        malformed, events = split_events(rows)
        watermark = timerValues.getCurrentWatermarkInMs()
        res = self._step({ev[1] for ev in events}, events, watermark)
        outputs = malformed + res.outputs
        if outputs:
            yield _frame(outputs)

    def handleExpiredTimer(
        self, key: Any, timerValues: TimerValues, expiredTimerInfo: ExpiredTimerInfo
    ) -> Iterator[pd.DataFrame]:
        from streaming.job import _frame

        self.timer.clear()  # Spark has dropped the timer that fired
        res = self._close_due(timerValues.getCurrentWatermarkInMs())
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
