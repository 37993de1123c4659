"""The foreachBatch writer: the job's output rows -> idempotent upserts into MongoDB.

The only module of the job that talks to MongoDB. A batch is written with unordered
`bulk_write`s keyed by `_id` (see `sinks/documents.py`): inserts of documents emitted for the
first time (an insert that finds its document there falls back to its upsert), then upserts of
the full state of the rest. Then a marker
`{_id: <checkpoint>:<batch_id>, fingerprint}` is stored. A batch Spark replays after a crash is
either skipped (marker with the same fingerprint: it was fully written) or written again, which
the upserts make harmless. Transient MongoDB errors are retried with backoff a bounded number of
times; then the error propagates, the query fails loudly, and a restart resumes from the
checkpoint.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from pymongo import ASCENDING, InsertOne, MongoClient, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import AutoReconnect, BulkWriteError, ConnectionFailure, PyMongoError

from conf.settings import Settings
from sinks import metrics
from sinks.documents import Plan, Row, Write, plan

logger = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT = (AutoReconnect, ConnectionFailure)
CHUNK = 500  # writes per bulk_write command
DUPLICATE_KEY = 11000
OUTCOME_INDEXES = ("status", "final", "order_id")  # single-field indexes of the outcomes


def _chunks(items: Sequence[T]) -> list[list[T]]:
    return [list(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]


class LayoutError(RuntimeError):
    """The settings would read an existing checkpoint's state with a different layout."""

    code = "STATE_LAYOUT_CHANGED"


class SinkError(RuntimeError):
    """Writing a batch failed after the retries; the query must stop and restart."""

    code = "SINK_WRITE_FAILED"


