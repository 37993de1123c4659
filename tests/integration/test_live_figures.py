"""The per-minute figures' writer against the real MongoDB-protocol server: a batch counts once
whether it is written again by the same driver or by a restarted one, and the sweep marks final
exactly the minutes a watermark has passed."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from conf.settings import Settings
from contract import minutely as mn
from sinks.batch_stats import BatchStats, PartitionStats
from sinks.live_io import LiveFigures
from tests.integration.helpers import mongo_db

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000
MIN = mn.MINUTE_MS


def batch(batch_id: int, tally: mn.Tally, watermark: int | None = None,
          latency: dict[int, Counter[int]] | None = None) -> BatchStats:  # fmt: skip
    p = PartitionStats(0, tally=tally, watermark=watermark, minute_latency=latency or {})
    return BatchStats(batch_id, [p])


def figures(s: Settings, every: bool = False) -> dict[str, dict[str, Any]]:
    """The figure documents (`every`: with the minutes' index documents)."""
    coll = mongo_db(s)[s.mongo.minutely_collection]
    found = {d["_id"]: d for d in coll.find({}, {"updated_at": 0})}
    return found if every else {i: d for i, d in found.items() if d["metric"] in mn.METRICS}


def orders(minute: int, n: int, amount: int) -> mn.Tally:
    return {(minute, mn.ORDERS, mn.ALL, "EUR"): [n, amount]}


def test_a_batch_counts_once_written_again_or_after_a_restart(
    pipeline_settings: Settings,
) -> None:
    s = pipeline_settings
    live = LiveFigures(s)
    live.ensure_indexes()
    live.write(batch(0, orders(T0, 2, 300), latency={T0: Counter({90: 2})}), "cp:0")
    live.write(batch(1, orders(T0, 1, 50), latency={T0: Counter({95: 1})}), "cp:1")
    once = figures(s, every=True)
    live.write(batch(1, orders(T0, 1, 50), latency={T0: Counter({95: 1})}), "cp:1")
    assert figures(s, every=True) == once
    LiveFigures(s).write(batch(1, orders(T0, 1, 50), latency={T0: Counter({95: 1})}), "cp:1")
    assert figures(s, every=True) == once  # a restarted driver reads what it needs back
    doc = once[mn.doc_id((T0, mn.ORDERS, mn.ALL, "EUR"))]
    assert (doc["count"], doc["amount"], doc["final"]) == (3, 350, False)
    assert once[mn.doc_id((T0, mn.LATENCY, mn.ALL, ""))]["count"] == 3
    index = once[f"{T0}|minute"]["figures"]
    assert index[mn.doc_id((T0, mn.ORDERS, mn.ALL, "EUR"))]["count"] == 3
    newest = once["newest"]["event"]
    assert (newest.hour, newest.minute) == (0, 0)


def test_the_sweep_marks_final_the_minutes_the_watermark_passed(
    pipeline_settings: Settings,
) -> None:
    s = pipeline_settings
    live = LiveFigures(s)
    tally = {**orders(T0, 1, 10), **orders(T0 + MIN, 1, 10), **orders(T0 + 2 * MIN, 1, 10)}
    tally[(T0, mn.DEAD_LETTERS, "reason=late", "")] = [4]
    live.write(batch(0, tally, watermark=T0 - 1), "cp:0")
    assert not any(d["final"] for d in figures(s).values())
    LiveFigures(s).sweep(T0 + 2 * MIN)  # a restarted driver finds the open figures
    stored = figures(s).values()
    final = {d["minute"].minute: d["final"] for d in stored if d["metric"] == mn.ORDERS}
    assert final == {0: True, 1: True, 2: False}
    assert not figures(s)[mn.doc_id((T0, mn.DEAD_LETTERS, "reason=late", ""))]["final"]
    live.sweep(T0 + 2 * MIN)
    live.write(batch(1, orders(T0 + 2 * MIN, 1, 5), watermark=T0 + 3 * MIN), "cp:1")
    doc = figures(s)[mn.doc_id((T0 + 2 * MIN, mn.ORDERS, mn.ALL, "EUR"))]
    assert (doc["count"], doc["final"]) == (2, True)
