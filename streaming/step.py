"""The reconciliation state step: plain Python, no Spark.

One *bucket* of orders (all order_ids hashing to the same bucket) is reconciled at a time:
`step(state, events, watermark, rules)` folds a micro-batch of that bucket's events into its
state and returns the documents to upsert. Every shape calls it once per bucket per batch
(`streaming/shape_tws.py` with only the entries the batch needs, `streaming/shape_state.py` with
the whole bucket), so Python runs once for many orders, not once per order.

State (plain dicts and lists, so it pickles small and stays readable):
    orders:  {order_id: [order_ts, amount, currency, {payment_id: [amount, method, payment_ts]},
                         kafka_ts_max]}
    pending: {order_id: {payment_id: [amount, method, payment_ts, currency]}}
             payments no order has claimed yet (their order is not here, or they fall outside
             its window); they become ORPHAN_PAYMENT documents when their window closes.
    closed:  {order_id: [forget_ts, order closed (bool), [payment_id, ...]]}
             what closed under this order_id (the order, its payments, orphaned payments),
             remembered until the watermark passes forget_ts, so that later copies stay
             duplicates (rules.dedup_horizon_ms).

Rules (see `contract/rules.py`): duplicates never change anything (first order_id, first
payment_id win); an event below the watermark is a `late` dead letter; an order's outcome is
final when the watermark passes its window; every change of an order emits its whole computed
outcome, so an upsert of the latest one is the truth, whatever was replayed before it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from contract import minutely
from contract.events import ORDER, F, Reason
from contract.outputs import ORPHAN, OUTCOME, Output, dead_letter
from contract.rules import Rules, Status, status_of

# Event tuples handed to `step`, in this column order (the Spark adapter builds them):
EVENT_COLUMNS = (
    "kind",
    "order_id",
    "payment_id",
    "event_ts",
    "amount",
    "currency",
    "method",
    "kafka_ts",
    "topic",
    "partition",
    "offset",
    "fields",  # an order's own contract fields (JSON), kept on its first outcome
    "raw_key",  # the Kafka key and value bytes, for a late event's dead letter
    "raw_value",
)


@dataclass(slots=True)
class StepStats:
    events: int = 0
    duplicates: int = 0
    late: int = 0
    closed: int = 0
    orphaned: int = 0


@dataclass(slots=True)
class StepResult:
    outputs: list[Output] = field(default_factory=list)
    stats: StepStats = field(default_factory=StepStats)
    next_close_ts: int | None = None  # earliest close of what is left; a timer for Spark
    # what this batch adds to the per-minute figures (contract/minutely.py): accepted orders
    # and payments, closed orders and orphans
    tally: minutely.Tally = field(default_factory=dict)

    def count(self, contributions: Iterable[tuple[minutely.Key, list[int]]]) -> None:
        for key, values in contributions:
            minutely.add(self.tally, key, values)


def empty_state() -> dict[str, Any]:
    return {"orders": {}, "pending": {}, "closed": {}}


def _remember(
    closed: dict[str, list[Any]], order_id: str, forget_ts: int, order: bool, pids: Iterable[str]
) -> None:
    rec = closed.setdefault(order_id, [forget_ts, False, []])
    rec[0] = max(rec[0], forget_ts)
    rec[1] = rec[1] or order
    rec[2].extend(p for p in pids if p not in rec[2])


def outcome_doc(order_id: str, entry: list[Any], final: bool) -> dict[str, Any]:
    order_ts, amount, currency, payments, _ = entry
    paid = sum(p[0] for p in payments.values())
    ordered = sorted(payments.items(), key=lambda kv: (kv[1][2], kv[0]))
    return {
        "order_id": order_id,
        "status": status_of(amount, paid, final).value,
        "final": final,
        "amount": amount,
        "paid": paid,
        "balance": amount - paid,
        "currency": currency,
        "order_ts": order_ts,
        "payment_ids": [pid for pid, _ in ordered],
        "payments": [
            {"payment_id": pid, "amount": p[0], "method": p[1], "payment_ts": p[2]}
            for pid, p in ordered
        ],
        "first_payment_delay_ms": (ordered[0][1][2] - order_ts) if ordered else None,
    }


def orphan_doc(payment_id: str, order_id: str, p: list[Any]) -> dict[str, Any]:
    amount, method, payment_ts, currency = p
    return {
        "payment_id": payment_id,
        "order_id": order_id,
        "status": Status.ORPHAN_PAYMENT.value,
        "final": True,
        "amount": amount,
        "currency": currency,
        "method": method,
        "payment_ts": payment_ts,
    }


def step(
    state: dict[str, Any], events: Iterable[tuple[Any, ...]], watermark: int, rules: Rules
) -> StepResult:
    """Fold one batch of one bucket's events into `state` (mutated) and close what the watermark
    has passed. `watermark` is Spark's for this batch (epoch ms; <= 0 before the first one)."""
    orders: dict[str, list[Any]] = state["orders"]
    pending: dict[str, dict[str, list[Any]]] = state["pending"]
    closed: dict[str, list[Any]] = state.setdefault("closed", {})
    res = StepResult()
    changed: dict[str, None] = {}  # order_ids to emit, in first-change order
    first_seen: dict[str, Any] = {}  # order_id -> the order's fields, kept on its first outcome
    payments: list[tuple[Any, ...]] = []
    # ids past the de-duplication horizon are forgotten before this batch's events are seen
    for order_id, rec in list(closed.items()):
        if rules.is_closed(rec[0], watermark):
            del closed[order_id]

    for ev in events:
        res.stats.events += 1
        kind, order_id, event_ts = ev[0], ev[1], ev[3]
        if rules.is_late(event_ts, watermark):
            res.stats.late += 1
            res.outputs.append(
                dead_letter(
                    ev[8], ev[9], ev[10], Reason.LATE.value, ev[12], ev[13], ev[7], event_ts
                )
            )
        elif kind == ORDER:
            if order_id in orders or (order_id in closed and closed[order_id][1]):
                res.stats.duplicates += 1
                continue
            orders[order_id] = [event_ts, ev[4], ev[5], {}, ev[7]]
            first_seen[order_id] = fields = json.loads(ev[11])
            res.count(minutely.order_accepted(event_ts, ev[4], ev[5], fields[F.CHANNEL]))
            changed[order_id] = None
            for pid, p in list(pending.get(order_id, {}).items()):
                if rules.matches(event_ts, p[2]):
                    orders[order_id][3][pid] = p[:3]
                    del pending[order_id][pid]
            if order_id in pending and not pending[order_id]:
                del pending[order_id]
        else:
            payments.append(ev)

    # Payments after orders, so a payment and its order in one batch meet whatever their order.
    for ev in payments:
        order_id, payment_id, event_ts = ev[1], ev[2], ev[3]
        entry = orders.get(order_id)
        if (
            (entry is not None and payment_id in entry[3])
            or payment_id in pending.get(order_id, ())
            or (order_id in closed and payment_id in closed[order_id][2])
        ):
            res.stats.duplicates += 1
            continue
        res.count(minutely.payment_accepted(event_ts, ev[4], ev[5], ev[6]))
        if entry is not None and rules.matches(entry[0], event_ts):
            entry[3][payment_id] = [ev[4], ev[6], event_ts]
            entry[4] = max(entry[4], ev[7])
            changed[order_id] = None
        else:
            pending.setdefault(order_id, {})[payment_id] = [ev[4], ev[6], event_ts, ev[5]]

    # Close what the watermark has passed: final outcomes and orphan payments.
    # What closes is remembered (closed) until its ids may be forgotten.
    for order_id, entry in list(orders.items()):
        close_ts = rules.order_close_ts(entry[0])
        if rules.is_closed(close_ts, watermark):
            res.stats.closed += 1
            changed.pop(order_id, None)
            out = _outcome(order_id, entry, True, first_seen.get(order_id))
            res.outputs.append(out)
            res.count(
                minutely.order_closed(close_ts, out.doc["status"], entry[1], out.doc["paid"],
                                      entry[2], len(entry[3]))
            )  # fmt: skip
            _remember(closed, order_id, rules.forget_ts(close_ts), True, entry[3])
            del orders[order_id]
    for order_id, by_id in list(pending.items()):
        for pid, p in list(by_id.items()):
            close_ts = rules.orphan_close_ts(p[2])
            if rules.is_closed(close_ts, watermark):
                res.stats.orphaned += 1
                res.outputs.append(Output(ORPHAN, pid, orphan_doc(pid, order_id, p)))
                res.count(minutely.orphan_closed(close_ts, p[0], p[3]))
                _remember(closed, order_id, rules.forget_ts(close_ts), False, [pid])
                del by_id[pid]
        if not by_id:
            del pending[order_id]

    for order_id in changed:
        res.outputs.append(_outcome(order_id, orders[order_id], False, first_seen.get(order_id)))

    closes = [rules.order_close_ts(e[0]) for e in orders.values()]
    closes += [rules.orphan_close_ts(p[2]) for by_id in pending.values() for p in by_id.values()]
    closes += [rec[0] for rec in closed.values()]
    res.next_close_ts = min(closes) if closes else None
    return res


def _outcome(order_id: str, entry: list[Any], final: bool, fields: dict[str, Any] | None) -> Output:
    """An order's outcome; on its first emission (`fields` given) with the order's own fields
    under `order`, which is how the sink knows the document is new."""
    doc = outcome_doc(order_id, entry, final)
    if fields is not None:
        doc["order"] = fields
    return Output(OUTCOME, order_id, doc, kafka_ts=entry[4])
