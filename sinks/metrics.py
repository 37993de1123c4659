"""Prometheus metrics of the job, served by `python -m streaming --metrics-port N`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from sinks.batch_stats import BatchStats, bucket_value

ROWS = Counter("payments_sink_rows_total", "Documents written by kind", ["kind"])
DEAD_LETTERS = Counter("payments_dead_letters_total", "Dead letters by reason", ["reason"])
BATCH_SECONDS = Histogram(
    "payments_sink_batch_seconds",
    "Time to write one micro-batch",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
LATENCY_SECONDS = Histogram(
    "payments_produced_to_written_seconds",
    "From the Kafka record's timestamp to its document's write",
    buckets=(0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60),
)
LAST_BATCH = Gauge("payments_last_batch_id", "Id of the last micro-batch written")
STATE_ROWS = Gauge("payments_state_rows", "Rows in the state store (buckets)")
STATE_BYTES = Gauge("payments_state_memory_bytes", "Memory used by the state store")


def observe_batch(stats: BatchStats) -> None:
    """A written batch's figures, merged from its partitions on the driver."""
    LAST_BATCH.set(stats.batch_id)
    BATCH_SECONDS.observe(stats.seconds)
    for key, n in stats.counts.items():
        if key.startswith("reason:"):
            DEAD_LETTERS.labels(key.removeprefix("reason:")).inc(n)
        else:
            ROWS.labels(key).inc(n)
    for bucket, n in stats.latency.items():  # each document at its bucket's latency
        seconds = bucket_value(bucket) / 1000
        for _ in range(n):
            LATENCY_SECONDS.observe(seconds)
