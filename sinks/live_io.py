"""What the dashboard reads, written by the driver: the per-minute figures and the job's status.

    metrics_minutely   one document per minute + metric + dimension (contract/minutely.py),
                       folded from each batch's tally (sinks/minute_docs.py) and replaced whole
    job_status         one document per checkpoint: the last batch, its offsets and Kafka's
                       latest ones, rates, watermark (from Spark's progress reports)

A batch's figures cost one indexed read of the documents it touches, one unordered bulk of
replacements, and (when the watermark moved) one update that marks the minutes it has passed final.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from pymongo import ASCENDING, ReplaceOne
from pymongo.collection import Collection

from contract import minutely
from sinks import metrics
from sinks.batch_stats import BatchStats
from sinks.live_docs import as_date, fold, keys_of, lag_of, status_doc
from sinks.mongo_store import MongoStore, chunks

logger = logging.getLogger(__name__)
MINUTELY_INDEXES = ([("metric", ASCENDING), ("minute", ASCENDING)], [("minute", ASCENDING)])


def _find(coll: Collection[dict[str, Any]], ids: list[str]) -> list[dict[str, Any]]:
    return list(coll.find({"_id": {"$in": ids}}))


class LiveFigures(MongoStore):
    """The per-minute figures, on the driver (one instance for the query's life)."""

    swept_to: int | None = None  # minutes up to here are marked final already (by this run)

    def ensure_indexes(self) -> None:
        coll = self.collection(self.settings.mongo.minutely_collection)
        for keys in MINUTELY_INDEXES:
            self.retry(functools.partial(coll.create_index, keys), "create_index")

    def write(self, stats: BatchStats, batch: str) -> int:
        """Fold a batch's tally and latencies into the figures; the number of documents."""
        tally, latency = stats.tally, stats.minute_latency
        coll = self.collection(self.settings.mongo.minutely_collection)
        ids = [minutely.doc_id(k) for k in keys_of(tally, latency)]
        stored: dict[str, dict[str, Any]] = {}
        for chunk in chunks(ids):
            found = self.retry(functools.partial(_find, coll, chunk), "read minutely figures")
            stored.update((d["_id"], d) for d in found)
        docs = fold(stored, tally, latency, batch, stats.watermark, int(time.time() * 1000))
        for part in chunks(docs):
            ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in part]
            self.retry(functools.partial(coll.bulk_write, ops, ordered=False), "write figures")
        self.sweep(stats.watermark)
        return len(docs)

    def sweep(self, watermark: int | None) -> None:
        """Mark final the event-time figures of the minutes the watermark has passed."""
        if watermark is None or watermark <= 0:
            return
        last = minutely.minute_of(watermark) - minutely.MINUTE_MS
        if watermark % minutely.MINUTE_MS == 0:  # a minute ending at the watermark is passed
            last += minutely.MINUTE_MS
        if self.swept_to is not None and last <= self.swept_to:
            return
        window: dict[str, Any] = {"$lte": as_date(last)}
        if self.swept_to is not None:
            window["$gt"] = as_date(self.swept_to)
        coll = self.collection(self.settings.mongo.minutely_collection)
        query = {"minute": window, "metric": {"$in": sorted(minutely.EVENT_TIME)}, "final": False}
        self.retry(lambda: coll.update_many(query, {"$set": {"final": True}}), "mark figures final")
        self.swept_to = last


class JobStatus(MongoStore):
    """Reports one of Spark's progress reports: as the job's status document (keyed by its
    checkpoint) and in the Prometheus metrics. Called on the driver, from Spark's listener
    thread: one attempt, no retries (the next batch's report replaces a lost one). It also marks
    final the figures of the minutes that batch's watermark has passed."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.figures = LiveFigures(settings)

    def __call__(self, progress: dict[str, Any]) -> None:
        lag = lag_of(progress)
        doc = status_doc(progress, lag)
        metrics.observe_progress(progress, {k: latest - end for k, (end, latest) in lag.items()})
        if doc["watermark"] is not None:
            metrics.WATERMARK.set(doc["watermark"].timestamp())
        coll = self.collection(self.settings.mongo.status_collection)
        coll.replace_one({"_id": self.settings.spark.checkpoint_location}, doc, upsert=True)
        if doc["watermark"] is not None:
            self.figures.sweep(int(doc["watermark"].timestamp() * 1000))
