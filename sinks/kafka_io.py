"""Optional: publish each batch's outcomes (and dead letters) to Kafka for downstream consumers,
as a Kafka Connect MongoDB sink or another service would read them.

Key = the document's `_id`, value = its computed JSON (dead letters: the raw message, with the
reason in a header). Delivery is at least once: a batch Spark replays after a crash is published
again, with identical keys and values, so consumers that keep the latest value per key are
unaffected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conf.settings import Settings
from contract.outputs import DEAD_LETTER, TALLY


def kafka_publisher(settings: Settings) -> Callable[[Any, int], None] | None:
    """A `publish(batch_df, batch_id)` for MongoSink, or None when nothing is to be published."""
    p, t = settings.pipeline, settings.topics
    if not (p.publish_outcomes or p.publish_dead_letters):
        return None
    options = settings.kafka.spark_options()

    def publish(batch_df: Any, batch_id: int) -> None:
        from pyspark.sql import functions as sf

        if p.publish_outcomes:
            (
                batch_df.where(~sf.col("kind").isin(DEAD_LETTER, TALLY))
                .select(sf.col("doc_id").alias("key"), sf.col("doc").alias("value"))
                .write.format("kafka")
                .options(**options)
                .option("topic", t.outcomes)
                .save()
            )
        if p.publish_dead_letters:
            reason = sf.get_json_object(sf.col("doc"), "$.reason")
            headers = sf.array(
                sf.struct(sf.lit("reason").alias("key"), reason.cast("binary").alias("value")),
                sf.struct(
                    sf.lit("source").alias("key"), sf.col("doc_id").cast("binary").alias("value")
                ),
            )
            (
                batch_df.where(sf.col("kind") == DEAD_LETTER)
                .select(
                    sf.col("raw_key").alias("key"),
                    sf.col("raw_value").alias("value"),
                    headers.alias("headers"),
                )
                .write.format("kafka")
                .options(**options)
                .option("topic", t.dead_letters)
                .save()
            )

    return publish
