"""What the dashboard reads, written by the driver: the per-minute figures and the job's status.

    metrics_minutely   one document per minute + metric + dimension (contract/minutely.py),
                       folded from each batch's tally (sinks/live_docs.py) and replaced whole
    job_status         one document per checkpoint: the last batch, its offsets and Kafka's
                       latest ones, rates, watermark (from Spark's progress reports)

A batch's figures cost a read by `_id` of each figure it touches that this driver has not
written itself, one unordered bulk of replacements, and one of updates by `_id` that marks final
the figures of the minutes its watermark has passed.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any

from pymongo import ASCENDING, ReplaceOne, UpdateOne
from pymongo.collection import Collection

from contract import minutely
from sinks import metrics
from sinks.batch_stats import BatchStats
from sinks.live_docs import (
    NEWEST_ID,
    fold,
    keys_of,
    lag_of,
    minute_index,
    minute_index_id,
    newest,
    status_doc,
)
from sinks.mongo_store import MongoStore, chunks

logger = logging.getLogger(__name__)
MINUTELY_INDEXES = ([("metric", ASCENDING), ("minute", ASCENDING)], [("minute", ASCENDING)])


class LiveFigures(MongoStore):
    """The per-minute figures, on the driver: one instance for the query's life, shared by the
    sink (each batch) and the progress reports (each batch's watermark), under a lock. Beside
    the figures: per minute, an index document with copies of that minute's figures, and one
    with each clock's newest minute, so that a reader reads a window by `_id` alone
    (sinks/live_docs.py).

    Every read and update is by `_id`, the one filter every MongoDB-protocol server serves from
    its index (FerretDB v1 scans for any other: ~2 s per query over a day of figures, measured),
    so a batch costs what it touches, however many minutes are stored. The documents this
    driver wrote are kept (`known`) until they cannot change any more, so a batch reads only the
    figures it has not written itself; the open (not yet final) event-time figures are known by
    `_id` and minute (`open`, read once per start)."""

    KEEP_MS = 3_600_000  # figures by Kafka time are kept in `known` this long past the newest

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.lock = threading.Lock()
        self.known: dict[str, dict[str, Any]] = {}
        self.open: dict[str, int] | None = None

    def ensure_indexes(self) -> None:
        coll = self.collection(self.settings.mongo.minutely_collection)
        for keys in MINUTELY_INDEXES:
            self.retry(functools.partial(coll.create_index, keys), "create_index")

    def _coll(self) -> Collection[dict[str, Any]]:
        return self.collection(self.settings.mongo.minutely_collection)

    def _open(self) -> dict[str, int]:
        if self.open is None:  # the one query that is not by _id: once per start
            query = {"final": False, "metric": {"$in": sorted(minutely.EVENT_TIME)}}
            found = self.retry(lambda: list(self._coll().find(query, {"_id": 1})), "open figures")
            self.open = {d["_id"]: _minute(d["_id"]) for d in found}
        return self.open

    def write(self, stats: BatchStats, batch: str) -> int:
        """Fold a batch's tally and latencies into the figures; the number of documents."""
        with self.lock:
            try:
                return self._write(stats, batch)
            except Exception:
                self.known.clear()  # what the database holds is unknown now: read it again
                self.open = None
                raise

    def _write(self, stats: BatchStats, batch: str) -> int:
        tally, latency = stats.tally, stats.minute_latency
        coll = self._coll()
        ids = [minutely.doc_id(k) for k in keys_of(tally, latency)]
        for i in ids:
            if i not in self.known:
                found = self.retry(functools.partial(coll.find_one, {"_id": i}), "read figure")
                if found is not None:
                    self.known[i] = found
        stored = {i: self.known[i] for i in ids if i in self.known}
        docs = fold(stored, tally, latency, batch, stats.watermark, int(time.time() * 1000))
        ops: list[Any] = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs]
        ops += [UpdateOne({"_id": minute_index_id(m)}, {"$set": fields}, upsert=True)
                for m, fields in minute_index(docs).items()]  # fmt: skip
        if docs:
            newest_of = {"$max": newest(docs), "$set": {"metric": NEWEST_ID}}
            ops.append(UpdateOne({"_id": NEWEST_ID}, newest_of, upsert=True))
        for part in chunks(ops):
            self.retry(functools.partial(coll.bulk_write, part, ordered=False), "write figures")
        opened = self._open()
        for d in docs:
            self.known[d["_id"]] = d
            if d["metric"] in minutely.EVENT_TIME and not d["final"]:
                opened[d["_id"]] = _minute(d["_id"])
            elif d["final"]:
                opened.pop(d["_id"], None)
                del self.known[d["_id"]]  # final: it cannot change any more
        self._sweep(stats.watermark)
        self._forget_old()
        return len(docs)

    def sweep(self, watermark: int | None) -> None:
        """Mark final the event-time figures of the minutes the watermark has passed."""
        with self.lock:
            self._sweep(watermark)

    def _sweep(self, watermark: int | None) -> None:
        if watermark is None or watermark <= 0:
            return
        last = minutely.minute_of(watermark - minutely.MINUTE_MS)  # minute + 1 min <= watermark
        opened = self._open()
        due = [i for i, minute in opened.items() if minute <= last]
        for part in chunks(due):
            ops = [UpdateOne({"_id": i}, {"$set": {"final": True}}) for i in part]
            coll = self._coll()
            self.retry(functools.partial(coll.bulk_write, ops, ordered=False), "mark final")
        for i in due:
            del opened[i]
            self.known.pop(i, None)

    def _forget_old(self) -> None:
        """Figures by Kafka time are never final: forget those an hour older than the newest
        (a later change to one reads it again)."""
        kafka_time = [i for i, d in self.known.items() if d["metric"] not in minutely.EVENT_TIME]
        if not kafka_time:
            return
        newest = max(_minute(i) for i in kafka_time)
        for i in kafka_time:
            if _minute(i) < newest - self.KEEP_MS:
                del self.known[i]


def _minute(doc_id: str) -> int:
    """A figure's minute, from its `_id` (contract.minutely.doc_id)."""
    return int(doc_id.split("|", 1)[0])


class JobStatus(MongoStore):
    """Reports one of Spark's progress reports: as the job's status document (keyed by its
    checkpoint) and in the Prometheus metrics. Called on the driver, from Spark's listener
    thread: one attempt, no retries (the next batch's report replaces a lost one). It also marks
    final the figures of the minutes that batch's watermark has passed."""

    def __init__(self, settings: Any, figures: LiveFigures | None = None) -> None:
        super().__init__(settings)
        self.figures = figures  # the sink's (the same instance: it knows the open figures)

    def __call__(self, progress: dict[str, Any]) -> None:
        lag = lag_of(progress)
        doc = status_doc(progress, lag)
        metrics.observe_progress(progress, {k: latest - end for k, (end, latest) in lag.items()})
        if doc["watermark"] is not None:
            metrics.WATERMARK.set(doc["watermark"].timestamp())
        coll = self.collection(self.settings.mongo.status_collection)
        coll.replace_one({"_id": self.settings.spark.checkpoint_location}, doc, upsert=True)
        if doc["watermark"] is not None and self.figures is not None:
            self.figures.sweep(int(doc["watermark"].timestamp() * 1000))
