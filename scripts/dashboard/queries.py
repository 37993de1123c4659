"""Every read the dashboard makes: MongoDB and Kafka's end offsets. Thin; the rest is pure
(`view.py`).

Each read is bounded and served by an index (created by the sink, `sinks/mongo_io.py`):
- the figures: `metrics_minutely`, the last N minutes of each clock, each minute's index
  document by `_id`; the window ends at the newest minute written, not at the wall clock, so a
  replayed or stopped stream still shows its last N minutes (the page says which minute);
- the order lookup: one `_id` in `order_outcomes`, and `orphan_payments` by order_id;
- the dead-letter view: `dead_letters` by reason, newest first, limited, without the raw bytes;
- the job's status: `job_status`, one small document per checkpoint.
`order_outcomes` is never scanned.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import DESCENDING, MongoClient

from conf.settings import DashboardSettings, Settings
from scripts.dashboard.view import CLOCKS, EVENT, KAFKA
from sinks.live_docs import NEWEST_ID, minute_index_id

RAW_FIELDS = {"raw_key": 0, "raw_value": 0}  # up to 8 MiB each: never read by the page


@dataclass
class Snapshot:
    """One refresh's reads."""

    figures: list[dict[str, Any]] = field(default_factory=list)  # metrics_minutely documents
    ends: dict[str, datetime | None] = field(default_factory=dict)  # clock -> newest minute
    status: dict[str, Any] | None = None  # the job's newest status document
    latest: dict[tuple[str, int], int] | None = None  # Kafka's end offsets; None: unreachable
    mongo_s: float = 0.0  # time spent in MongoDB
    kafka_s: float = 0.0  # time spent asking Kafka


class Reader:
    """The dashboard's reads of one database (and the broker the job reads)."""

    def __init__(self, settings: Settings, dash: DashboardSettings) -> None:
        self.settings, self.dash = settings, dash
        m = settings.mongo
        self.client: MongoClient[dict[str, Any]] = MongoClient(
            m.uri.get_secret_value(), serverSelectionTimeoutMS=m.timeout_ms, tz_aware=True
        )
        db = self.client[m.database]
        self.outcomes, self.orphans = db[m.outcomes_collection], db[m.orphans_collection]
        self.dead, self.minutely = db[m.dead_letters_collection], db[m.minutely_collection]
        self.status = db[m.status_collection]
        self._consumer: Any = None
        self.ends: dict[str, datetime | None] = {EVENT: None, KAFKA: None}  # clock -> newest

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        self.client.close()

    def server(self) -> str:
        """The server's kind, version and address (never the URI: it may hold a password)."""
        info = self.client.admin.command("buildInfo")
        kind = (
            f"FerretDB {info['ferretdbVersion']}"
            if "ferretdbVersion" in info
            else f"MongoDB {info.get('version', '?')}"
        )
        host = self.client.address
        return f"{kind} at {host[0]}:{host[1]}" if host else kind

    def snapshot(self, with_kafka: bool = True) -> Snapshot:
        """Everything the KPIs, charts and job status need: one read of the figures, one of
        the status document (and Kafka's end offsets)."""
        snap = Snapshot()
        t0 = time.perf_counter()
        snap.figures, snap.ends = self.window()
        snap.status = self.job_status()
        snap.mongo_s = time.perf_counter() - t0
        if with_kafka and snap.status:
            t1 = time.perf_counter()
            snap.latest = self.kafka_latest(
                (o["topic"], o["partition"]) for o in snap.status.get("offsets") or []
            )
            snap.kafka_s = time.perf_counter() - t1
        return snap

    def window(self) -> tuple[list[dict[str, Any]], dict[str, datetime | None]]:
        """The figures of each clock's last N minutes, and each clock's newest minute.

        Every read is by `_id`, which every MongoDB-protocol server serves from its index
        (FerretDB v1 scans the collection for a range of `minute`: ~2 s over a day of figures):
        the document holding each clock's newest minute, then each minute's index document,
        which holds copies of that minute's figures (sinks/live_docs.py). So a refresh costs
        the minutes it shows, however long the job has run.
        """
        window = timedelta(minutes=self.dash.window_min)
        newest = self.minutely.find_one({"_id": NEWEST_ID}) or {}
        for name, clock in (("event", EVENT), ("kafka", KAFKA)):
            if newest.get(name) is not None:
                self.ends[clock] = newest[name]
        minutes = {
            end - timedelta(minutes=k)
            for end in self.ends.values()
            if end is not None
            for k in range(self.dash.window_min)
        }
        figures: list[dict[str, Any]] = []
        for minute in sorted(minutes):
            ms = int(minute.timestamp() * 1000)
            doc = self.minutely.find_one({"_id": minute_index_id(ms)}) or {}
            copies = (doc.get("figures") or {}).items()
            figures += [{**f, "_id": i.replace("\uff0e", ".")} for i, f in copies]
        clock_of = {m: clock for clock, metrics in CLOCKS.items() for m in metrics}
        ends = self.ends
        inside = [
            f
            for f in figures
            if f["metric"] in clock_of
            and (end := ends.get(clock_of[f["metric"]])) is not None
            and end - window < f["minute"] <= end
        ]
        return inside, dict(self.ends)

    def job_status(self) -> dict[str, Any] | None:
        """The status of the job's newest batch (one document per checkpoint)."""
        return next(iter(self.status.find().sort("at", DESCENDING).limit(1)), None)

    def kafka_latest(
        self, partitions: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], int] | None:
        """Kafka's end offset of each (topic, partition) now; None when the broker does not
        answer within DASHBOARD_KAFKA_TIMEOUT_S (the page then shows the job's own figure)."""
        from confluent_kafka import KafkaException, TopicPartition

        got: dict[tuple[str, int], int] = {}
        try:
            consumer = self._kafka()
            for topic, partition in partitions:
                tp = TopicPartition(topic, partition)
                _, high = consumer.get_watermark_offsets(
                    tp, timeout=self.dash.kafka_timeout_s, cached=False
                )
                got[(topic, partition)] = high
        except KafkaException:
            return None
        return got

    def _kafka(self) -> Any:
        from confluent_kafka import Consumer

        if self._consumer is None:
            conf = {
                **self.settings.kafka.client_config(),
                "group.id": "payments-dashboard",  # never joins the group: it only asks offsets
                "enable.auto.commit": False,
                "socket.timeout.ms": max(100, int(self.dash.kafka_timeout_s * 1000)),
            }
            self._consumer = Consumer(conf)
        return self._consumer

    def order(self, order_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """An order's outcome (by `_id`) and the payments with its order_id that no order
        claimed (orphans, by order_id)."""
        outcome = self.outcomes.find_one({"_id": order_id})
        orphans = list(self.orphans.find({"order_id": order_id}).sort("payment_ts").limit(100))
        return outcome, orphans

    def dead_letters(self, reason_class: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest dead letters, of one reason class (`missing_field` matches
        `missing_field:amount`) or of all; previews only, not the raw bytes."""
        query: dict[str, Any] = {}
        if reason_class:
            query["reason"] = {"$regex": f"^{re.escape(reason_class)}(:|$)"}
        cur = self.dead.find(query, RAW_FIELDS).sort("dead_lettered_at", DESCENDING).limit(limit)
        return list(cur)
