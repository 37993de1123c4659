"""The sink's pure plan: which rows become inserts, what each write sets, and that the insert
and its fallback upsert describe the same document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract.outputs import DEAD_LETTER, ORPHAN, OUTCOME
from sinks.documents import Row, plan

AT = 1_700_000_000_000


def apply_upsert(update: dict[str, Any], doc_id: str) -> dict[str, Any]:
    """What an upsert of a missing document creates (the `$set` and `$min` of a new doc)."""
    doc: dict[str, Any] = {"_id": doc_id}
    for op in ("$set", "$min"):
        for path, value in update.get(op, {}).items():
            head, _, leaf = path.rpartition(".")
            (doc.setdefault(head, {}) if head else doc)[leaf] = value
    return doc


def rows() -> list[Row]:
    first = {"order_id": "o1", "status": "PENDING", "final": False, "paid": 0,
             "order": {"customer_id": "c1"}}  # fmt: skip
    later = {"order_id": "o2", "status": "PAID", "final": False, "paid": 5}
    orphan = {"payment_id": "p9", "status": "ORPHAN_PAYMENT", "final": True}
    dead = {"topic": "orders", "partition": 0, "offset": 7, "reason": "unparseable: x"}
    return [
        Row(OUTCOME, "o1", json.dumps(first), AT - 250),
        Row(OUTCOME, "o2", json.dumps(later), AT - 40),
        Row(ORPHAN, "p9", json.dumps(orphan), None),
        Row(DEAD_LETTER, "orders:0:7", json.dumps(dead), AT - 10, b"o\xff", b"{bad\x00"),
    ]


def test_first_emissions_are_inserts_later_ones_upserts() -> None:
    p = plan(rows(), AT)
    assert [(w.doc_id, w.insert is not None) for w in p.outcomes] == [
        ("o1", True),  # first outcome: carries the order's own fields
        ("o2", False),  # a later change of an order already written
    ]
    assert [(w.doc_id, w.insert is not None) for w in p.orphans] == [("p9", True)]  # once
    assert [(w.doc_id, w.insert is not None) for w in p.dead_letters] == [("orders:0:7", True)]
    assert p.counts == {OUTCOME: 2, ORPHAN: 1, DEAD_LETTER: 1, "reason:unparseable": 1}


@pytest.mark.parametrize("which", ["outcomes", "orphans"])
def test_insert_equals_what_its_fallback_upsert_creates(which: str) -> None:
    w = getattr(plan(rows(), AT), which)[0]
    assert w.insert == apply_upsert(w.upsert._doc, w.doc_id)
    assert w.upsert._filter == {"_id": w.doc_id} and w.upsert._upsert is True


def test_outcome_fields_timing_and_order_fields() -> None:
    first, later = plan(rows(), AT).outcomes
    assert first.insert is not None
    assert first.insert["order"] == {"customer_id": "c1"}
    assert first.insert["timing"] == {"first_written_at": AT, "latency_ms": 250}
    assert first.insert["kind"] == OUTCOME and first.insert["status"] == "PENDING"
    # a later write sets the full state and can only lower the processing-time fields
    assert later.upsert._doc["$set"]["status"] == "PAID"
    assert later.upsert._doc["$set"]["paid"] == 5
    assert later.upsert._doc["$min"] == {"timing.first_written_at": AT, "timing.latency_ms": 40}
    assert "$inc" not in later.upsert._doc


def test_dead_letter_keeps_raw_key_and_value_bytes_and_first_time() -> None:
    (d,) = plan(rows(), AT).dead_letters
    want = {"_id": "orders:0:7", "topic": "orders", "partition": 0, "offset": 7,
            "reason": "unparseable: x", "raw_key": b"o\xff", "raw_value": b"{bad\x00",
            "dead_lettered_at": AT}  # fmt: skip
    assert d.insert == want
    assert d.insert == apply_upsert(d.upsert._doc, d.doc_id)


def test_fingerprint_depends_on_content_not_time() -> None:
    assert plan(rows(), AT).fingerprint == plan(rows(), AT + 5).fingerprint
    changed = rows()
    changed[1] = Row(OUTCOME, "o2", changed[1].doc.replace("PAID", "OVERPAID"), AT)
    assert plan(changed, AT).fingerprint != plan(rows(), AT).fingerprint


def test_fingerprint_does_not_depend_on_row_order() -> None:
    assert plan(rows()[::-1], AT).fingerprint == plan(rows(), AT).fingerprint


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown output kind"):
        plan([Row("bogus", "x", "{}", None)], AT)
