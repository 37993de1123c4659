"""A payment pays one order: `reject_reused` (streaming/frames.py) and the ground truth agree on
which use of a payment_id is refused. The registry here is a dict with the same contract as
sinks.mongo_io.PaymentClaims (tested against FerretDB in tests/integration)."""

from __future__ import annotations

from collections.abc import Sequence

from contract.events import Order, Payment
from producers import serde
from producers.dirt import Dirt
from producers.scenario import Emission, Scenario, ScenarioConfig
from producers.truth import compute_truth
from streaming.frames import reject_reused
from tests.unit.test_state import RULES, T0, order, pay, wm


def registry() -> tuple[dict[str, str], object]:
    owners: dict[str, str] = {}

    def claims(pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        return {(p, o) for p, o in pairs if owners.setdefault(p, o) != o}

    return owners, claims


def test_second_order_using_a_payment_id_is_refused_copies_are_not() -> None:
    owners, claims = registry()
    dead, kept = reject_reused([order("o1", 0), pay("p1", "o1", 1)], -1, RULES, claims)
    assert dead == [] and len(kept) == 2 and owners == {"p1": "o1"}
    batch = [pay("p1", "o2", 2), pay("p1", "o1", 3)]  # a reuse, and a plain copy
    dead, kept = reject_reused(batch, -1, RULES, claims)
    assert [(d.doc["reason"], d.raw_value) for d in dead] == [("payment_id_reused", b"{}")]
    assert kept == [batch[1]]  # the copy goes on, to be a duplicate in the step


def test_within_one_call_the_earliest_event_time_claims_first() -> None:
    _, claims = registry()
    batch = [pay("p1", "o2", 5), pay("p1", "o1", 2)]
    dead, kept = reject_reused(batch, -1, RULES, claims)
    assert [d.doc["event_ts"] for d in dead] == [batch[0][3]] and kept == [batch[1]]


def test_late_payments_claim_nothing_and_no_registry_checks_nothing() -> None:
    owners, claims = registry()
    dead, kept = reject_reused([pay("p1", "o1", 0)], wm(10), RULES, claims)
    assert owners == {} and dead == [] and len(kept) == 1
    batch = [pay("p1", "o1", 0), pay("p1", "o2", 0)]
    assert reject_reused(batch, -1, RULES, None) == ([], batch)


def test_truth_refuses_the_second_order_of_a_payment_id() -> None:
    o1 = Order("o1", "c", "s", "web", (), 100, "EUR", T0, T0)
    o2 = Order("o2", "c", "s", "web", (), 100, "EUR", T0, T0)
    p1 = Payment("p1", "o1", "card", 100, "EUR", T0 + 1, T0 + 1)
    reuse = Payment("p1", "o2", "card", 100, "EUR", T0 + 2, T0 + 2)
    em = tuple(
        Emission(serde.kind_of(e), e.order_id.encode(), serde.encode(e), Dirt.CLEAN, e, T0)
        for e in (o1, o2, p1, reuse, p1)
    )
    truth = compute_truth(Scenario(ScenarioConfig(n_orders=0), em))
    assert {o.order_id: o.payment_ids for o in truth.orders} == {"o1": ["p1"], "o2": []}
    assert [d.reason for d in truth.dead_letters] == ["payment_id_reused"]
