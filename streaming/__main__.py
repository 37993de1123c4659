"""Run the reconciliation job.

    python -m streaming [--available-now] [--summary]
    spark-submit streaming/main.py ...      (same flags; on Dataproc set SPARK_PACKAGES)

Settings come from the environment and `.env` (see .env.example). SIGTERM or Ctrl-C stops the
query after the batch in flight; a restart resumes from the checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from typing import Any

from conf.settings import SettingsError, load_settings

logger = logging.getLogger("streaming")


def summary(settings: Any) -> dict[str, int]:
    """Outcomes and orphan payments by status, dead letters by reason, as stored in MongoDB."""
    from pymongo import MongoClient

    m = settings.mongo
    client: MongoClient[dict[str, Any]]
    with MongoClient(m.uri.get_secret_value(), serverSelectionTimeoutMS=10_000) as client:
        db: Any = client[m.database]
        counts: dict[str, int] = {}
        for name in (m.outcomes_collection, m.orphans_collection):
            for doc in db[name].find({}, {"status": 1, "final": 1}):
                key = f"{doc['status']}{'' if doc.get('final') else ' (provisional)'}"
                counts[key] = counts.get(key, 0) + 1
        for doc in db[m.dead_letters_collection].find({}, {"reason": 1}):
            key = f"dead letter: {doc['reason'].split(':')[0]}"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def kafka_refusal(settings: Any, timeout_s: float = 10.0) -> str | None:
    """The Kafka setting the broker refuses (credentials, CA, protocol, mechanism), as one line,
    found before Spark starts: Spark's Java client would retry such a setting for minutes. A
    broker that does not answer at all is only logged; Spark's source waits for it as before."""
    from conf.kafka_check import KafkaCheckError, check_kafka

    try:
        check_kafka(settings.kafka, timeout_s=timeout_s)
    except KafkaCheckError as exc:
        if exc.setting:
            return str(exc)
        logger.warning("kafka not answering yet, starting anyway: %s", exc)
    except ImportError:  # no confluent-kafka on this driver: Spark's client tells instead
        logger.warning("confluent-kafka missing: Kafka settings not checked before the start")
    return None


def stop_after_batch(query: Any, timeout_s: float = 600.0) -> None:
    """Stop the query once the batch in flight (if any) has committed, before the next one.

    `stop()` interrupts whatever runs; waiting for the trigger to go idle is not enough, since
    with back-to-back triggers it may never be. So wait for the in-flight batch's progress
    report (posted after its commit), then stop: the next batch is at most being planned or
    computed, and a restart redoes it from its offset log."""
    last = (query.lastProgress or {}).get("batchId", -1)
    deadline = time.monotonic() + timeout_s
    while query.isActive and time.monotonic() < deadline:
        if not query.status.get("isTriggerActive"):
            break
        if (query.lastProgress or {}).get("batchId", -1) != last:
            break
        time.sleep(0.1)
    query.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streaming",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--available-now",
        action="store_true",
        help="process what is in Kafka now, then stop (Trigger.AvailableNow)",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="print outcomes by status and dead letters by reason at the end",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics on this port (e.g. 9108)",
    )
    parser.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        help="the address the metrics server binds (0.0.0.0 inside a container)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"python -m streaming: error: {exc}", file=sys.stderr)
        return 2
    from streaming.log_upload import install

    install(settings.job_log, settings.gcs)  # JOB_LOG_FILE; uploaded with JOB_LOG_GCS_BUCKET

    refused = kafka_refusal(settings)
    if refused:
        print(f"python -m streaming: error: {refused}", file=sys.stderr)
        return 2

    from sinks.kafka_io import kafka_publisher
    from sinks.live_io import JobStatus
    from sinks.mongo_io import MongoSink, PaymentClaims
    from sinks.mongo_store import LayoutError, SinkError
    from streaming.job import QUERY_NAME, run_query
    from streaming.progress import watch
    from streaming.session import build_session

    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.metrics_addr)
        logger.info("metrics on http://%s:%d/metrics", args.metrics_addr, args.metrics_port)
    sink = MongoSink(settings, publish=kafka_publisher(settings))
    try:
        sink.prepare()
    except (SinkError, LayoutError) as exc:  # MongoDB unreachable, or a checkpoint's layout
        print(f"python -m streaming: error: {exc.code}: {exc}", file=sys.stderr)
        return 1
    spark = build_session(settings.spark, gcs=settings.gcs)
    watch(spark, QUERY_NAME, JobStatus(settings, sink.figures))
    stopping = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        logger.info("signal=%s: stopping after the current batch", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    query = run_query(spark, settings, sink, stopping, available_now=args.available_now,
                      claims=PaymentClaims(settings))  # fmt: skip
    if query.isActive:
        stop_after_batch(query)
    if query.exception() is not None:
        logger.error("query failed: %s", query.exception())
        return 1
    progress: dict[str, Any] = query.lastProgress or {}
    logger.info("query stopped last_batch_id=%s", progress.get("batchId"))
    if args.summary:
        for key, n in summary(settings).items():
            print(f"{key:40} {n:>8}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
