"""The outcome the pipeline must end with for a scenario: an independent, set-based reference.

Computed in one batch from the raw payloads (never by replaying the stream):

1. Dead letters: every malformed message (reason = `serde.validate`) and every late event
   (reason `late`), in emission order.
2. The rest is decoded and de-duplicated: orders by order_id, payments by payment_id, first
   occurrence wins; a payment_id seen before with another order_id is a `payment_id_reused`
   dead letter (a payment pays one order).
3. Each payment is assigned to the order with its order_id when
   `rules.matches(order_ts, payment_ts)`; otherwise it is an orphan.
4. Final watermark W = rules.watermark(min(max order_ts, max payment_ts)) over the valid non-late
   events (duplicates and orphans included; one side only if the other is empty).
5. An order is final iff `rules.is_closed(rules.order_close_ts(order_ts), W)`; its status is
   `status_of(amount, paid, final)`. An orphan is final iff
   `rules.is_closed(rules.orphan_close_ts(payment_ts), W)`.

File format (`write_truth` / `read_truth`), one JSON document:

    {"format": "payments-truth/1",
     "scenario": {<ScenarioConfig knobs but rules>},
     "rules": {"window_after_ms": int, "skew_before_ms": int, "allowed_lateness_ms": int},
     "topics": {"orders": "<topic name>", "payments": "<topic name>"},
     "final_watermark_ms": int | null,
     "orders": [{"order_id", "status", "amount", "paid", "currency",
                 "payment_ids": [sorted], "final": bool}, ...],          # sorted by order_id
     "orphans": [{"payment_id", "order_id", "amount", "final"}, ...],    # sorted by payment_id
     "dead_letters": [{"topic": "<topic name>", "key": str | null, "reason": str,
                       "value": "<raw payload as text>" | null}, ...],   # in emission order
     "minutely": [[minute_ms, metric, dim, currency, *values], ...]}
    (the event-time per-minute figures of contract/minutely.py, from the accepted orders and
    payments and what closed by W: the dead letters' and latency figures depend on Kafka's
    timestamps, which only the broker knows)
    (key and value: UTF-8 text; a byte that is not UTF-8 as a lone surrogate U+DC80..U+DCFF;
    null when the message had none)

`producers/fuzz.py` writes the same format with dead letters only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contract import minutely
from contract.events import Order, Payment, Reason, reason
from contract.rules import Rules, status_of
from producers import serde
from producers.dirt import Dirt
from producers.scenario import Scenario

FORMAT = "payments-truth/1"


@dataclass(frozen=True)
class OrderTruth:
    order_id: str
    status: str
    amount: int
    paid: int
    currency: str
    payment_ids: list[str]
    final: bool


@dataclass(frozen=True)
class OrphanTruth:
    payment_id: str
    order_id: str
    amount: int
    final: bool


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    key: str | None
    reason: str
    value: str | None  # None: a message without a value (a tombstone)


@dataclass(frozen=True)
class Truth:
    scenario: dict[str, Any]
    rules: dict[str, int]
    topics: dict[str, str]
    final_watermark_ms: int | None
    orders: list[OrderTruth] = field(default_factory=list)
    orphans: list[OrphanTruth] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    minutely: list[list[Any]] = field(default_factory=list)

    def order(self, order_id: str) -> OrderTruth:
        return next(o for o in self.orders if o.order_id == order_id)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Truth:
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document: format={doc.get('format')!r}")
        return cls(
            scenario=doc["scenario"],
            rules=doc["rules"],
            topics=doc["topics"],
            final_watermark_ms=doc["final_watermark_ms"],
            orders=[OrderTruth(**o) for o in doc["orders"]],
            orphans=[OrphanTruth(**o) for o in doc["orphans"]],
            dead_letters=[DeadLetter(**d) for d in doc["dead_letters"]],
            minutely=doc.get("minutely", []),
        )


def as_text(raw: bytes | None) -> str | None:
    """Raw key or value bytes as a truth file holds them (see the format above)."""
    return None if raw is None else raw.decode("utf-8", "surrogateescape")


def rules_doc(rules: Rules) -> dict[str, int]:
    return {
        "window_after_ms": rules.window_after_ms,
        "skew_before_ms": rules.skew_before_ms,
        "allowed_lateness_ms": rules.allowed_lateness_ms,
    }


def compute_truth(
    scenario: Scenario,
    orders_topic: str = serde.ORDERS,
    payments_topic: str = serde.PAYMENTS,
    codec: Any = serde,
) -> Truth:
    """`codec`: the wire format's `validate(kind, raw, key)` and `decode(kind, raw)`: JSON
    (`producers.serde`), or Avro (`producers.avro_serde.AvroCodec`)."""
    rules = scenario.config.rules
    names = {serde.ORDERS: orders_topic, serde.PAYMENTS: payments_topic}
    dead: list[DeadLetter] = []
    orders: dict[str, Order] = {}
    payments: dict[str, Payment] = {}
    max_ts: dict[str, int] = {}
    for em in scenario.emissions:
        why = codec.validate(em.topic, em.value, em.key)
        if why is None and em.dirt is Dirt.LATE:
            why = reason(Reason.LATE)
        ev = codec.decode(em.topic, em.value) if why is None else None
        if isinstance(ev, Payment):
            first = payments.get(ev.payment_id)
            if first is not None and first.order_id != ev.order_id:
                why, ev = reason(Reason.PAYMENT_ID_REUSED), None
        if ev is None:
            assert why is not None  # a message is decoded exactly when it has no reason
            dead.append(DeadLetter(names[em.topic], as_text(em.key), why, as_text(em.value)))
            continue
        max_ts[em.topic] = max(max_ts.get(em.topic, ev.event_ts), ev.event_ts)
        if isinstance(ev, Order):
            orders.setdefault(ev.order_id, ev)
        else:
            payments.setdefault(ev.payment_id, ev)
    watermark = rules.watermark(min(max_ts.values())) if max_ts else None

    def closed(close_ts: int) -> bool:
        return watermark is not None and rules.is_closed(close_ts, watermark)

    assigned: dict[str, list[Payment]] = {oid: [] for oid in orders}
    orphans: list[OrphanTruth] = []
    for p in payments.values():
        o = orders.get(p.order_id)
        if o is not None and rules.matches(o.order_ts, p.payment_ts):
            assigned[o.order_id].append(p)
        else:
            final = closed(rules.orphan_close_ts(p.payment_ts))
            orphans.append(OrphanTruth(p.payment_id, p.order_id, p.amount, final))
    figures: minutely.Tally = {}

    def count(contributions: minutely.Figures) -> None:
        for key, values in contributions:
            minutely.add(figures, key, values)

    for o in orders.values():
        count(minutely.order_accepted(o.order_ts, o.amount, o.currency, o.channel))
    for p in payments.values():
        count(minutely.payment_accepted(p.payment_ts, p.amount, p.currency, p.method))
    for orphan in orphans:
        if orphan.final:
            p = payments[orphan.payment_id]
            count(minutely.orphan_closed(rules.orphan_close_ts(p.payment_ts), p.amount, p.currency))
    results = []
    for oid in sorted(orders):
        o = orders[oid]
        paid = sum(p.amount for p in assigned[oid])
        final = closed(rules.order_close_ts(o.order_ts))
        status = status_of(o.amount, paid, final).value
        ids = sorted(p.payment_id for p in assigned[oid])
        results.append(OrderTruth(oid, status, o.amount, paid, o.currency, ids, final))
        if final:
            close_ts = rules.order_close_ts(o.order_ts)
            count(minutely.order_closed(close_ts, status, o.amount, paid, o.currency, len(ids)))
    return Truth(
        scenario=scenario.config.knobs(),
        rules=rules_doc(rules),
        topics={serde.ORDERS: orders_topic, serde.PAYMENTS: payments_topic},
        final_watermark_ms=watermark,
        orders=results,
        orphans=sorted(orphans, key=lambda x: x.payment_id),
        dead_letters=dead,
        minutely=minutely.to_rows(dict(sorted(figures.items()))),
    )


def write_truth(path: str | Path, truth: Truth) -> None:
    Path(path).write_text(json.dumps(truth.to_json(), indent=1) + "\n", encoding="utf-8")


def read_truth(path: str | Path) -> Truth:
    return Truth.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
