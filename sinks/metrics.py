"""Prometheus metrics of the job, served by `python -m streaming --metrics-port N`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