def retry(fn: Callable[[], T], what: str, attempts: int = 5, base_delay: float = 0.2) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TRANSIENT as exc:
            if attempt == attempts:
                raise SinkError(
                    f"{what} failed after {attempts} attempts: {type(exc).__name__}"
                ) from exc
            delay = base_delay * 2 ** (attempt - 1)
            logger.warning(
                "transient mongo error what=%s attempt=%d retry_in=%.1fs error=%s",
                what,
                attempt,
                delay,
                type(exc).__name__,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


class MongoSink:
    """Callable for `writeStream.foreachBatch`. Picklable settings only; the client is lazy."""

    def __init__(
        self,
        settings: Settings,
        publish: Callable[[Any, int], None] | None = None,
        on_batch: Callable[[int, Plan, float, list[int]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.publish = publish
        self.on_batch = on_batch
        self._client: MongoClient[dict[str, Any]] | None = None
        self._pool = ThreadPoolExecutor(settings.mongo.write_threads, "mongo-sink")

    @property
    def client(self) -> MongoClient[dict[str, Any]]:
        if self._client is None:
            self._client = MongoClient(
                self.settings.mongo.uri.get_secret_value(), serverSelectionTimeoutMS=10_000
            )
        return self._client

    def collection(self, name: str) -> Collection[dict[str, Any]]:
        return self.client[self.settings.mongo.database][name]

    def ensure_indexes(self) -> None:
        m = self.settings.mongo
        outcomes = self.collection(m.outcomes_collection)
        for field in OUTCOME_INDEXES:
            retry(functools.partial(outcomes.create_index, [(field, ASCENDING)]), "create_index")
        dead = self.collection(m.dead_letters_collection)
        retry(lambda: dead.create_index([("reason", ASCENDING)]), "create_index")

    def check_layout(self) -> None:
        """Refuse to run a checkpoint under a different state layout than it was created with:
        the bucket count routes each order_id to its state, so changing it under an existing
        checkpoint would separate payments from their orders. The layout is kept beside the
        batch markers, keyed by the checkpoint."""
        p = self.settings.pipeline
        layout = {"shape": p.shape, "state_buckets": p.state_buckets}
        markers = self.collection(self.settings.mongo.batches_collection)
        key = f"{self.settings.spark.checkpoint_location}:layout"
        found = retry(lambda: markers.find_one({"_id": key}), "find layout")
        if found is None:
            retry(lambda: markers.replace_one({"_id": key}, layout, upsert=True), "write layout")
            return
        was = {k: found.get(k) for k in layout}
        if was != layout:
            raise LayoutError(
                f"checkpoint {self.settings.spark.checkpoint_location} was created with "
                f"PIPELINE_SHAPE={was['shape']} PIPELINE_STATE_BUCKETS={was['state_buckets']}, "
                f"not {p.shape}/{p.state_buckets}: set those back, or start a new "
                "SPARK_CHECKPOINT_LOCATION (and MONGO_DATABASE) to re-read the topics"
            )

    def prepare(self) -> None:
        """Before the query starts: indexes, and the checkpoint's state layout."""
        self.ensure_indexes()
        self.check_layout()

    def marker_id(self, batch_id: int) -> str:
        return f"{self.settings.spark.checkpoint_location}:{batch_id}"

    def _bulk(
        self, coll: Collection[dict[str, Any]], ops: list[Any], batch_id: int, inserts: bool
    ) -> list[int]:
        """One unordered bulk_write; returns the indexes of inserts that found their document
        already there (only when `inserts`). Any other write error fails the batch."""
        try:
            retry(lambda: coll.bulk_write(ops, ordered=False), f"bulk_write {coll.name}")
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            dup = [e["index"] for e in errors if inserts and e.get("code") == DUPLICATE_KEY]
            if len(dup) < len(errors):
                other = [e for e in errors if not (inserts and e.get("code") == DUPLICATE_KEY)]
                raise SinkError(
                    f"batch_id={batch_id} collection={coll.name} write errors={len(other)} "
                    f"first={other[0].get('errmsg')}"
                ) from exc
            return dup
        return []

    def write(self, name: str, writes: Sequence[Write], batch_id: int) -> None:
        """Inserts first (a replayed insert falls back to its upsert), then the upserts."""
        coll = self.collection(name)
        inserts = [w for w in writes if w.insert is not None]
        upserts = [w.upsert for w in writes if w.insert is None]

        def insert_chunk(chunk: Sequence[Write]) -> list[UpdateOne]:
            dup = self._bulk(coll, [InsertOne(w.insert) for w in chunk], batch_id, inserts=True)
            return [chunk[i].upsert for i in dup]

        # A batch holds each _id once, so its writes commute and chunks can go in parallel;
        # list() re-raises the first failure after all chunks finished.
        fallbacks = [u for us in self._pool.map(insert_chunk, _chunks(inserts)) for u in us]
        if fallbacks:
            logger.info(
                "documents already there, upserted batch_id=%s collection=%s n=%d",
                batch_id,
                name,
                len(fallbacks),
            )
        ops = upserts + fallbacks
        list(self._pool.map(lambda c: self._bulk(coll, c, batch_id, False), _chunks(ops)))

    def _fault_point(self, batch_id: int) -> None:
        """Half of the batch is written here: the crash test kills the process at this point."""
        pl = self.settings.pipeline
        if pl.fault_pause_at_batch is not None and batch_id == pl.fault_pause_at_batch:
            logger.warning("fault injection: pausing mid-batch batch_id=%s", batch_id)
            if pl.fault_flag_file:
                Path(pl.fault_flag_file).write_text(str(batch_id))
            time.sleep(pl.fault_pause_s)

    def write_rows(self, rows: list[Row], batch_id: int) -> Plan | None:
        """Write one batch's rows; returns the plan, or None when the batch was already written."""
        m = self.settings.mongo
        p = plan(rows, int(time.time() * 1000))
        markers = self.collection(m.batches_collection)
        marker = retry(lambda: markers.find_one({"_id": self.marker_id(batch_id)}), "find marker")
        if marker and marker.get("fingerprint") == p.fingerprint:
            logger.info("batch already written batch_id=%s rows=%d: skipped", batch_id, len(rows))
            return None
        self.write(m.outcomes_collection, p.outcomes[: len(p.outcomes) // 2], batch_id)
        self._fault_point(batch_id)
        self.write(m.outcomes_collection, p.outcomes[len(p.outcomes) // 2 :], batch_id)
        self.write(m.dead_letters_collection, p.dead_letters, batch_id)
        retry(
            lambda: markers.replace_one(
                {"_id": self.marker_id(batch_id)},
                {
                    "fingerprint": p.fingerprint,
                    "rows": len(rows),
                    "counts": p.counts,
                    "written_at": int(time.time() * 1000),
                },
                upsert=True,
            ),
            "write marker",
        )
        return p

    def rows_of(self, pdf: Any) -> list[Row]:
        """The batch's documents to write, from the job's output rows (streaming/job.py)."""
        return [
            Row(k, d, doc, raw, None if ts is None or ts != ts else int(ts))
            for k, d, doc, raw, ts in zip(
                pdf["kind"].tolist(),
                pdf["doc_id"].tolist(),
                pdf["doc"].tolist(),
                pdf["raw"].tolist(),
                pdf["kafka_ts"].tolist(),
                strict=True,
            )
        ]

    def __call__(self, batch_df: Any, batch_id: int) -> None:
        started = time.monotonic()
        if self.publish is not None:  # read twice (Mongo, then Kafka): compute the batch once
            batch_df = batch_df.persist()
        pdf = batch_df.toPandas()  # runs the micro-batch: Kafka read, parse, state step
        collected = time.monotonic()
        try:
            rows = self.rows_of(pdf)
            p = self.write_rows(rows, batch_id)
        except PyMongoError as exc:
            raise SinkError(f"batch_id={batch_id} mongo error {type(exc).__name__}: {exc}") from exc
        if self.publish is not None:
            if rows:
                self.publish(batch_df, batch_id)
            batch_df.unpersist()
        elapsed = time.monotonic() - started
        if p is None:
            return
        done_ms = int(time.time() * 1000)
        latencies = [done_ms - r.kafka_ts for r in rows if r.kafka_ts is not None]
        logger.info(
            "batch written batch_id=%s rows=%d outcomes=%d dead_letters=%d counts=%s seconds=%.3f "
            "compute_s=%.3f",
            batch_id,
            len(rows),
            len(p.outcomes),
            len(p.dead_letters),
            p.counts,
            elapsed,
            collected - started,
        )
        self._observe(batch_id, p, elapsed, latencies)
        if self.on_batch is not None:
            self.on_batch(batch_id, p, elapsed, latencies)

    @staticmethod
    def _observe(batch_id: int, p: Plan, elapsed: float, latencies: list[int]) -> None:
        metrics.LAST_BATCH.set(batch_id)
        metrics.BATCH_SECONDS.observe(elapsed)
        for key, n in p.counts.items():
            if key.startswith("reason:"):
                metrics.DEAD_LETTERS.labels(key.removeprefix("reason:")).inc(n)
            else:
                metrics.ROWS.labels(key).inc(n)
        for ms in latencies:
            metrics.LATENCY_SECONDS.observe(ms / 1000)
