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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contract import minutely
from contract.outputs import TALLY

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
    # the same latencies by the minute of the Kafka timestamp: minute -> bucket -> documents
    minute_latency: dict[int, Counter[int]] = field(default_factory=dict)
    tally: minutely.Tally = field(default_factory=dict)  # additions to the per-minute figures
    watermark: int | None = None  # the one the tally was computed under
    retries: int = 0  # MongoDB calls retried after a transient error

    def observe_latencies(self, pairs: Iterable[tuple[int, int]]) -> None:
        """(Kafka timestamp, produced-to-written ms) of each document written."""
        for kafka_ts, ms in pairs:
            b = bucket_of(max(0, ms))
            self.latency[b] += 1
            self.minute_latency.setdefault(minutely.minute_of(kafka_ts), Counter())[b] += 1

    def observe_written(
        self, rows: Sequence[Any], refused: Sequence[dict[str, Any]], written_at_ms: int
    ) -> None:
        """A written partition's `rows` (sinks.documents.Row): the dead letter of each document
        refused for good counted by its row's Kafka minute, and each row's produced-to-written
        latency."""
        kafka_ts = {r.doc_id: r.kafka_ts for r in rows}
        for d in refused:
            ts = kafka_ts.get(d["doc_id"])
            if ts is not None:
                minutely.add(self.tally, *minutely.dead_lettered(ts, d["reason"]))
        self.observe_latencies(
            (r.kafka_ts, written_at_ms - r.kafka_ts)
            for r in rows
            if r.kafka_ts is not None and r.kind != TALLY
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "partition": self.partition,
                "rows": self.rows,
                "written": self.written,
                "skipped": self.skipped,
                "write_s": self.write_s,
                "counts": self.counts,
                "latency": self.latency,
                "minute_latency": self.minute_latency,
                "tally": minutely.to_rows(self.tally),
                "watermark": self.watermark,
                "retries": self.retries,
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
            _histogram(d["latency"]),
            {int(m): _histogram(h) for m, h in d["minute_latency"].items()},
            minutely.add_rows({}, d["tally"]),
            d["watermark"],
            d["retries"],
        )


def _histogram(d: dict[str, int]) -> Counter[int]:
    return Counter({int(k): v for k, v in d.items()})


@dataclass(slots=True)
class BatchStats:
    """A batch's figures, merged from its partitions."""

    batch_id: int
    partitions: list[PartitionStats]
    seconds: float = 0.0  # the whole foreachBatch call: compute and writes
    figures_s: float = 0.0  # of which folding the tallies into the per-minute figures

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

    @property
    def minute_latency(self) -> dict[int, Counter[int]]:
        merged: dict[int, Counter[int]] = {}
        for p in self.partitions:
            for m, hist in p.minute_latency.items():
                merged.setdefault(m, Counter()).update(hist)
        return merged

    @property
    def tally(self) -> minutely.Tally:
        merged: minutely.Tally = {}
        for p in self.partitions:
            minutely.merge(merged, p.tally)
        return merged

    @property
    def watermark(self) -> int | None:
        marks = [p.watermark for p in self.partitions if p.watermark is not None]
        return max(marks) if marks else None

    @property
    def retries(self) -> int:
        return sum(p.retries for p in self.partitions)

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
