"""The MongoDB-vs-truth comparison the end-to-end tests rely on is not vacuous."""

from scripts.check_truth import differences

TRUTH = {
    "orders": [
        {
            "order_id": "o1",
            "status": "PAID",
            "final": True,
            "amount": 5,
            "paid": 5,
            "payment_ids": ["p2", "p1"],
        }
    ],
    "orphans": [
        {"payment_id": "p9", "order_id": "x", "amount": 3, "final": True},
        {"payment_id": "p8", "order_id": "y", "amount": 3, "final": False},
    ],
    "dead_letters": [{"topic": "t", "key": None, "reason": "late", "value": "{}"}],
}
GOOD = [
    {
        "_id": "o1",
        "status": "PAID",
        "final": True,
        "amount": 5,
        "paid": 5,
        "payment_ids": ["p1", "p2"],
    },
    {"_id": "p9", "status": "ORPHAN_PAYMENT", "order_id": "x", "amount": 3},
]
DEAD = [{"topic": "t", "reason": "late", "raw": "{}"}]


def test_equal_documents_have_no_differences() -> None:
    assert differences(TRUTH, GOOD, DEAD) == []


def test_each_kind_of_difference_is_reported() -> None:
    assert differences(TRUTH, [{**GOOD[0], "paid": 4}, GOOD[1]], DEAD)
    assert differences(TRUTH, [{**GOOD[0], "final": False}, GOOD[1]], DEAD)
    assert differences(TRUTH, [GOOD[0]], DEAD)  # orphan missing
    assert differences(TRUTH, [*GOOD, {**GOOD[0], "_id": "o2"}], DEAD)  # one too many
    assert differences(TRUTH, GOOD, [])  # dead letter missing
    assert differences(TRUTH, GOOD, DEAD + DEAD)  # dead letter twice
    assert differences(TRUTH, GOOD, [{**DEAD[0], "reason": "invalid_json"}])
