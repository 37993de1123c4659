"""What partitions send back to the driver: counts and a latency histogram that merges, survives
its JSON trip, and reads percentiles within its 5% resolution."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from contract import minutely
from sinks.batch_stats import GROWTH, BatchStats, PartitionStats, percentile

T0 = 1_767_225_600_000  # a minute's start
KEY = (T0, minutely.ORDERS, minutely.ALL, "EUR")


def at(*ms: int, ts: int = T0) -> list[tuple[int, int]]:
    """(Kafka timestamp, latency) pairs, all produced at `ts`."""
    return [(ts, m) for m in ms]


def test_json_round_trip() -> None:
    p = PartitionStats(3, rows=5, written=4, write_s=0.5, counts=Counter({"outcome": 4}))
    p.observe_latencies(at(0, 1, 250, 250, 90_000) + at(5, ts=T0 + 61_000))
    p.tally, p.watermark, p.retries = {KEY: [2, 1500]}, T0 - 5, 3
    assert PartitionStats.from_json(p.to_json()) == p
    assert sorted(p.minute_latency) == [T0, T0 + 60_000]


def test_batch_merges_its_partitions() -> None:
    a = PartitionStats(0, rows=2, written=2, counts=Counter({"outcome": 2, "reason:late": 1}))
    b = PartitionStats(1, rows=3, written=0, skipped=True, counts=Counter({"outcome": 3}))
    a.observe_latencies(at(100, 200))
    b.observe_latencies(at(300, ts=T0 + 60_000))
    a.tally, a.watermark, a.retries = {KEY: [2, 1500]}, T0 - 5, 1
    b.tally, b.watermark, b.retries = {KEY: [1, 10]}, T0 + 7, 2
    batch = BatchStats(7, [a, b])
    assert (batch.rows, batch.written, batch.skipped) == (5, 2, False)
    assert batch.counts == Counter({"outcome": 5, "reason:late": 1})
    assert sum(batch.latency.values()) == 3
    assert {m: sum(h.values()) for m, h in batch.minute_latency.items()} == {T0: 2, T0 + 60_000: 1}
    assert (batch.tally, batch.watermark, batch.retries) == ({KEY: [3, 1510]}, T0 + 7, 3)


@pytest.mark.parametrize("q", [50, 90, 99, 100])
def test_percentiles_within_the_histograms_resolution(q: float) -> None:
    rng = random.Random(q)
    values = sorted(int(rng.lognormvariate(7, 1.2)) + 1 for _ in range(20_000))
    p = PartitionStats()
    p.observe_latencies(at(*values))
    exact = values[max(0, int(len(values) * q / 100 + 0.5) - 1)]
    got = percentile(p.latency, q)
    assert got is not None
    assert exact / GROWTH <= got <= exact * GROWTH


def test_no_latencies_no_percentile() -> None:
    assert percentile(Counter(), 99) is None
