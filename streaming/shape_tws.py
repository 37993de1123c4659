"""PIPELINE_SHAPE=tws (the default): the reconciliation on `transformWithStateInPandas`, one state
entry per order, so a batch costs what it carries and what closes in it, not what is open.

The same pure `step` (streaming/step.py) as the `state` shape, grouped by the same buckets of
order_ids; only where the state lives differs. Per bucket, in RocksDB:

    entries: order_id -> JSON [order entry, unclaimed payments, closed record] (step's layout;
             each null when absent; a closed record keeps ids for the de-duplication horizon)
    due:     slot (close time rounded down to SLOT_MS) -> JSON [[order_id, close time], ...]
    slots:   the slots in use, sorted;   timer: the bucket's one event-time timer

A batch loads the entries of the order_ids it carries (one lookup each), steps them, and writes
back only what changed. Each new close time (an order's window end, an unclaimed payment's
orphan time) is filed once in the due index. Each bucket keeps one timer, at the earliest close
time it holds; when the watermark passes it, the entries due by then are loaded and stepped
(`step` closes them: a final outcome, or an orphan payment), and the timer moves on. Nothing
ever scans the open orders, so the cost of a batch does not grow with them. (A timer per close
time, tried first, cost a Python call per closing order and fell behind at ~250 closes/s.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
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
from streaming.step import StepResult, empty_state, step

_ID = T.StructType([T.StructField("order_id", T.StringType())])
_TS = T.StructType([T.StructField("close_ts", T.LongType())])
_JSON = T.StructType([T.StructField("json", T.StringType())])
SLOT_MS = 10_000  # the due index groups close times into slots of this width


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


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


class Reconciler(StatefulProcessor):
    def __init__(self, rules: Rules, claims: Claims | None = None) -> None:
        self.rules = rules
        self.claims = claims

    def init(self, handle: StatefulProcessorHandle) -> None:
        lean_imports()
        self.handle = handle
        self.entries = handle.getMapState("entries", _ID, _JSON)
        self.due = handle.getMapState("due", _TS, _JSON)
        self.slots = handle.getValueState("slots", _JSON)
        self.timer = handle.getValueState("timer", _TS)

    # -- the entries a step needs -------------------------------------------------------------

    def _load(self, ids: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """`step`'s state holding the stored entries of `ids`, and what was stored (to compare
        with after the step): order_id -> (JSON text, had an order, unclaimed payment ids)."""
        state = empty_state()
        before: dict[str, Any] = {}
        for oid in ids:
            raw = _raw_of(self.entries, (oid,))
            if raw is None:
                continue
            order, pending, *rest = json.loads(raw)  # entries before the horizon had two
            closed = rest[0] if rest else None
            if order is not None:
                state["orders"][oid] = order
            if pending:
                state["pending"][oid] = pending
            if closed:
                state["closed"][oid] = closed
            before[oid] = (raw, order is not None, set(pending or ()), closed and closed[0])
        return state, before

    def _save(
        self, ids: Iterable[str], before: dict[str, Any], state: dict[str, Any], watermark: int
    ) -> None:
        """Write back the entries the step changed, and file the close times of what is new."""
        new: dict[int, list[list[Any]]] = {}
        for oid in ids:
            order, pending = state["orders"].get(oid), state["pending"].get(oid) or None
            closed = state["closed"].get(oid)
            old_raw, had_order, old_pids, old_forget = before.get(oid, (None, False, set(), None))
            if order is None and pending is None and closed is None:
                if old_raw is not None:
                    self.entries.removeKey((oid,))
                continue
            raw = _dumps([order, pending, closed])
            if raw != old_raw:
                self.entries.updateValue((oid,), (raw,))
            closes = [] if had_order or order is None else [self.rules.order_close_ts(order[0])]
            closes += [
                self.rules.orphan_close_ts(p[2])
                for pid, p in (pending or {}).items()
                if pid not in old_pids
            ]
            if closed is not None and closed[0] != old_forget:
                closes.append(closed[0])  # when its ids may be forgotten
            for ts in closes:
                new.setdefault(ts - ts % SLOT_MS, []).append([oid, ts])
        if new:
            self._file(new, watermark)

    def _file(self, new: dict[int, list[list[Any]]], watermark: int) -> None:
        """Add close times to the due index, and bring the timer forward if one is earlier."""
        slots = self._slots()
        for slot, pairs in new.items():
            self.due.updateValue((slot,), (_dumps((_json_of(self.due, (slot,)) or []) + pairs),))
            if slot not in slots:
                slots.append(slot)
        self.slots.update((_dumps(sorted(slots)),))
        earliest = min(ts for pairs in new.values() for _, ts in pairs)
        current = self._timer()
        if current is None or earliest < current:
            # never at or below the watermark: a timer there would not fire again
            self._set_timer(max(earliest, watermark + 1))

    def _step(self, ids: set[str], events: list[tuple[Any, ...]], watermark: int) -> StepResult:
        state, before = self._load(ids)
        res = step(state, events, watermark, self.rules)
        self._save(ids, before, state, watermark)
        return res

    # -- the due index and the bucket's one timer ------------------------------------------

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

    def _close_due(self, watermark: int) -> StepResult:
        """Step every entry with a close time the watermark has passed (`step` closes it), then
        set the timer at the earliest close time left."""
        slots = self._slots()
        ids: set[str] = set()
        left: list[int] = []
        for slot in [slot for slot in slots if slot < watermark]:
            pairs = _json_of(self.due, (slot,)) or []
            ids.update(oid for oid, ts in pairs if ts < watermark)
            keep = [[oid, ts] for oid, ts in pairs if ts >= watermark]
            if keep:
                self.due.updateValue((slot,), (_dumps(keep),))
                left.extend(ts for _, ts in keep)
            else:
                self.due.removeKey((slot,))
                slots.remove(slot)
        res = self._step(ids, [], watermark)
        self.slots.update((_dumps(slots),))
        if not left and slots:
            left = [ts for _, ts in _json_of(self.due, (slots[0],)) or []]
        self._set_timer(max(min(left), watermark + 1) if left else None)
        return res

    # -- Spark's entry points -----------------------------------------------------------------

    def handleInputRows(
        self, key: Any, rows: Iterator[pd.DataFrame], timerValues: TimerValues
    ) -> Iterator[pd.DataFrame]:
        malformed, events = split_events(rows)
        watermark = timerValues.getCurrentWatermarkInMs()
        reused, events = reject_reused(events, watermark, self.rules, self.claims)
        res = self._step({ev[1] for ev in events}, events, watermark)
        outputs = outputs_of(res, watermark, malformed, reused)
        if outputs:
            yield frame(outputs)

    def handleExpiredTimer(
        self, key: Any, timerValues: TimerValues, expiredTimerInfo: ExpiredTimerInfo
    ) -> Iterator[pd.DataFrame]:
        self.timer.clear()  # Spark has dropped the timer that fired
        watermark = timerValues.getCurrentWatermarkInMs()
        outputs = outputs_of(self._close_due(watermark), watermark)
        if outputs:
            yield frame(outputs)

    def close(self) -> None:
        pass


def build(events: DataFrame, s: Settings, claims: Claims | None = None) -> DataFrame:
    """`events` from streaming.source.read_events -> documents to write (OUTPUT_SCHEMA)."""
    if s.spark.state_store != "rocksdb":
        raise ValueError(
            "PIPELINE_SHAPE=tws needs SPARK_STATE_STORE=rocksdb (transformWithStateInPandas "
            f"runs on RocksDB only), not {s.spark.state_store!r}"
        )
    return events.groupBy("bucket").transformWithStateInPandas(
        Reconciler(s.pipeline.rules(), claims),
        outputStructType=OUTPUT_SCHEMA,
        outputMode="Update",
        timeMode="EventTime",
    )
