"""The streaming query, composed in one direction: source -> shape -> sink.

    streaming.source.read_events      both Kafka topics, parsed, validated, watermarked
    SHAPES[PIPELINE_SHAPE].build      the stateful reconciliation (documents of OUTPUT_SCHEMA),
                                      with the payment-id registry it is given
    writeStream.foreachBatch(sink)    sinks.mongo_io.MongoSink: each partition writes its rows

Nothing here computes; it only wires the parts and starts the query.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from conf.settings import Settings
from streaming import shape_state, shape_tws
from streaming.frames import Claims
from streaming.session import CHECKPOINT_FILE_MANAGER, checkpoint_file_manager, session_setting
from streaming.source import read_events

logger = logging.getLogger(__name__)
QUERY_NAME = "reconcile"

# Every shape: (events from read_events, settings, payment-id claims or None) -> documents of
# streaming.frames.OUTPUT_SCHEMA
SHAPES: dict[str, Callable[[DataFrame, Settings, Claims | None], DataFrame]] = {
    "tws": shape_tws.build,
    "state": shape_state.build,
}


def build_outputs(spark: SparkSession, s: Settings, claims: Claims | None = None) -> DataFrame:
    """The streaming DataFrame of documents to write."""
    parse = None
    if s.wire.pipeline_format == "avro":  # Confluent-framed Avro, schemas in the registry
        from streaming.avro_source import topic_parser

        parse = topic_parser(s)
    return SHAPES[s.pipeline.shape](read_events(spark, s, parse), s, claims)


def start_query(
    spark: SparkSession,
    s: Settings,
    sink: Callable[[DataFrame, int], Any],
    *,
    available_now: bool = False,
    query_name: str = QUERY_NAME,
    claims: Claims | None = None,
) -> StreamingQuery:
    """Start the query. `claims` (sinks.mongo_io.PaymentClaims) makes a payment_id pay one
    order only; without it that check is off (benchmarks of Spark's own cost)."""
    writer = (
        build_outputs(spark, s, claims)
        .writeStream.queryName(query_name)
        .outputMode("update")
        .foreachBatch(sink)
        .option("checkpointLocation", s.spark.checkpoint_location)
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{s.pipeline.trigger_interval_s} seconds")
    with session_setting(
        spark, CHECKPOINT_FILE_MANAGER, checkpoint_file_manager(s.spark.checkpoint_location)
    ):
        query = writer.start()
    logger.info(
        "query started name=%s id=%s shape=%s checkpoint=%s",
        query_name,
        query.id,
        s.pipeline.shape,
        s.spark.checkpoint_location,
    )
    return query


def run_query(
    spark: SparkSession,
    s: Settings,
    sink: Callable[[DataFrame, int], Any],
    stopping: threading.Event,
    *,
    available_now: bool = False,
    query_name: str = QUERY_NAME,
    claims: Claims | None = None,
) -> StreamingQuery:
    """Start the query and wait until it ends or `stopping` is set; returns it (still active
    when stopped by `stopping`: the caller stops it after its batch). A query that ended on a
    schema registered after it was planned is started again from its checkpoint, with it."""
    while True:
        query = start_query(
            spark, s, sink, available_now=available_now, query_name=query_name, claims=claims
        )
        while query.isActive and not stopping.is_set():
            try:
                query.awaitTermination(1)
            except Exception:  # noqa: BLE001 - the query failed; query.exception() says why
                break
        if query.isActive or stopping.is_set() or not schema_changed(query.exception()):
            return query
        logger.info("a new schema id in the stream: restarting the query with it")


def schema_changed(exc: BaseException | None) -> bool:
    """The query stopped because a message names a schema registered after it was planned
    (PIPELINE_FORMAT=avro, streaming/avro_source.py): start it again, from its checkpoint."""
    from streaming.avro_source import SCHEMA_CHANGED

    return exc is not None and SCHEMA_CHANGED in str(exc)
