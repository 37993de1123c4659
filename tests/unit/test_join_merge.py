"""The join shape's pure merge (streaming/join_shape.merge_rows): join rows plus the stored
documents -> the documents to write."""

from __future__ import annotations

from typing import Any

from streaming.join_shape import COLUMNS, LONE_ORDER, LONE_PAYMENT, MALFORMED, PAIR, merge_rows
from streaming.state import DEAD_LETTER, ORPHAN, OUTCOME


def row(kind: str, **values: Any) -> dict[str, Any]:
    r = dict.fromkeys(COLUMNS)
    r["kind"] = kind
    r.update(values)
    return r


ORDER = {"o_order_id": "o1", "o_ts": 1_000, "o_amount": 500, "o_currency": "EUR",
         "o_raw": '{"order_id":"o1"}', "o_kafka_ts": 1_100}  # fmt: skip


def pay(pid: str, amount: int, ts: int = 2_000) -> dict[str, Any]:
    return {"p_order_id": "o1", "p_payment_id": pid, "p_ts": ts, "p_amount": amount,
            "p_method": "card", "p_currency": "EUR", "p_kafka_ts": ts + 50}  # fmt: skip


def test_split_payments_sum_and_first_write_carries_the_order() -> None:
    (out,) = merge_rows(
        [row(PAIR, **ORDER, **pay("p1", 200)), row(PAIR, **ORDER, **pay("p2", 300))], {}
    )
    assert (out.kind, out.doc_id, out.raw) == (OUTCOME, "o1", '{"order_id":"o1"}')
    assert (out.doc["status"], out.doc["paid"], out.doc["final"]) == ("PAID", 500, False)
    assert out.doc["payment_ids"] == ["p1", "p2"] and out.kafka_ts == 2_050


def test_stored_document_is_merged_by_payment_id() -> None:
    (first,) = merge_rows([row(PAIR, **ORDER, **pay("p1", 200))], {})
    stored = {"o1": {**first.doc, "_id": "o1"}}
    # a replay of p1 adds nothing; a new p2 adds to what is stored; the raw order is not resent
    (out,) = merge_rows(
        [row(PAIR, **ORDER, **pay("p1", 200)), row(PAIR, **ORDER, **pay("p2", 400, 3_000))], stored
    )
    assert (out.doc["status"], out.doc["paid"], out.raw) == ("OVERPAID", 600, None)
    assert out.doc["payment_ids"] == ["p1", "p2"]


def test_lone_order_is_final_unpaid_lone_payment_an_orphan() -> None:
    orphan, order = merge_rows([row(LONE_ORDER, **ORDER), row(LONE_PAYMENT, **pay("p9", 70))], {})
    assert (orphan.kind, orphan.doc_id, orphan.doc["status"]) == (ORPHAN, "p9", "ORPHAN_PAYMENT")
    assert orphan.doc["final"] is True and orphan.doc["order_id"] == "o1"
    assert (order.doc["status"], order.doc["final"], order.doc["paid"]) == ("UNPAID", True, 0)


def test_malformed_row_is_a_dead_letter_keyed_by_offset() -> None:
    (dl,) = merge_rows([row(MALFORMED, d_topic="orders", d_partition=2, d_offset=9, d_key="k",
                            d_reason="invalid_json", d_raw="{", d_kafka_ts=5)], {})  # fmt: skip
    assert (dl.kind, dl.doc_id, dl.raw) == (DEAD_LETTER, "orders:2:9", "{")
    assert dl.doc["reason"] == "invalid_json"
