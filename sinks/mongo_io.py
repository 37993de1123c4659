"""The foreachBatch writer: the job's output rows -> idempotent writes into MongoDB, from the
executors.

The only module of the job that talks to MongoDB. The driver's `MongoSink` never collects rows:
each partition of a batch is written by the task that computed it (`PartitionWriter`, one
pymongo client per executor process, reused across batches), and returns one small
`PartitionStats` (counts, a latency histogram) to the driver.

A partition is written with unordered `bulk_write`s keyed by `_id` (see `sinks/documents.py`):
inserts of documents emitted for the first time (an insert that finds its document there falls
back to its upsert), then upserts of the full state of the rest. Then the partition's marker
`{_id: <checkpoint>:p<partition>, batch_id, fingerprint}` is stored. Spark only ever re-runs the
last batch (after a crash) or a task of it (after losing an executor): a partition whose marker
holds the same batch and fingerprint was fully written and is skipped; any other is written
again, which the upserts make harmless. Once every partition is written, the driver stores the
batch's marker `{_id: <checkpoint>:<batch_id>, rows, counts}`. Transient MongoDB errors are
retried with backoff a bounded number of times; then the task fails, the query fails loudly, and
a restart resumes from the checkpoint.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bson.errors import InvalidDocument
from pymongo import ASCENDING, DESCENDING, DeleteOne, InsertOne, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

from conf.settings import Settings
from conf.spark_worker import lean_imports
from contract.outputs import DEAD_LETTER, ORPHAN, OUTCOME
from sinks import metrics
from sinks.batch_stats import BatchStats, PartitionStats
from sinks.documents import REFUSED, Row, Write, plan, refused_letter, refused_names, rows_of
from sinks.kafka_docs import publish_documents
from sinks.live_io import LiveFigures
from sinks.mongo_store import RETRIED, LayoutError, MongoStore, SinkError, chunks

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
NOT_IMPLEMENTED, INDEX_OPTIONS_CONFLICT = 238, 85
PRUNE_EVERY_S = 60.0  # how often the sink deletes expired payment claims without a TTL index
# claims deleted per command: FerretDB's SQLite backend turns a `delete_many` into one statement
# with a variable per matched document, and fails past SQLite's 32,766 (found by the soak);
# deletes by `_id` are also what it does fastest (~8,500/s here, against ~900/s for `$in`)
PRUNE_CHUNK = 5_000
# server write-error codes that retrying can fix (shutdowns, elections, network, time limits);
# any other write error is the document's own fault, and it is dead-lettered instead
TRANSIENT_CODES = frozenset({6, 7, 50, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435,
                             13436})  # fmt: skip
# whole-command errors that are no document's fault: unauthorized, authentication failed
FATAL_CODES = frozenset({13, 18})
KINDS = (OUTCOME, ORPHAN, DEAD_LETTER)  # the rows that are documents (not a TALLY)
# Errors of one document raised by the driver rather than reported by the server: BSON cannot
# encode it (a NUL in a key, a lone surrogate, an integer beyond 64 bits), it is too large, or
# (KeyError) FerretDB refused an update in an answer pymongo cannot read ('nModified').
REFUSED_BY_DRIVER = (InvalidDocument, UnicodeEncodeError, OverflowError, KeyError)
OUTCOME_INDEXES = ("status", "final", "order_id")  # single-field indexes of the outcomes
# the dashboard's dead-letter view: newest first, of every reason or of one
DEAD_LETTER_INDEXES = (
    [("reason", ASCENDING)],
    [("dead_lettered_at", DESCENDING)],
    [("reason", ASCENDING), ("dead_lettered_at", DESCENDING)],
)
STATS_SCHEMA = "stats string"  # one JSON PartitionStats per partition


class PartitionWriter(MongoStore):
    """Writes one partition of a batch, in the task that computed it (on an executor)."""

    def _bulk(
        self, coll: Collection[dict[str, Any]], ops: list[Any], ids: list[str], batch_id: int
    ) -> tuple[list[int], list[dict[str, Any]]]:
        """One unordered bulk_write of `ops` (the documents `ids`). Returns the indexes of
        inserts that found their document there already, and dead letters of the documents the
        database refused for good. A transient error fails the batch, after the retries."""
        try:
            self.retry(lambda: coll.bulk_write(ops, ordered=False), f"bulk_write {coll.name}")
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            transient = [e for e in errors if e.get("code") in TRANSIENT_CODES]
            if transient:
                raise SinkError(
                    f"batch_id={batch_id} collection={coll.name} transient write errors="
                    f"{len(transient)} first={transient[0].get('errmsg')}"
                ) from exc
            dup = [e["index"] for e in errors if e.get("code") == DUPLICATE_KEY
                   and isinstance(ops[e["index"]], InsertOne)]  # fmt: skip
            refused = [
                refused_letter(coll.name, ids[e["index"]], ops[e["index"]], str(e.get("errmsg")))
                for e in errors
                if e["index"] not in dup
            ]
            return dup, refused
        except OperationFailure as exc:
            # the whole command refused: a server or permission problem fails the batch; any
            # other code is one document's fault (FerretDB answers so for, e.g., a `"` in a
            # key), found below one write at a time
            if exc.code in TRANSIENT_CODES or exc.code in FATAL_CODES:
                raise SinkError(
                    f"batch_id={batch_id} collection={coll.name} error {exc.code}: {exc}"
                ) from exc
            if len(ops) > 1:
                return self._one_by_one(coll, ops, ids, batch_id)
            return [], [refused_letter(coll.name, ids[0], ops[0], f"{exc.code}: {exc}")]
        except REFUSED_BY_DRIVER as exc:
            # refused before or while sending (a key or number BSON cannot encode, a document
            # too large), or an answer pymongo cannot read: find which write, one at a time
            if len(ops) == 1:
                error = f"{type(exc).__name__}: {exc}"
                return [], [refused_letter(coll.name, ids[0], ops[0], error)]
            return self._one_by_one(coll, ops, ids, batch_id)
        return [], []

    def _one_by_one(
        self, coll: Collection[dict[str, Any]], ops: list[Any], ids: list[str], batch_id: int
    ) -> tuple[list[int], list[dict[str, Any]]]:
        dup: list[int] = []
        refused: list[dict[str, Any]] = []
        for i, op in enumerate(ops):
            d, r = self._bulk(coll, [op], [ids[i]], batch_id)
            dup += [i] if d else []
            refused += r
        return dup, refused

    def write(self, name: str, writes: Sequence[Write], batch_id: int) -> list[dict[str, Any]]:
        """Inserts first (a replayed insert falls back to its upsert), then the upserts.
        Returns the dead letters of documents the database refused."""
        coll = self.collection(name)
        fallbacks: list[Write] = []
        refused: list[dict[str, Any]] = []
        checked: list[Write] = []
        for w in writes:
            letter = refused_names(name, w)
            if letter is None:
                checked.append(w)
            else:
                refused.append(letter)
        writes = checked
        inserts = [w for w in writes if w.insert is not None]
        for chunk in chunks(inserts):
            ops: list[Any] = [InsertOne(w.insert or {}) for w in chunk]
            dup, bad = self._bulk(coll, ops, [w.doc_id for w in chunk], batch_id)
            fallbacks.extend(chunk[i] for i in dup)
            refused += bad
        if fallbacks:
            logger.info(
                "documents already there, upserted batch_id=%s collection=%s n=%d",
                batch_id,
                name,
                len(fallbacks),
            )
        for chunk in chunks([w for w in writes if w.insert is None] + fallbacks):
            upserts: list[Any] = [w.upsert for w in chunk]
            refused += self._bulk(coll, upserts, [w.doc_id for w in chunk], batch_id)[1]
        return refused

    def write_refused(self, refused: list[dict[str, Any]], batch_id: int) -> None:
        """Dead-letter what the database refused; the batch goes on. If even that is refused,
        the batch fails (nothing may vanish silently)."""
        if not refused:
            return
        logger.warning(
            "documents refused by the database, dead-lettered batch_id=%s n=%d first_error=%s",
            batch_id, len(refused), refused[0]["error"][:200],
        )  # fmt: skip
        coll = self.collection(self.settings.mongo.dead_letters_collection)
        ops = [UpdateOne({"_id": d["_id"]}, {"$set": d}, upsert=True) for d in refused]
        _, again = self._bulk(coll, ops, [d["_id"] for d in refused], batch_id)
        if again:
            raise SinkError(f"batch_id={batch_id} could not dead-letter refused documents: "
                            f"{again[0]['error'][:200]}")  # fmt: skip

    def _fault_point(self, batch_id: int) -> None:
        """Half of a partition is written here: the crash tests kill the process (the driver,
        or a worker with its executor) at this point. Only the first task to get here pauses:
        it creates the flag file, atomically."""
        pl = self.settings.pipeline
        if pl.fault_pause_at_batch is None or batch_id != pl.fault_pause_at_batch:
            return
        if pl.fault_flag_file:
            try:
                os.close(os.open(pl.fault_flag_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
            Path(pl.fault_flag_file).write_text(str(batch_id))
        logger.warning("fault injection: pausing mid-batch batch_id=%s", batch_id)
        time.sleep(pl.fault_pause_s)

    def write_rows(self, rows: list[Row], batch_id: int, partition: int) -> PartitionStats:
        """Write one partition's rows (skipped when its marker shows them written already).
        Its tally of the per-minute figures comes back either way: the driver counts a re-run
        batch once (sinks/live_docs.py)."""
        m = self.settings.mongo
        started, retried = time.monotonic(), RETRIED[0]
        written_at = int(time.time() * 1000)
        p = plan(rows, written_at)
        documents = sum(p.counts.get(k, 0) for k in KINDS)
        stats = PartitionStats(partition, documents, counts=Counter(p.counts))
        stats.tally, stats.watermark = p.tally, p.watermark
        if not rows:
            return stats
        markers = self.collection(m.batches_collection)
        key = self.partition_marker_id(partition)
        marker = self.retry(lambda: markers.find_one({"_id": key}), "find marker")
        if marker and (marker.get("batch_id"), marker.get("fingerprint")) == (
            batch_id,
            p.fingerprint,
        ):
            logger.info("partition already written batch_id=%s partition=%s", batch_id, partition)
            stats.skipped = True
            return stats
        half = len(p.outcomes) // 2
        refused = self.write(m.outcomes_collection, p.outcomes[:half], batch_id)
        self._fault_point(batch_id)
        refused += self.write(m.outcomes_collection, p.outcomes[half:], batch_id)
        refused += self.write(m.orphans_collection, p.orphans, batch_id)
        refused += self.write(m.dead_letters_collection, p.dead_letters, batch_id)
        self.write_refused(refused, batch_id)
        stats.counts[REFUSED] += len(refused)
        marker_doc = {"batch_id": batch_id, "fingerprint": p.fingerprint, "rows": len(rows)}
        self.retry(
            lambda: markers.replace_one({"_id": key}, marker_doc, upsert=True), "write marker"
        )
        stats.written = len(p.outcomes) + len(p.orphans) + len(p.dead_letters) - len(refused)
        stats.write_s = time.monotonic() - started
        stats.observe_written(rows, refused, written_at)
        stats.retries = RETRIED[0] - retried
        return stats

    def write_partition(self, batch_id: int, batches: Iterator[Any]) -> Iterator[Any]:
        """The mapInArrow function: this task's rows in, one stats row out."""
        import pyarrow as pa
        from pyspark import TaskContext

        lean_imports()
        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        rows = [row for batch in batches for row in rows_of(batch)]
        try:
            stats = self.write_rows(rows, batch_id, partition)
        except PyMongoError as exc:
            raise SinkError(f"batch_id={batch_id} mongo error {type(exc).__name__}: {exc}") from exc
        yield pa.RecordBatch.from_pydict(
            {"stats": [stats.to_json()]}, schema=pa.schema([("stats", pa.string())])
        )


