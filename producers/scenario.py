"""A coherent, seeded scenario of orders and payments, dirt included. Pure: no Kafka, no clock.

`generate(config)` returns a `Scenario`: the emissions of both topics in one global order
(by notional emission time `emit_ms`, which is also each payload's `produced_at`). Same config ->
byte-identical emissions. Per order slot the generator draws, independently:

- a fate (mutually exclusive): unpaid (no payment), wrong_amount (one payment, under or over),
  split (two payments summing to the amount, both within the window), else one exact payment;
- payment_before_order: the order is held back and emitted right after its first payment;
- duplicate_order / duplicate_payment (per payment): a byte-identical re-send a few events later;
- orphan: a payment whose order_id never appears in the orders topic;
- late: an order, or a payment of this (existing) order, with event time
  `start_ms - allowed_lateness - 1h`, emitted somewhere in the second half of its topic;
- malformed: one extra message on either topic with exactly one defect (kinds in
  `dirt.MALFORMED`), its intended dead-letter reason in `Emission.reason`.

Ordering invariant (checked by `check_ordering`): in each topic every valid non-late event has
`ts >= max(ts emitted before it in that topic) - allowed_lateness + 2 min`.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import asdict, dataclass, field
from enum import Enum

from faker import Faker

from contract.events import Channel, Event, Item, Method, Order, Payment, Reason, reason
from contract.rules import Rules
from producers import serde
from producers.dirt import MALFORMED, Dirt, corrupt

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
LATE_BEFORE_MS = 3_600_000  # late events are this much older than start - allowed_lateness
DISORDER_MARGIN_MS = 120_000  # every non-late event stays this far inside the lateness
EMIT_JITTER_MS = 50  # emission delay after the event time (sim clock)
CATEGORIES = ("grocery", "electronics", "apparel", "home", "beauty", "toys", "sports", "books")
_CHANNELS = tuple(c.value for c in Channel)
_METHODS = tuple(m.value for m in Method)

__all__ = ["Dirt", "MALFORMED", "Emission", "Scenario", "ScenarioConfig", "generate"]


class Fate(str, Enum):
    PAID = "clean"
    UNPAID = Dirt.UNPAID.value
    WRONG_AMOUNT = Dirt.WRONG_AMOUNT.value
    SPLIT = Dirt.SPLIT.value


@dataclass(frozen=True)
class ScenarioConfig:
    n_orders: int = 1000
    seed: int = 42
    start_ms: int = START_MS
    event_rate: float = 20.0  # orders per second of event time
    payment_delay_min_ms: int = 0
    payment_delay_max_ms: int = 10 * 60_000
    p_duplicate_order: float = 0.02
    p_duplicate_payment: float = 0.02
    p_payment_before_order: float = 0.02
    p_late: float = 0.01
    p_unpaid: float = 0.03
    p_wrong_amount: float = 0.03
    p_split: float = 0.03
    p_orphan: float = 0.01
    p_malformed: float = 0.01
    rules: Rules = field(default_factory=Rules)
    id_prefix: str = ""  # ids are o-<prefix>-<n>; empty -> the seed
    currency: str = "EUR"

    def __post_init__(self) -> None:
        probs = {k: v for k, v in asdict(self).items() if k.startswith("p_")}
        bad = [k for k, v in probs.items() if not 0.0 <= v <= 1.0]
        if bad:
            raise ValueError(f"probabilities must be in [0, 1]: {bad}")
        if self.p_unpaid + self.p_wrong_amount + self.p_split > 1.0:
            raise ValueError("p_unpaid + p_wrong_amount + p_split must be <= 1")
        if self.n_orders < 0 or self.event_rate <= 0:
            raise ValueError("n_orders must be >= 0 and event_rate > 0")
        if not 0 <= self.payment_delay_min_ms <= self.payment_delay_max_ms:
            raise ValueError("need 0 <= payment_delay_min_ms <= payment_delay_max_ms")
        slack = self.rules.allowed_lateness_ms - DISORDER_MARGIN_MS - EMIT_JITTER_MS
        if slack < 0:
            raise ValueError("allowed lateness must be >= 2 min + emission jitter")
        early = max(self.payment_delay_max_ms, self.rules.skew_before_ms)
        if self.p_payment_before_order > 0 and early > slack:
            raise ValueError("payment delay / skew too large for the allowed lateness")

    @property
    def prefix(self) -> str:
        return self.id_prefix or str(self.seed)

    @property
    def late_ts(self) -> int:
        return self.start_ms - self.rules.allowed_lateness_ms - LATE_BEFORE_MS

    def knobs(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("rules")
        return d


@dataclass(frozen=True, slots=True)
class Emission:
    topic: str  # "orders" | "payments"
    key: bytes
    value: bytes
    dirt: Dirt
    event: Event | None  # None when malformed
    emit_ms: int  # notional send time (sim clock) == produced_at of a valid event
    reason: str | None = None  # intended dead-letter reason (malformed or late)


@dataclass(frozen=True)
class Scenario:
    config: ScenarioConfig
    emissions: tuple[Emission, ...]

    def topic(self, kind: str) -> list[Emission]:
        return [e for e in self.emissions if e.topic == kind]


@dataclass(frozen=True)
class Catalog:
    customers: tuple[str, ...]
    stores: tuple[str, ...]
    products: tuple[tuple[str, str, int], ...]  # product_id, category, unit_price

    @classmethod
    def build(cls, seed: int) -> Catalog:
        fake = Faker()
        fake.seed_instance(seed)
        customers = tuple(f"c-{fake.bothify('########')}" for _ in range(500))
        stores = tuple(f"s-{fake.city().lower().replace(' ', '-')}-{n:02d}" for n in range(20))
        products = tuple(
            (f"sku-{fake.ean8()}", fake.random_element(CATEGORIES), fake.random_int(99, 19_999))
            for _ in range(200)
        )
        return cls(customers, stores, products)


class _Builder:
    def __init__(self, cfg: ScenarioConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.catalog = Catalog.build(cfg.seed)
        self.out: list[tuple[int, int, Emission]] = []
        self.late: list[tuple[str, str]] = []  # (topic, order_id)
        self.n_payments = 0
        self.dup_max_ms = max(1, min(5000, int(3000 / cfg.event_rate)))  # a few events later

    def add(self, em: Emission) -> None:
        self.out.append((em.emit_ms, len(self.out), em))

    def payment_id(self) -> str:
        self.n_payments += 1
        return f"p-{self.cfg.prefix}-{self.n_payments:07d}"

    def order(self, order_id: str, ts: int, emit_ms: int) -> Order:
        r, c = self.rng, self.catalog
        items = tuple(
            Item(pid, cat, r.randint(1, 3), price)
            for pid, cat, price in r.sample(c.products, r.randint(1, 4))
        )
        amount = sum(i.quantity * i.unit_price for i in items)
        store = r.choice(c.stores)
        return Order(
            order_id,
            r.choice(c.customers),
            store,
            r.choice(_CHANNELS),
            items,
            amount,
            self.cfg.currency,
            ts,
            emit_ms,
        )

    def payment(self, order_id: str, amount: int, ts: int, emit_ms: int) -> Payment:
        method = self.rng.choice(_METHODS)
        return Payment(self.payment_id(), order_id, method, amount, self.cfg.currency, ts, emit_ms)

    def emit(self, ev: Event, dirt: Dirt, dup_p: float) -> None:
        kind = serde.kind_of(ev)
        em = Emission(kind, serde.key_of(ev.order_id), serde.encode(ev), dirt, ev, ev.produced_at)
        self.add(em)
        if self.rng.random() < dup_p:
            later = em.emit_ms + self.rng.randint(1, self.dup_max_ms)
            self.add(Emission(kind, em.key, em.value, Dirt.DUPLICATE, ev, later))

    def jitter(self) -> int:
        return self.rng.randint(0, EMIT_JITTER_MS)

    def slot(self, i: int, ts: int) -> None:
        cfg, r, rules = self.cfg, self.rng, self.cfg.rules
        order_id = f"o-{cfg.prefix}-{i:07d}"
        u = r.random()
        if u < cfg.p_unpaid:
            fate = Fate.UNPAID
        elif u < cfg.p_unpaid + cfg.p_wrong_amount:
            fate = Fate.WRONG_AMOUNT
        elif u < cfg.p_unpaid + cfg.p_wrong_amount + cfg.p_split:
            fate = Fate.SPLIT
        else:
            fate = Fate.PAID
        early = r.random() < cfg.p_payment_before_order and fate is not Fate.UNPAID
        order_emit = ts + self.jitter()
        o = self.order(order_id, ts, order_emit)
        lo, hi = cfg.payment_delay_min_ms, cfg.payment_delay_max_ms
        if fate is Fate.SPLIT:
            hi = min(hi, rules.window_after_ms)
            lo = min(lo, hi)
            cut = r.randint(1, max(1, o.amount - 1))
            amounts = [cut, o.amount - cut]
        elif fate is Fate.WRONG_AMOUNT:
            off = r.randint(1, max(1, o.amount // 2))
            amounts = [o.amount - off if r.random() < 0.5 else o.amount + off]
        elif fate is Fate.UNPAID:
            amounts = []
        else:
            amounts = [o.amount]
        delays = sorted(r.randint(lo, hi) for _ in amounts)
        if early:
            delays[0] = r.randint(-rules.skew_before_ms, delays[0])
        dirt = Dirt.PAYMENT_BEFORE_ORDER if early else Dirt(fate.value)
        pay_emits = []
        for amount, delay in zip(amounts, delays, strict=True):
            pay_emit = ts + delay + self.jitter()
            pay_emits.append(pay_emit)
            p = self.payment(order_id, amount, ts + delay, pay_emit)
            self.emit(p, dirt, cfg.p_duplicate_payment)
        if early:
            # right after its first payment (or at its own time, if that payment came earlier)
            o = dataclasses.replace(o, produced_at=max(min(pay_emits) + 1, order_emit))
        self.emit(o, dirt, cfg.p_duplicate_order)
        if r.random() < cfg.p_orphan:
            delay = r.randint(cfg.payment_delay_min_ms, cfg.payment_delay_max_ms)
            amount = r.randint(99, 50_000)
            p = self.payment(f"o-{cfg.prefix}-x{i:07d}", amount, ts + delay, ts + delay + 1)
            self.emit(p, Dirt.ORPHAN, 0.0)
        if r.random() < cfg.p_late:
            if r.random() < 0.5:
                self.late.append((serde.ORDERS, f"o-{cfg.prefix}-l{i:07d}"))
            else:
                self.late.append((serde.PAYMENTS, order_id))
        if r.random() < cfg.p_malformed:
            self.malformed(i, ts)

    def malformed(self, i: int, ts: int) -> None:
        r = self.rng
        kind = r.choice(serde.KINDS)
        dirt = r.choice(MALFORMED)
        order_id = f"o-{self.cfg.prefix}-m{i:07d}"
        emit = ts + self.jitter()
        if kind == serde.ORDERS:
            base = serde.order_dict(self.order(order_id, ts, emit))
        else:
            amount = r.randint(99, 50_000)
            base = serde.payment_dict(self.payment(order_id, amount, ts, emit))
        value, why = corrupt(kind, base, dirt, r)
        self.add(Emission(kind, serde.key_of(order_id), value, dirt, None, emit, why))

    def place_late(self) -> None:
        times = {k: sorted(t for t, _, e in self.out if e.topic == k) for k in serde.KINDS}
        for kind, order_id in self.late:
            ts_list = times[kind] or times[serde.ORDERS] or [self.cfg.start_ms]
            emit = self.rng.randint(ts_list[len(ts_list) // 2] + 1, ts_list[-1] + 2)
            if kind == serde.ORDERS:
                ev: Event = self.order(order_id, self.cfg.late_ts, emit)
            else:
                amount = self.rng.randint(99, 50_000)
                ev = self.payment(order_id, amount, self.cfg.late_ts, emit)
            value = serde.encode(ev)
            key = serde.key_of(order_id)
            self.add(Emission(kind, key, value, Dirt.LATE, ev, emit, reason(Reason.LATE)))


def generate(cfg: ScenarioConfig) -> Scenario:
    b = _Builder(cfg)
    t = 0.0
    mean_gap_ms = 1000.0 / cfg.event_rate
    for i in range(cfg.n_orders):
        b.slot(i, cfg.start_ms + int(t))
        t += b.rng.expovariate(1.0 / mean_gap_ms)
    b.place_late()
    b.out.sort(key=lambda x: (x[0], x[1]))
    return Scenario(cfg, tuple(e for _, _, e in b.out))


def check_ordering(
    emissions: list[Emission] | tuple[Emission, ...], cfg: ScenarioConfig
) -> list[str]:
    """Violations of the ordering invariants (empty when all hold); see the module docstring.

    Also checks late events (event time `cfg.late_ts`, emitted after half of their topic's other
    emissions) and duplicates (an identical message sent at most 10 s of emission time before)."""
    problems: list[str] = []
    lateness = cfg.rules.allowed_lateness_ms
    for kind in serde.KINDS:
        mine = [e for e in emissions if e.topic == kind]
        n_other = sum(1 for e in mine if e.dirt is not Dirt.LATE)
        high: int | None = None
        seen: dict[bytes, int] = {}
        before = 0
        for pos, e in enumerate(mine):
            if e.dirt is Dirt.LATE:
                if e.event is None or e.event.event_ts != cfg.late_ts:
                    problems.append(f"{kind}[{pos}] late event with wrong event time")
                if before < n_other / 2:
                    problems.append(f"{kind}[{pos}] late event in the first half ({before})")
                continue
            before += 1
            if e.dirt is Dirt.DUPLICATE:
                first = seen.get(e.value)
                if first is None or e.emit_ms - first > 10_000:
                    problems.append(f"{kind}[{pos}] duplicate without a recent original")
            seen.setdefault(e.value, e.emit_ms)
            if e.event is None:
                continue
            ts = e.event.event_ts
            if high is not None and ts < high - lateness + DISORDER_MARGIN_MS:
                problems.append(f"{kind}[{pos}] ts={ts} too far behind max={high}")
            high = ts if high is None else max(high, ts)
    return problems
