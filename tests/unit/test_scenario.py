"""The scenario generator: determinism, probabilities, ordering invariants, dirt as intended."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict

import pytest

from contract.events import Order, Payment
from contract.rules import Rules
from producers import serde
from producers.scenario import (
    DISORDER_MARGIN_MS,
    MALFORMED,
    Dirt,
    Emission,
    Scenario,
    ScenarioConfig,
    check_ordering,
    generate,
)
from tests.scenarios import DIRTY

N = 4000


@pytest.fixture(scope="module")
def dirty() -> Scenario:
    return generate(ScenarioConfig(n_orders=N, seed=3, **DIRTY))


def _fingerprint(s: Scenario) -> list[tuple[object, ...]]:
    return [(e.topic, e.key, e.value, e.emit_ms, e.dirt, e.reason) for e in s.emissions]


def test_same_seed_gives_byte_identical_emissions() -> None:
    cfg = ScenarioConfig(n_orders=300, seed=11, **DIRTY)
    assert _fingerprint(generate(cfg)) == _fingerprint(generate(cfg))


def test_different_seeds_differ() -> None:
    a = generate(ScenarioConfig(n_orders=300, seed=1))
    b = generate(ScenarioConfig(n_orders=300, seed=2))
    assert {e.value for e in a.emissions}.isdisjoint({e.value for e in b.emissions})


def test_clean_scenario_has_one_exact_payment_per_order() -> None:
    probs = {f.name: 0.0 for f in dataclasses.fields(ScenarioConfig) if f.name.startswith("p_")}
    s = generate(ScenarioConfig(n_orders=500, seed=5, **probs))
    orders = [e.event for e in s.topic(serde.ORDERS)]
    payments = [e.event for e in s.topic(serde.PAYMENTS)]
    assert len(orders) == len(payments) == 500
    assert {e.dirt for e in s.emissions} == {Dirt.CLEAN}
    by_order = {p.order_id: p for p in payments}
    for o in orders:
        assert o.amount == sum(i.quantity * i.unit_price for i in o.items) > 0
        p = by_order[o.order_id]
        assert p.amount == o.amount and p.currency == o.currency
        assert 0 <= p.payment_ts - o.order_ts <= 600_000
    assert len({o.order_id for o in orders}) == 500
    assert len({p.payment_id for p in payments}) == 500
    assert orders[0].order_ts == s.config.start_ms
    # 20 orders/s of event time on average
    span_s = (orders[-1].order_ts - orders[0].order_ts) / 1000
    assert 500 / 20 * 0.8 < span_s < 500 / 20 * 1.2


def _within(count: int, n: int, p: float) -> bool:
    sigma = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= 4 * sigma + 1


def test_probabilities_are_honoured(dirty: Scenario) -> None:
    em = dirty.emissions
    originals = [e for e in em if e.dirt not in (Dirt.DUPLICATE, Dirt.LATE) and e.event]
    orders = [e.event for e in originals if isinstance(e.event, Order)]
    pays: dict[str, list[Payment]] = defaultdict(list)
    for e in originals:
        if isinstance(e.event, Payment):
            pays[e.event.order_id].append(e.event)
    assert len(orders) == N
    fates = Counter()
    for o in orders:
        mine = pays.get(o.order_id, [])
        if not mine:
            fates["unpaid"] += 1
        elif len(mine) == 2:
            fates["split"] += 1
            assert sum(p.amount for p in mine) == o.amount
        elif mine[0].amount != o.amount:
            fates["wrong_amount"] += 1
    kinds = Counter(e.dirt for e in em)
    n_pay = sum(len(v) for v in pays.values()) - kinds[Dirt.ORPHAN]
    dups = Counter(e.topic for e in em if e.dirt is Dirt.DUPLICATE)
    early = sum(1 for e in originals if e.dirt is Dirt.PAYMENT_BEFORE_ORDER and e.topic == "orders")
    checks = [
        (fates["unpaid"], N, DIRTY["p_unpaid"]),
        (fates["split"], N, DIRTY["p_split"]),
        (fates["wrong_amount"], N, DIRTY["p_wrong_amount"]),
        (kinds[Dirt.ORPHAN], N, DIRTY["p_orphan"]),
        (kinds[Dirt.LATE], N, DIRTY["p_late"]),
        (sum(kinds[k] for k in MALFORMED), N, DIRTY["p_malformed"]),
        (dups[serde.ORDERS], N, DIRTY["p_duplicate_order"]),
        (dups[serde.PAYMENTS], n_pay, DIRTY["p_duplicate_payment"]),
        (early, N - fates["unpaid"], DIRTY["p_payment_before_order"]),
    ]  # fmt: skip
    for count, n, p in checks:
        assert _within(count, n, p), (count, n, p)
    assert {k for k in MALFORMED if kinds[k] > 0} == set(MALFORMED)


@pytest.mark.parametrize(
    "cfg",
    [
        ScenarioConfig(n_orders=3000, seed=1, **DIRTY),
        ScenarioConfig(n_orders=2000, seed=2, event_rate=0.5, **DIRTY),
        ScenarioConfig(n_orders=2000, seed=3, event_rate=500.0, **DIRTY),
        ScenarioConfig(n_orders=1000, seed=4, payment_delay_max_ms=12 * 60_000 + 59_000, **DIRTY),
        ScenarioConfig(n_orders=1000, seed=5, rules=Rules(60_000, 30_000, 5 * 60_000),
                       payment_delay_max_ms=60_000, **DIRTY),
    ],
)  # fmt: skip
def test_ordering_invariant_holds(cfg: ScenarioConfig) -> None:
    assert check_ordering(generate(cfg).emissions, cfg) == []


def test_ordering_check_catches_violations(dirty: Scenario) -> None:
    cfg, em = dirty.config, list(dirty.emissions)
    orders = [i for i, e in enumerate(em) if e.topic == "orders" and e.dirt is Dirt.CLEAN]
    # an order that is late by more than lateness - margin, but not marked late
    i = orders[len(orders) // 2]
    o = em[i].event
    back = o.order_ts - cfg.rules.allowed_lateness_ms + DISORDER_MARGIN_MS - 1
    behind = dataclasses.replace(o, order_id="o-behind", order_ts=back - 60_000)
    bad = [*em[: i + 1], Emission("orders", b"o-behind", serde.encode(behind), Dirt.CLEAN,
                                  behind, em[i].emit_ms), *em[i + 1 :]]  # fmt: skip
    assert any("too far behind" in p for p in check_ordering(bad, cfg))
    # a late event moved into the first half of its topic
    late = next(e for e in em if e.dirt is Dirt.LATE)
    early_late = [late, *(e for e in em if e is not late)]
    assert any("first half" in p for p in check_ordering(early_late, cfg))
    # a duplicate without its original
    dup = next(e for e in em if e.dirt is Dirt.DUPLICATE)
    assert any("duplicate" in p for p in check_ordering([dup], cfg))


def test_malformed_messages_validate_to_their_intended_reason(dirty: Scenario) -> None:
    reasons = Counter()
    for e in dirty.emissions:
        if e.dirt in MALFORMED:
            assert e.event is None and e.reason is not None
            assert serde.validate(e.topic, e.value) == e.reason, e.value
            reasons[e.reason.split(":")[0]] += 1
        else:
            assert serde.validate(e.topic, e.value) is None, e.value
            assert serde.decode(e.topic, e.value) == e.event
            assert e.reason == ("late" if e.dirt is Dirt.LATE else None)
    assert set(reasons) == {
        "invalid_json", "not_an_object", "missing_field", "wrong_type", "negative_amount",
        "unknown_schema_version",
    }  # fmt: skip


def test_keys_are_order_ids_and_topics_right(dirty: Scenario) -> None:
    for e in dirty.emissions:
        if e.event is not None:
            assert e.key == e.event.order_id.encode()
            assert e.topic == serde.kind_of(e.event)
            assert e.event.produced_at == e.emit_ms or e.dirt is Dirt.DUPLICATE


def test_emissions_in_emit_order_and_dirt_shapes(dirty: Scenario) -> None:
    em = dirty.emissions
    assert [e.emit_ms for e in em] == sorted(e.emit_ms for e in em)
    cfg = dirty.config
    first_payment: dict[str, int] = {}
    order_ids = set()
    for pos, e in enumerate(em):
        if isinstance(e.event, Payment):
            first_payment.setdefault(e.event.order_id, pos)
        if isinstance(e.event, Order) and e.dirt is not Dirt.LATE:
            order_ids.add(e.event.order_id)
        if e.dirt is Dirt.PAYMENT_BEFORE_ORDER and isinstance(e.event, Order):
            assert first_payment[e.event.order_id] < pos
        if e.dirt is Dirt.LATE:
            assert e.event.event_ts == cfg.start_ms - cfg.rules.allowed_lateness_ms - 3_600_000
    orphans = [e.event for e in em if e.dirt is Dirt.ORPHAN]
    assert orphans and all(p.order_id not in order_ids for p in orphans)
    late_payments = [e.event for e in em if e.dirt is Dirt.LATE and e.topic == "payments"]
    assert late_payments and all(p.order_id in order_ids for p in late_payments)
    wrong = [e.event for e in em if e.dirt is Dirt.WRONG_AMOUNT and e.topic == "payments"]
    amounts = {e.event.order_id: e.event.amount for e in em if isinstance(e.event, Order)}
    assert any(p.amount < amounts[p.order_id] for p in wrong)
    assert any(p.amount > amounts[p.order_id] for p in wrong)


@pytest.mark.parametrize(
    "changes",
    [
        {"p_late": 1.5},
        {"p_split": -0.1},
        {"p_unpaid": 0.6, "p_split": 0.6},
        {"event_rate": 0},
        {"payment_delay_min_ms": 5, "payment_delay_max_ms": 4},
        {"payment_delay_max_ms": 14 * 60_000},
        {"rules": Rules(allowed_lateness_ms=60_000)},
    ],
)
def test_config_rejects_bad_knobs(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ScenarioConfig(**changes)
