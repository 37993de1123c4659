"""Ground truth: a hand-checked case field by field, and consistency on a large dirty scenario."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from contract.events import Item, Order, Payment
from producers import serde
from producers.dirt import MALFORMED, Dirt
from producers.scenario import Emission, Scenario, ScenarioConfig, generate
from producers.truth import compute_truth, read_truth, write_truth

S = 1_767_225_600_000
MIN = 60_000


def _order(oid: str, ts: int, amount: int) -> Order:
    return Order(oid, "c-1", "s-1", "web", (Item("sku", "toys", 1, amount),), amount, "EUR", ts, ts)


def _pay(pid: str, oid: str, ts: int, amount: int) -> Payment:
    return Payment(pid, oid, "card", amount, "EUR", ts, ts)


def _em(ev: Order | Payment, dirt: Dirt = Dirt.CLEAN) -> Emission:
    why = "late" if dirt is Dirt.LATE else None
    raw = serde.encode(ev)
    return Emission(serde.kind_of(ev), ev.order_id.encode(), raw, dirt, ev, ev.produced_at, why)


def _bad(kind: str, key: str, raw: bytes, dirt: Dirt, why: str) -> Emission:
    return Emission(kind, key.encode(), raw, dirt, None, S, why)


@pytest.fixture(scope="module")
def hand() -> Scenario:
    o1, o2, o3 = _order("o1", S, 1000), _order("o2", S + MIN, 500), _order("o3", S + 2 * MIN, 800)
    o4, o5 = _order("o4", S + 3 * MIN, 700), _order("o5", S + 4 * MIN, 100)
    o6, o7 = _order("o6", S + 40 * MIN, 900), _order("o7", S + 40 * MIN + 1000, 400)
    p5 = _pay("p5", "o5", S + 5 * MIN, 150)
    late = _order("o-late", S - 75 * MIN, 300)
    bad_payment = serde.encode(_pay("p9", "o9", S, 10))[:-3]
    missing = serde.dumps({k: v for k, v in serde.order_dict(o1).items() if k != "currency"})
    ems = [
        _em(o1),
        _em(_pay("p1", "o1", S + MIN, 1000)),
        _em(o2),
        _em(_pay("p2", "o3", S + 90_000, 300)),  # before its order: skew 30 s
        _em(o3),
        _em(_pay("p3", "o3", S + 3 * MIN, 500)),
        _em(o4),
        _em(_pay("p4", "o4", S + 4 * MIN, 600)),
        _em(o5),
        _em(p5),
        _em(p5, Dirt.DUPLICATE),
        _em(_pay("p6", "o-x", S + 5 * MIN, 50), Dirt.ORPHAN),
        _em(_pay("p7", "o1", S + 20 * MIN, 70)),  # o1's window has closed: orphan
        _bad("payments", "o9", bad_payment, Dirt.BAD_JSON, "invalid_json"),
        _em(o6),
        _em(o7),
        _em(o7, Dirt.DUPLICATE),
        _em(late, Dirt.LATE),
        _bad("orders", "o1", missing, Dirt.MISSING_FIELD, "missing_field:currency"),
        _em(_pay("p8", "o6", S + 41 * MIN, 900)),
    ]
    return Scenario(ScenarioConfig(n_orders=0), tuple(ems))


def test_hand_checked_truth(hand: Scenario) -> None:
    t = compute_truth(hand, "T-orders", "T-payments")
    # max order ts S+40m+1s, max payment ts S+41m -> W = S+40m+1s - 15m
    assert t.final_watermark_ms == S + 25 * MIN + 1000
    got = {o.order_id: (o.status, o.amount, o.paid, o.payment_ids, o.final) for o in t.orders}
    assert got == {
        "o1": ("PAID", 1000, 1000, ["p1"], True),
        "o2": ("UNPAID", 500, 0, [], True),
        "o3": ("PAID", 800, 800, ["p2", "p3"], True),
        "o4": ("UNDERPAID", 700, 600, ["p4"], True),
        "o5": ("OVERPAID", 100, 150, ["p5"], True),
        "o6": ("PAID", 900, 900, ["p8"], False),
        "o7": ("PENDING", 400, 0, [], False),
    }
    assert [o.order_id for o in t.orders] == sorted(got)
    assert all(o.currency == "EUR" for o in t.orders)
    assert [(o.payment_id, o.order_id, o.amount, o.final) for o in t.orphans] == [
        ("p6", "o-x", 50, True),
        ("p7", "o1", 70, True),
    ]
    assert [(d.topic, d.key, d.reason) for d in t.dead_letters] == [
        ("T-payments", "o9", "invalid_json"),
        ("T-orders", "o-late", "late"),
        ("T-orders", "o1", "missing_field:currency"),
    ]
    assert t.dead_letters[0].value == hand.emissions[13].value.decode()
    assert t.topics == {"orders": "T-orders", "payments": "T-payments"}
    assert t.rules == {
        "window_after_ms": 900_000, "skew_before_ms": 120_000, "allowed_lateness_ms": 900_000
    }  # fmt: skip


def test_truth_file_round_trip(hand: Scenario, tmp_path: Path) -> None:
    t = compute_truth(hand)
    path = tmp_path / "truth.json"
    write_truth(path, t)
    assert read_truth(path) == t
    doc = t.to_json()
    assert doc["format"] == "payments-truth/1"
    assert set(doc) == {
        "format", "scenario", "rules", "topics", "final_watermark_ms", "orders", "orphans",
        "dead_letters", "minutely",
    }  # fmt: skip
    assert doc["scenario"]["n_orders"] == 0 and "rules" not in doc["scenario"]
    path.write_text('{"format": "other"}')
    with pytest.raises(ValueError):
        read_truth(path)


DIRTY = dict(
    p_duplicate_order=0.08, p_duplicate_payment=0.08, p_payment_before_order=0.08, p_late=0.04,
    p_unpaid=0.08, p_wrong_amount=0.08, p_split=0.08, p_orphan=0.04, p_malformed=0.06,
)  # fmt: skip


@pytest.fixture(scope="module")
def dirty() -> Scenario:
    return generate(ScenarioConfig(n_orders=3000, seed=17, event_rate=1.0, **DIRTY))


def test_truth_is_consistent_with_the_events(dirty: Scenario) -> None:
    t = compute_truth(dirty)
    em = dirty.emissions
    valid = [e.event for e in em if e.event is not None and e.dirt is not Dirt.LATE]
    payments = {p.payment_id: p for p in valid if isinstance(p, Payment)}
    orders = {o.order_id: o for o in valid if isinstance(o, Order)}
    # every valid payment exactly once, in an order or as an orphan
    ids = [pid for o in t.orders for pid in o.payment_ids] + [o.payment_id for o in t.orphans]
    assert sorted(ids) == sorted(payments) and len(ids) == len(set(ids))
    assert [o.order_id for o in t.orders] == sorted(orders)
    statuses = Counter(o.status for o in t.orders)
    assert set(statuses) == {"PAID", "UNDERPAID", "OVERPAID", "UNPAID", "PENDING"}
    for o in t.orders:
        assert o.amount == orders[o.order_id].amount
        assert o.paid == sum(payments[p].amount for p in o.payment_ids)
        assert (o.status == "PAID") == (o.paid == o.amount)
        assert (o.status in ("UNPAID", "PENDING")) == (o.paid == 0)
        assert o.status != "PENDING" or not o.final
        assert o.status != "UNPAID" or o.final
    # splits: every split order has its two payments (one order, two ids)
    split_ids = {e.event.order_id for e in em if e.dirt is Dirt.SPLIT and e.topic == "orders"}
    assert split_ids and all(len(t.order(oid).payment_ids) == 2 for oid in split_ids)
    assert all(t.order(oid).status == "PAID" for oid in split_ids)
    unpaid = {e.event.order_id for e in em if e.dirt is Dirt.UNPAID and e.topic == "orders"}
    assert all(t.order(oid).paid == 0 for oid in unpaid)
    # orphans: the generated orphans, nothing else (default delays are inside the window)
    orphan_ids = {e.event.payment_id for e in em if e.dirt is Dirt.ORPHAN}
    assert {o.payment_id for o in t.orphans} == orphan_ids
    # dead letters: every malformed message and every late event, nothing else
    want = Counter("late" if e.dirt is Dirt.LATE else e.reason for e in em
                   if e.dirt is Dirt.LATE or e.dirt in MALFORMED)  # fmt: skip
    assert Counter(d.reason for d in t.dead_letters) == want
    # late events are below the final watermark; finals are exactly those closed before it
    w = t.final_watermark_ms
    assert all(e.event.event_ts < w for e in em if e.dirt is Dirt.LATE)
    for o in t.orders:
        assert o.final == (orders[o.order_id].order_ts + 900_000 < w)
    assert any(o.final for o in t.orphans) and any(o.final for o in t.orders)


def test_truth_is_deterministic(dirty: Scenario) -> None:
    assert compute_truth(dirty) == compute_truth(dirty)
