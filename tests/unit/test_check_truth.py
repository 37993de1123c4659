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
DEAD = [{"topic": "t", "reason": "late", "raw_value": b"{}"}]


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


def test_divergence_counts_each_kind_of_departure() -> None:
    from scripts.check_truth import divergence

    assert divergence(TRUTH, GOOD, DEAD) == {}
    got = divergence(
        TRUTH,
        [{**GOOD[0], "final": False}, {**GOOD[0], "_id": "o2"}],  # o1 not final; o2 extra
        [{**DEAD[0], "reason": "invalid_json"}],
    )
    assert got == {
        "order PAID final written as PAID": 1,
        "order not in truth": 1,
        "orphan missing": 1,
        "dead letter missing (late)": 1,
        "dead letter not in truth (invalid_json)": 1,
    }
    assert divergence(TRUTH, [{**GOOD[0], "paid": 4}, GOOD[1]], DEAD) == {
        "order amount/paid/payments differ": 1
    }
    assert divergence(TRUTH, [GOOD[1]], DEAD) == {"order missing (truth PAID final)": 1}
