"""What a partition's writer sends back to the driver: counts and a latency sketch, not rows.

Pure. Each executor task writes its partition's documents and returns one `PartitionStats` as a
single JSON string; the driver merges them into the batch's figures (metrics, batch marker,
benchmarks). Latencies are kept in a log-bucketed histogram: bucket i holds values in
[GROWTH^i, GROWTH^(i+1)) ms, so a percentile read from it is within GROWTH - 1 (5%) of the truth,
and its size is bounded (~300 buckets from 1 ms to a day) whatever the batch size.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

GROWTH = 1.05
_LOG = math.log(GROWTH)


def bucket_of(ms: int) -> int:
    return 0 if ms < 1 else int(math.log(ms) / _LOG)


def bucket_value(i: int) -> float:
    """A bucket's representative latency in ms (its geometric middle)."""
    return 0.0 if i == 0 else GROWTH ** (i + 0.5)


@dataclass(slots=True)
class PartitionStats:
    partition: int = -1
    rows: int = 0
    written: int = 0  # documents sent to the database (0 when the partition was skipped)
    skipped: bool = False  # already written with the same content (a replayed batch)
    write_s: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    latency: Counter[int] = field(default_factory=Counter)  # bucket -> documents

    def observe_latencies(self, ms: Iterable[int]) -> None:
        self.latency.update(bucket_of(max(0, m)) for m in ms)

    def to_json(self) -> str:
        return json.dumps(
            {
                "partition": self.partition,
                "rows": self.rows,
                "written": self.written,
                "skipped": self.skipped,
                "write_s": self.write_s,
                "counts": self.counts,
                "latency": {str(k): v for k, v in self.latency.items()},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> PartitionStats:
        d = json.loads(text)
        return cls(
            d["partition"],
            d["rows"],
            d["written"],
            d["skipped"],
            d["write_s"],
            Counter(d["counts"]),
            Counter({int(k): v for k, v in d["latency"].items()}),
        )


@dataclass(slots=True)
class BatchStats:
    """A batch's figures, merged from its partitions."""

    batch_id: int
    partitions: list[PartitionStats]
    seconds: float = 0.0  # the whole foreachBatch call: compute and writes

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions)

    @property
    def written(self) -> int:
        return sum(p.written for p in self.partitions)

    @property
    def skipped(self) -> bool:
        return bool(self.partitions) and all(p.skipped for p in self.partitions if p.rows)

    @property
    def counts(self) -> Counter[str]:
        return sum((p.counts for p in self.partitions), Counter())

    @property
    def latency(self) -> Counter[int]:
        return sum((p.latency for p in self.partitions), Counter())

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0..100) of produced-to-written latency, in ms."""
        return percentile(self.latency, q)


def percentile(hist: Counter[int], q: float) -> float | None:
    n = sum(hist.values())
    if n == 0:
        return None
    rank = max(1, math.ceil(q / 100 * n))
    seen = 0
    for i in sorted(hist):
        seen += hist[i]
        if seen >= rank:
            return bucket_value(i)
    raise AssertionError("unreachable")