class PaymentClaims(MongoStore):
    """The registry of payment ids: payment_id -> the order_id that used it first. Called by the
    state step on the executors before it folds a batch's payments in (streaming/frames.py), so
    a payment_id cannot pay two orders even when their orders' state sits in different buckets.

    A claim is an insert keyed by payment_id: the first wins, atomically, whichever executor
    makes it; a replayed batch finds its own claims (same order_id) and goes on. Claims are
    forgotten after PIPELINE_DEDUP_HORIZON_S of processing time (`prune`)."""

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Claim each (payment_id, order_id), in this order; returns the pairs refused because
        the payment_id is claimed by another order_id."""
        first: dict[str, str] = {}
        refused: set[tuple[str, str]] = set()
        for pid, oid in pairs:
            if first.setdefault(pid, oid) != oid:
                refused.add((pid, oid))
        if not first:
            return refused
        coll = self.collection(self.settings.mongo.claims_collection)
        now = datetime.datetime.now(datetime.timezone.utc)
        docs = [{"_id": pid, "order_id": oid, "claimed_at": now} for pid, oid in first.items()]
        try:
            self.retry(lambda: coll.insert_many(docs, ordered=False), "claim payment ids")
            return refused
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise SinkError(f"claiming payment ids failed: {errors[0].get('errmsg')}") from exc
            taken = [docs[e["index"]]["_id"] for e in errors]
        found = self.retry(lambda: list(coll.find({"_id": {"$in": taken}})), "read payment claims")
        owner = {d["_id"]: d["order_id"] for d in found}
        return refused | {(pid, first[pid]) for pid in taken if owner.get(pid) != first[pid]}

    def ensure_indexes(self) -> bool:
        """A TTL index forgets claims after the horizon. Where the server has none (FerretDB
        v1): a plain index on `claimed_at` for `prune`, which must then do it, and False."""
        coll = self.collection(self.settings.mongo.claims_collection)
        try:
            self.retry(
                lambda: coll.create_index(
                    [("claimed_at", ASCENDING)],
                    name="claims_ttl",
                    expireAfterSeconds=self.settings.pipeline.dedup_horizon_s,
                ),
                "create_index",
            )
        except OperationFailure as exc:
            if exc.code not in (NOT_IMPLEMENTED, INDEX_OPTIONS_CONFLICT):
                raise
            self.retry(lambda: coll.create_index([("claimed_at", ASCENDING)]), "create_index")
            return False
        return True

    def prune(self) -> int:
        """Delete claims older than the horizon, PRUNE_CHUNK at a time; the number deleted."""
        coll = self.collection(self.settings.mongo.claims_collection)
        horizon = datetime.timedelta(seconds=self.settings.pipeline.dedup_horizon_s)
        expired = {"claimed_at": {"$lt": datetime.datetime.now(datetime.timezone.utc) - horizon}}
        deleted = 0
        while True:
            ids = self.retry(
                lambda: [d["_id"] for d in coll.find(expired, {"_id": 1}).limit(PRUNE_CHUNK)],
                "find expired claims",
            )
            if not ids:
                return deleted
            ops = [DeleteOne({"_id": i}) for i in ids]
            delete = functools.partial(coll.bulk_write, ops, ordered=False)
            got = self.retry(delete, "prune claims")
            deleted += got.deleted_count
            if len(ids) < PRUNE_CHUNK or got.deleted_count == 0:
                return deleted


class MongoSink(MongoStore):
    """Callable for `writeStream.foreachBatch`, on the driver: runs the batch with each partition
    writing itself, and gets back only each partition's stats; then folds their tallies into the
    per-minute figures (`figures=False`: not, for benchmarks of the documents alone)."""

    def __init__(
        self,
        settings: Settings,
        publish: Callable[[Any, int], None] | None = None,
        on_batch: Callable[[BatchStats], None] | None = None,
        figures: bool = True,
    ) -> None:
        super().__init__(settings)
        self.publish = publish
        self.on_batch = on_batch
        self.figures = LiveFigures(settings) if figures else None
        self.claims_expire = True  # the server expires payment claims itself (TTL index)
        self.pruned_at = 0.0

    def ensure_indexes(self) -> None:
        m = self.settings.mongo
        outcomes = self.collection(m.outcomes_collection)
        for field in OUTCOME_INDEXES:
            self.retry(
                functools.partial(outcomes.create_index, [(field, ASCENDING)]), "create_index"
            )
        dead = self.collection(m.dead_letters_collection)
        for keys in DEAD_LETTER_INDEXES:
            self.retry(functools.partial(dead.create_index, keys), "create_index")
        orphans = self.collection(m.orphans_collection)
        self.retry(lambda: orphans.create_index([("order_id", ASCENDING)]), "create_index")
        if self.figures is not None:
            self.figures.ensure_indexes()
        self.claims_expire = PaymentClaims(self.settings).ensure_indexes()

    def check_layout(self) -> None:
        """Refuse to run a checkpoint under a different state layout than it was created with:
        the bucket count routes each order_id to its state, so changing it under an existing
        checkpoint would separate payments from their orders. The layout is kept beside the
        batch markers, keyed by the checkpoint."""
        p = self.settings.pipeline
        layout = {"shape": p.shape, "state_buckets": p.state_buckets}
        markers = self.collection(self.settings.mongo.batches_collection)
        key = f"{self.settings.spark.checkpoint_location}:layout"
        found = self.retry(lambda: markers.find_one({"_id": key}), "find layout")
        if found is None:
            self.retry(
                lambda: markers.replace_one({"_id": key}, layout, upsert=True), "write layout"
            )
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

    def write_batch(self, batch_df: Any, batch_id: int) -> list[PartitionStats]:
        """Every partition writes itself on its executor (or, PIPELINE_WRITE_TO=kafka, turns
        itself into records that Spark's Kafka sink publishes); only their stats come back."""
        if self.settings.pipeline.write_to == "kafka":
            return publish_documents(batch_df, self.settings)
        writer = PartitionWriter(self.settings)
        per_partition = functools.partial(writer.write_partition, batch_id)
        got = batch_df.mapInArrow(per_partition, STATS_SCHEMA).collect()
        return [PartitionStats.from_json(r[0]) for r in got]

    def __call__(self, batch_df: Any, batch_id: int) -> None:
        started, retried = time.monotonic(), RETRIED[0]
        if self.publish is not None:  # read twice (Mongo, then Kafka): compute the batch once
            batch_df = batch_df.persist()
        stats = BatchStats(batch_id, self.write_batch(batch_df, batch_id))
        if self.publish is not None:
            if stats.rows:
                self.publish(batch_df, batch_id)
            batch_df.unpersist()
        if self.figures is not None:
            figures_started = time.monotonic()
            n = self.figures.write(stats, self.marker_id(batch_id))
            stats.figures_s = time.monotonic() - figures_started
            logger.info("minutely figures written batch_id=%s n=%d seconds=%.3f",
                        batch_id, n, stats.figures_s)  # fmt: skip
        markers = self.collection(self.settings.mongo.batches_collection)
        marker = {"rows": stats.rows, "counts": dict(stats.counts),
                  "written_at": int(time.time() * 1000)}  # fmt: skip
        self.retry(
            lambda: markers.replace_one({"_id": self.marker_id(batch_id)}, marker, upsert=True),
            "write batch marker",
        )
        if not self.claims_expire and time.monotonic() - self.pruned_at > PRUNE_EVERY_S:
            self.pruned_at = time.monotonic()
            logger.info("payment claims pruned n=%d", PaymentClaims(self.settings).prune())
        stats.seconds = time.monotonic() - started
        logger.info(
            "batch written batch_id=%s rows=%d written=%d skipped=%s counts=%s seconds=%.3f "
            "write_s=%s",
            batch_id,
            stats.rows,
            stats.written,
            stats.skipped,
            dict(stats.counts),
            stats.seconds,
            [round(p.write_s, 3) for p in stats.partitions],
        )
        metrics.observe_batch(stats, time.time(), retried=RETRIED[0] - retried)
        if self.on_batch is not None:
            self.on_batch(stats)
