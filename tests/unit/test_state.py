"""The reconciliation state step, table-driven, without Spark."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from contract.events import ORDER, PAYMENT
from contract.outputs import DEAD_LETTER, ORPHAN, OUTCOME
from contract.rules import Rules
from streaming.step import empty_state, step

MIN = 60_000
T0 = 1_767_225_600_000
RULES = Rules(window_after_ms=15 * MIN, skew_before_ms=2 * MIN, allowed_lateness_ms=15 * MIN)
DAY = 24 * 60 * MIN  # the default de-duplication horizon
_offsets = iter(range(10**9))


def order(oid: str, at_min: float, amount: int = 1000) -> tuple[Any, ...]:
    return (
        ORDER,
        oid,
        None,
        T0 + int(at_min * MIN),
        amount,
        "EUR",
        None,
        0,
        "orders",
        0,
        next(_offsets),
        '{"customer_id":"c1","channel":"web"}',
        oid.encode(),
        f'{{"order_id":"{oid}"}}'.encode(),
    )


def pay(pid: str, oid: str, at_min: float, amount: int = 1000) -> tuple[Any, ...]:
    return (
        PAYMENT,
        oid,
        pid,
        T0 + int(at_min * MIN),
        amount,
        "EUR",
        "card",
        0,
        "payments",
        0,
        next(_offsets),
        None,
        oid.encode(),
        b"{}",
    )


def wm(at_min: float) -> int:
    return T0 + int(at_min * MIN)


@dataclass
class Case:
    name: str
    batches: list[tuple[list[tuple[Any, ...]], float]]  # (events, watermark in minutes)
    outcomes: dict[str, tuple[str, bool, int, list[str]]]  # id -> status, final, paid, payments
    orphans: set[str] = field(default_factory=set)
    late: int = 0


CASES = [
    Case(
        "paid in full",
        [([order("o1", 0), pay("p1", "o1", 1)], -1e9)],
        {"o1": ("PAID", False, 1000, ["p1"])},
    ),
    Case(
        "payment before its order, separate batches",
        [([pay("p1", "o1", 1)], -1e9), ([order("o1", 0)], 0)],
        {"o1": ("PAID", False, 1000, ["p1"])},
    ),
    Case(
        "split payment sums",
        [([order("o1", 0), pay("a", "o1", 1, 400)], -1e9), ([pay("b", "o1", 3, 600)], 0)],
        {"o1": ("PAID", False, 1000, ["a", "b"])},
    ),
    Case(
        "under and over",
        [([order("u", 0), pay("pu", "u", 1, 900), order("v", 0), pay("pv", "v", 1, 1100)], -1e9)],
        {"u": ("UNDERPAID", False, 900, ["pu"]), "v": ("OVERPAID", False, 1100, ["pv"])},
    ),
    Case(
        "duplicate order and payment change nothing",
        [([order("o1", 0), order("o1", 0), pay("p1", "o1", 1), pay("p1", "o1", 1)], -1e9)],
        {"o1": ("PAID", False, 1000, ["p1"])},
    ),
    Case(
        "duplicate payment after the match",
        [([order("o1", 0), pay("p1", "o1", 1)], -1e9), ([pay("p1", "o1", 1)], 0)],
        {"o1": ("PAID", False, 1000, ["p1"])},
    ),
    Case(
        "window closes unpaid by watermark",
        [([order("o1", 0)], -1e9), ([], 15.01)],
        {"o1": ("UNPAID", True, 0, [])},
    ),
    Case(
        "window not closed at exactly the close time",
        [([order("o1", 0)], -1e9), ([], 15)],
        {"o1": ("PENDING", False, 0, [])},
    ),
    Case(
        "paid order becomes final",
        [([order("o1", 0), pay("p1", "o1", 14)], -1e9), ([], 16)],
        {"o1": ("PAID", True, 1000, ["p1"])},
    ),
    Case(
        "payment after the window is an orphan",
        [([order("o1", 0), pay("p1", "o1", 16)], -1e9), ([], 30)],
        {"o1": ("UNPAID", True, 0, [])},
        orphans={"p1"},
    ),
    Case(
        "payment within the skew before the order matches",
        [([pay("p1", "o1", 0), order("o1", 1.5)], -1e9)],
        {"o1": ("PAID", False, 1000, ["p1"])},
    ),
    Case(
        "payment beyond the skew before the order does not",
        [([pay("p1", "o1", 0), order("o1", 2.5)], -1e9), ([], 2.1)],
        {"o1": ("PENDING", False, 0, [])},
        orphans={"p1"},
    ),
    Case(
        "orphan payment, no order ever",
        [([pay("p1", "ghost", 0)], -1e9), ([], 2.01)],
        {},
        orphans={"p1"},
    ),
    Case(
        "orphan not decided before its window closes",
        [([pay("p1", "ghost", 0)], -1e9), ([], 2)],
        {},
    ),
    Case(
        "late order and late payment are dead letters",
        [([order("o1", 30)], -1e9), ([order("old", 0), pay("pl", "o1", 10)], 15)],
        {"o1": ("PENDING", False, 0, [])},
        late=2,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_step(case: Case) -> None:
    state = empty_state()
    docs: dict[str, dict[str, Any]] = {}
    orphans: set[str] = set()
    late = 0
    for events, wm_min in case.batches:
        res = step(state, events, int(wm(wm_min)) if wm_min > -1e8 else -1, RULES)
        for out in res.outputs:
            if out.kind == OUTCOME:
                docs[out.doc_id] = out.doc
            elif out.kind == ORPHAN:
                orphans.add(out.doc_id)
            elif out.kind == DEAD_LETTER:
                assert out.doc["reason"] == "late"
                late += 1
    got = {k: (d["status"], d["final"], d["paid"], d["payment_ids"]) for k, d in docs.items()}
    assert got == case.outcomes
    assert orphans == case.orphans
    assert late == case.late


def test_closed_orders_leave_state_and_timer_follows_the_earliest() -> None:
    state = empty_state()
    res = step(state, [order("a", 0), order("b", 5), pay("p", "x", 1)], -1, RULES)
    assert res.next_close_ts == wm(3)  # the orphan window of p (1 min + 2 min skew) closes first
    res = step(state, [], wm(16), RULES)
    assert set(state["orders"]) == {"b"} and not state["pending"]
    assert res.next_close_ts == wm(20)
    step(state, [], wm(21), RULES)
    assert not state["orders"] and not state["pending"]
    # what closed is remembered for the de-duplication horizon after its close, then forgotten
    assert state["closed"] == {
        "a": [wm(15) + DAY, True, []],
        "b": [wm(20) + DAY, True, []],
        "x": [wm(3) + DAY, False, ["p"]],
    }
    res = step(state, [], wm(15) + DAY + 1, RULES)
    assert set(state["closed"]) == {"b"} and res.next_close_ts == wm(20) + DAY
    step(state, [], wm(20) + DAY + 1, RULES)
    assert state == empty_state()


def test_copies_after_the_close_are_duplicates_within_the_horizon() -> None:
    """A copy of a closed order (same id, other content, event time above the watermark) or of
    its matched or orphaned payment changes nothing; after the horizon it would count as new."""
    state = empty_state()
    step(state, [order("o1", 0), pay("p1", "o1", 1, 1000), pay("px", "o9", 1)], -1, RULES)
    res = step(state, [], wm(16), RULES)  # o1 final PAID; px orphaned
    assert {(o.kind, o.doc_id) for o in res.outputs} == {(OUTCOME, "o1"), (ORPHAN, "px")}
    copies = [order("o1", 40, amount=7), pay("p1", "o1", 41, 5), pay("px", "o9", 42, 5)]
    res = step(state, copies, wm(30), RULES)
    assert res.outputs == [] and res.stats.duplicates == 3
    assert not state["orders"] and not state["pending"]
    # a new payment id for the closed order is no copy: it waits, then is an orphan
    res = step(state, [pay("p2", "o1", 45)], wm(30), RULES)
    assert res.stats.duplicates == 0 and "p2" in state["pending"]["o1"]
    # past the horizon the ids are forgotten (p2, orphaned meanwhile, is still remembered)
    step(state, [], wm(16) + DAY + 1, RULES)
    assert state["closed"]["o1"] == [wm(47) + DAY, False, ["p2"]]
    res = step(state, [order("o1", 24 * 60 + 40)], wm(16) + DAY + 1, RULES)
    assert res.stats.duplicates == 0 and "o1" in state["orders"]


def test_replaying_a_batch_from_the_same_state_gives_the_same_outputs() -> None:
    import copy

    batch = [order("o1", 0), pay("a", "o1", 1, 300), pay("b", "o1", 2, 300), pay("z", "q", 3)]
    s1, s2 = empty_state(), empty_state()
    step(s1, [order("o0", 0)], -1, RULES)
    step(s2, [order("o0", 0)], -1, RULES)
    snapshot = copy.deepcopy(s1)
    r1 = step(s1, batch, wm(1), RULES)
    r2 = step(s2, batch, wm(1), RULES)
    assert [(o.kind, o.doc_id, o.doc) for o in r1.outputs] == [
        (o.kind, o.doc_id, o.doc) for o in r2.outputs
    ]
    assert s1 == s2 != snapshot
