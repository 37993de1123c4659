"""What partitions send back to the driver: counts and a latency histogram that merges, survives
its JSON trip, and reads percentiles within its 5% resolution."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from sinks.batch_stats import GROWTH, BatchStats, PartitionStats, percentile


def test_json_round_trip() -> None:
    p = PartitionStats(3, rows=5, written=4, write_s=0.5, counts=Counter({"outcome": 4}))
    p.observe_latencies([0, 1, 250, 250, 90_000])
    assert PartitionStats.from_json(p.to_json()) == p


def test_batch_merges_its_partitions() -> None:
    a = PartitionStats(0, rows=2, written=2, counts=Counter({"outcome": 2, "reason:late": 1}))
    b = PartitionStats(1, rows=3, written=0, skipped=True, counts=Counter({"outcome": 3}))
    a.observe_latencies([100, 200])
    b.observe_latencies([300])
    batch = BatchStats(7, [a, b])
    assert (batch.rows, batch.written, batch.skipped) == (5, 2, False)
    assert batch.counts == Counter({"outcome": 5, "reason:late": 1})
    assert sum(batch.latency.values()) == 3


@pytest.mark.parametrize("q", [50, 90, 99, 100])
def test_percentiles_within_the_histograms_resolution(q: float) -> None:
    rng = random.Random(q)
    values = sorted(int(rng.lognormvariate(7, 1.2)) + 1 for _ in range(20_000))
    p = PartitionStats()
    p.observe_latencies(values)
    exact = values[max(0, int(len(values) * q / 100 + 0.5) - 1)]
    got = percentile(p.latency, q)
    assert got is not None
    assert exact / GROWTH <= got <= exact * GROWTH


def test_no_latencies_no_percentile() -> None:
    assert percentile(Counter(), 99) is None
