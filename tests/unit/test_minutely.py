"""The per-minute figures: what the state step counts, and how the sink folds batches into
documents that a re-run batch cannot count twice. Pure: no Spark, no MongoDB."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from contract import minutely as mn
from sinks.live_docs import fold, keys_of, lag_of, status_doc
from streaming.step import empty_state, step
from tests.unit.test_state import MIN, RULES, T0, order, pay, wm

EUR = "EUR"


def figures(*batches: tuple[list[tuple[Any, ...]], int]) -> mn.Tally:
    """The step's tallies over `batches` of (events, watermark), summed."""
    state, total = empty_state(), {}
    for events, watermark in batches:
        mn.merge(total, step(state, events, watermark, RULES).tally)
    return total


def test_an_accepted_order_and_payment_count_in_their_own_minutes() -> None:
    got = figures(([order("o1", 0, 1000), pay("p1", "o1", 1.5, 400)], -1))
    assert got == {
        (T0, mn.ORDERS, "all", EUR): [1, 1000],
        (T0, mn.ORDERS, "channel=web", EUR): [1, 1000],
        (T0 + MIN, mn.PAYMENTS, "all", EUR): [1, 400],
        (T0 + MIN, mn.PAYMENTS, "method=card", EUR): [1, 400],
    }


def test_duplicates_and_late_events_add_nothing() -> None:
    once = figures(([order("o1", 20), pay("p1", "o1", 21)], -1))
    again = figures(
        ([order("o1", 20), pay("p1", "o1", 21)], -1),
        ([order("o1", 20), pay("p1", "o1", 21), order("o0", 0), pay("p0", "o0", 1)], wm(5)),
    )
    assert again == once


def test_a_closed_order_counts_at_its_window_close_with_status_and_balance() -> None:
    got = figures(([order("o1", 0, 1000), pay("p1", "o1", 1, 600)], -1), ([], wm(16)))
    close = T0 + 15 * MIN
    assert got[(close, mn.OUTCOMES, "status=UNDERPAID", EUR)] == [1, 1000, 600, 400]
    assert got[(close, mn.MATCH, "all", "")] == [1, 0]


def test_an_orphan_counts_at_its_close() -> None:
    got = figures(([pay("px", "o9", 3, 250)], -1), ([], wm(6)))
    close = T0 + 5 * MIN
    assert got[(close, mn.ORPHANS, "all", EUR)] == [1, 250]
    assert got[(close, mn.MATCH, "all", "")] == [0, 1]
    assert got[(T0 + 3 * MIN, mn.PAYMENTS, "method=card", EUR)] == [1, 250]


KEY = (T0, mn.ORDERS, "all", EUR)


def docs_by_id(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["_id"]: d for d in docs}


def test_fold_adds_batches_and_a_rerun_counts_once() -> None:
    b1 = docs_by_id(fold({}, {KEY: [2, 300]}, {}, "cp:1", None, 0))
    b2 = docs_by_id(fold(b1, {KEY: [1, 50]}, {}, "cp:2", None, 0))
    rerun = docs_by_id(fold(b2, {KEY: [1, 50]}, {}, "cp:2", None, 0))
    doc = rerun[mn.doc_id(KEY)]
    assert (doc["count"], doc["amount"], doc["prev"]) == (3, 350, {"count": 2, "amount": 300})
    assert rerun == b2


def test_fold_latency_histograms_and_percentiles() -> None:
    hist = {T0: Counter({100: 9, 140: 1})}
    first = docs_by_id(fold({}, {}, hist, "cp:1", None, 0))
    again = docs_by_id(fold(first, {}, hist, "cp:2", None, 0))
    doc = again[mn.doc_id((T0, mn.LATENCY, "all", ""))]
    assert doc["count"] == 20 and doc["hist"] == {"100": 18, "140": 2}
    assert doc["p50_ms"] < doc["p99_ms"]
    assert keys_of({}, hist) == [(T0, mn.LATENCY, "all", "")]


@pytest.mark.parametrize(
    ("metric", "watermark", "final"),
    [
        (mn.ORDERS, None, False),
        (mn.ORDERS, T0 + MIN - 1, False),
        (mn.ORDERS, T0 + MIN, True),
        (mn.DEAD_LETTERS, T0 + 10 * MIN, False),  # by Kafka time: never marked final
    ],
)
def test_final_when_the_watermark_passed_the_minute(
    metric: str, watermark: int | None, final: bool
) -> None:
    key = (T0, metric, "all", "")
    doc = fold({}, {key: [1] * len(mn.VALUES[metric])}, {}, "cp:1", watermark, 0)[0]
    assert doc["final"] is final


def test_match_rate() -> None:
    doc = fold({}, {(T0, mn.MATCH, "all", ""): [3, 1]}, {}, "cp:1", None, 0)[0]
    assert doc["rate"] == 0.75 and mn.match_rate(0, 0) is None


PROGRESS = {
    "name": "reconcile",
    "batchId": 7,
    "timestamp": "2026-11-22T13:40:01.123Z",
    "eventTime": {"watermark": "2026-11-22T13:25:00.000Z"},
    "inputRowsPerSecond": 10.0,
    "processedRowsPerSecond": 20.0,
    "durationMs": {"triggerExecution": 1500},
    "stateOperators": [{"numRowsTotal": 42}],
    "sources": [
        {"endOffset": {"orders": {"0": 10, "1": 5}}, "latestOffset": {"orders": {"0": 12, "1": 5}}},
        {"endOffset": '{"payments":{"0":3}}', "latestOffset": None},
    ],
}


def test_lag_and_status_from_a_progress_report() -> None:
    lag = lag_of(PROGRESS)
    assert lag == {("orders", 0): (10, 12), ("orders", 1): (5, 5), ("payments", 0): (3, 3)}
    doc = status_doc(PROGRESS, lag)
    assert (doc["batch_id"], doc["lag"], doc["state_rows"], doc["batch_s"]) == (7, 2, 42, 1.5)
    assert doc["watermark"].isoformat() == "2026-11-22T13:25:00+00:00"
    assert doc["offsets"][0] == {"topic": "orders", "partition": 0, "end": 10, "latest": 12}
