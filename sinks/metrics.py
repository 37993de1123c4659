"""Prometheus metrics of the job, served by `python -m streaming --metrics-port N`.

Names follow Prometheus conventions: a `payments_` namespace, base units (seconds, bytes),
`_total` on counters. Two sources feed them, both on the driver: the sink, per batch it writes
(`observe_batch`: documents, dead letters, latency, retries), and Spark's progress reports
(`observe_progress`: rates, batch duration, consumer lag, watermark, state).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from sinks.batch_stats import BatchStats, bucket_value

_SECONDS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)

ROWS = Counter("payments_sink_rows_total", "Documents emitted by the job, by kind", ["kind"])
WRITTEN = Counter(
    "payments_sink_documents_written_total", "Documents sent to MongoDB (not the skipped replays)"
)
RETRIES = Counter("payments_sink_retries_total", "MongoDB calls retried after a transient error")
DEAD_LETTERS = Counter("payments_dead_letters_total", "Dead letters by reason", ["reason"])
BATCH_SECONDS = Histogram(
    "payments_sink_batch_seconds",
    "Time of one foreachBatch call: compute and writes",
    buckets=_SECONDS,
)
MINUTELY_SECONDS = Histogram(
    "payments_minutely_write_seconds",
    "Time to fold one batch into the per-minute figures in MongoDB",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4),
)
LATENCY_SECONDS = Histogram(
    "payments_produced_to_written_seconds",
    "From the Kafka record's timestamp to its document's write",
    buckets=(0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60),
)
LAST_BATCH = Gauge("payments_last_batch_id", "Id of the last micro-batch written")
LAST_BATCH_TIME = Gauge(
    "payments_last_batch_timestamp_seconds", "When the last micro-batch was written (Unix time)"
)
# from Spark's progress reports
INPUT_ROWS = Counter("payments_input_rows_total", "Kafka records read by the job")
INPUT_RATE = Gauge("payments_input_rows_per_second", "Records arriving per second (last batch)")
PROCESSED_RATE = Gauge(
    "payments_processed_rows_per_second", "Records processed per second (last batch)"
)
TRIGGER_SECONDS = Histogram(
    "payments_batch_duration_seconds",
    "Spark's whole micro-batch (triggerExecution)",
    buckets=_SECONDS,
)
LAG = Gauge(
    "payments_consumer_lag_records",
    "Kafka's latest offset minus the job's end offset, per topic-partition",
    ["topic", "partition"],
)
WATERMARK = Gauge("payments_watermark_timestamp_seconds", "The query's event-time watermark")
STATE_ROWS = Gauge("payments_state_rows", "Rows in the state store")
STATE_BYTES = Gauge("payments_state_memory_bytes", "Memory used by the state store")


def observe_batch(stats: BatchStats, written_at_s: float, retried: int = 0) -> None:
    """A written batch's figures, merged from its partitions on the driver (`retried`: the
    driver's own retried calls)."""
    LAST_BATCH.set(stats.batch_id)
    LAST_BATCH_TIME.set(written_at_s)
    BATCH_SECONDS.observe(stats.seconds)
    MINUTELY_SECONDS.observe(stats.figures_s)
    WRITTEN.inc(stats.written)
    RETRIES.inc(stats.retries + retried)
    for key, n in stats.counts.items():
        if key.startswith("reason:"):
            DEAD_LETTERS.labels(key.removeprefix("reason:")).inc(n)
        else:
            ROWS.labels(key).inc(n)
    for bucket, n in stats.latency.items():  # each document at its bucket's latency
        seconds = bucket_value(bucket) / 1000
        for _ in range(n):
            LATENCY_SECONDS.observe(seconds)


def observe_progress(p: dict[str, Any], lag: dict[tuple[str, int], int]) -> None:
    """One of Spark's progress reports (StreamingQueryProgress as JSON), with its lag per
    topic-partition (streaming/progress.py computes it)."""
    INPUT_ROWS.inc(p.get("numInputRows") or 0)
    INPUT_RATE.set(p.get("inputRowsPerSecond") or 0.0)
    PROCESSED_RATE.set(p.get("processedRowsPerSecond") or 0.0)
    trigger_ms = (p.get("durationMs") or {}).get("triggerExecution")
    if trigger_ms is not None:
        TRIGGER_SECONDS.observe(trigger_ms / 1000)
    for (topic, partition), n in lag.items():
        LAG.labels(topic, str(partition)).set(n)
    ops = p.get("stateOperators") or []
    if ops:
        STATE_ROWS.set(sum(op.get("numRowsTotal", 0) for op in ops))
        STATE_BYTES.set(sum(op.get("memoryUsedBytes", 0) for op in ops))
