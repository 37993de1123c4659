"""Accepted values reach MongoDB exactly, through the real job (Kafka -> Spark -> FerretDB).

Amounts at the edges of the documented range, split payments whose sums pass 2**53 and 64 bits,
a minute whose revenue leaves 64 bits, and timestamps and currencies written with digits and
letters from outside ASCII, produced beside a dirty scenario: the stored values are exactly the
ones sent (or their sums), each refused message is a dead letter with its reason, and the
scenario and every per-minute figure still equal the ground truth, which applies the same
rules (contract/wire.py)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest

from conf.settings import Settings
from contract import minutely
from contract.events import MAX_AMOUNT, Order, Payment
from contract.integers import INT64, stored_int
from producers import serde
from producers.truth import compute_truth
from scripts.check_truth import differences
from sinks.mongo_io import MongoSink
from tests.integration.helpers import (
    assert_figures_equal_truth,
    create_topics,
    docs,
    drain,
    isolated,
)
from tests.integration.test_hostile_input import Record, _all_docs, _append, _produce, _scenario
from tests.integration.test_reconcile_e2e import small_batches

pytestmark = pytest.mark.integration
MANY = 1025  # the fewest maximal amounts whose sum leaves 64 bits


def _text(d: dict[str, Any]) -> bytes:
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()


def _pair(oid: str, at: int, amount: int, pays: list[int], currency: str = "EUR") -> list[Record]:
    """An order of `amount` and its payments of `pays`, all at `at`."""
    order = serde.order_dict(Order(oid, "c-1", "s-1", "web", (), amount, currency, at, at))
    out: list[Record] = [(serde.ORDERS, oid.encode(), _text(order))]
    for i, a in enumerate(pays):
        pay = serde.payment_dict(Payment(f"{oid}-p{i}", oid, "card", a, currency, at, at))
        out.append((serde.PAYMENTS, oid.encode(), _text(pay)))
    return out


def _foreign(text: str, digits: str) -> str:
    return "".join(digits[int(c)] if c.isascii() and c.isdigit() else c for c in text)


def edge_records(at: int) -> tuple[list[Record], Counter[tuple[str, str]]]:
    """The edge cases, and the dead letters (order_id, reason) they must give."""
    records: list[Record] = []
    dead: Counter[tuple[str, str]] = Counter()
    records += _pair("x-max", at, MAX_AMOUNT, [MAX_AMOUNT])
    records += _pair("x-split53", at, MAX_AMOUNT, [2**52 + 1, 2**52])  # paid 2**53 + 1
    records += _pair("x-many", at, MAX_AMOUNT, [MAX_AMOUNT] * MANY, currency="XTS")
    for n, amount in enumerate((2**53, 2**53 + 1, 2**62, 2**63 - 1)):
        records += _pair(f"x-over{n}", at, amount, [amount])
        dead[(f"x-over{n}", "out_of_range:amount")] += 2
    order = serde.order_dict(Order("x-text", "c-1", "s-1", "web", (), 100, "EUR", at, at))
    pay = serde.payment_dict(Payment("x-text-p", "x-text", "card", 100, "EUR", at, at))
    for digits, name in (("０１２３４５６７８９", "order_ts"), ("٠١٢٣٤٥٦٧٨٩", "produced_at"),
                         ("०१२३४५६७८९", "order_ts"), ("⁰¹²³⁴⁵⁶⁷⁸⁹", "produced_at")):  # fmt: skip
        foreign = {**order, name: _foreign(order[name], digits)}
        records.append((serde.ORDERS, b"x-text", _text(foreign)))
        dead[("x-text", f"wrong_type:{name}")] += 1
    records.append((serde.PAYMENTS, b"x-text", _text({**pay, "payment_ts": _foreign(
        pay["payment_ts"], "０１２３４５６７８９")})))  # fmt: skip
    dead[("x-text", "wrong_type:payment_ts")] += 1
    for currency in ("ＥＵＲ", "\u212aES", "eur", "\u017fEK"):
        records.append((serde.PAYMENTS, b"x-text", _text({**pay, "currency": currency})))
        records.append((serde.ORDERS, b"x-text", _text({**order, "currency": currency})))
        dead[("x-text", "invalid_value:currency")] += 2
    return records, dead


@pytest.fixture(scope="module")
def exact_run(spark: Any, settings: Settings, tmp_path_factory: Any) -> dict[str, Any]:
    name = f"exact-{uuid.uuid4().hex[:8]}"
    s = small_batches(isolated(settings, name, str(tmp_path_factory.mktemp(name) / "cp")))
    sc = _scenario(s)  # as test_hostile_input: enough batches for its late events to be late
    at = max(e.event.event_ts for e in sc.emissions if e.event is not None) - 60_000
    edges, dead = edge_records(at - at % minutely.MINUTE_MS + 1_000)  # one minute for them all
    truth = compute_truth(_append(sc, edges), s.topics.orders, s.topics.payments).to_json()
    create_topics(s)
    _produce(s, [(e.topic, e.key, e.value) for e in sc.emissions])
    drain(spark, s, MongoSink(s))
    # after the scenario, so that the 1,025 payments on one partition cannot change the order
    # in which the scenario's partitions are read (its late events are judged by that order)
    _produce(s, edges)
    drain(spark, s, MongoSink(s))
    outcomes, dead_docs = _all_docs(s)
    return {"s": s, "truth": truth, "outcomes": {d["_id"]: d for d in outcomes},
            "dead_docs": dead_docs, "dead": dead, "at": at}  # fmt: skip


def test_the_scenario_beside_the_edges_equals_its_truth(exact_run: dict[str, Any]) -> None:
    r = exact_run
    diff = differences(r["truth"], list(r["outcomes"].values()), r["dead_docs"], limit=40)
    assert diff == [], "\n".join(diff)
    assert_figures_equal_truth(r["s"], r["truth"])


def test_amounts_and_sums_are_stored_exactly(exact_run: dict[str, Any]) -> None:
    o = exact_run["outcomes"]
    top = o["x-max"]
    assert (top["amount"], top["paid"], top["balance"]) == (MAX_AMOUNT, MAX_AMOUNT, 0)
    assert o["x-max"]["status"] == "PAID" and isinstance(top["amount"], int)
    assert o["x-split53"]["paid"] == 2**53 + 1 and o["x-split53"]["balance"] == -2
    assert [p["amount"] for p in o["x-split53"]["payments"]] == [2**52 + 1, 2**52]
    many = o["x-many"]
    assert many["paid"] == str(MANY * MAX_AMOUNT) and stored_int(many["paid"]) > INT64[1]
    assert many["balance"] == MAX_AMOUNT - MANY * MAX_AMOUNT and many["status"] == "OVERPAID"
    assert len(many["payment_ids"]) == MANY


def test_a_minute_whose_revenue_leaves_64_bits_is_stored_exactly(exact_run: dict[str, Any]) -> None:
    s, at = exact_run["s"], exact_run["at"]
    figures = docs(s, s.mongo.minutely_collection)
    minute = at - at % minutely.MINUTE_MS
    paid = figures[minutely.doc_id((minute, minutely.PAYMENTS, minutely.ALL, "XTS"))]
    assert paid["count"] == MANY and paid["amount"] == str(MANY * MAX_AMOUNT)
    ordered = figures[minutely.doc_id((minute, minutely.ORDERS, minutely.ALL, "XTS"))]
    assert (ordered["count"], ordered["amount"]) == (1, MAX_AMOUNT)


def test_each_refused_edge_is_a_dead_letter_with_its_reason(exact_run: dict[str, Any]) -> None:
    got = Counter((d["key"], d["reason"]) for d in exact_run["dead_docs"]
                  if str(d["key"]).startswith("x-"))  # fmt: skip
    assert got == exact_run["dead"]
    assert not any(k.startswith("x-over") or k == "x-text" for k in exact_run["outcomes"])
