"""Small I/O helpers shared by the integration tests (real Kafka, real MongoDB-protocol server)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pymongo import MongoClient

from conf.settings import Settings


def with_shape(s: Settings, shape: str) -> Settings:
    """`s` with PIPELINE_SHAPE=`shape` (tws: the default; state)."""
    return s.model_copy(update={"pipeline": s.pipeline.model_copy(update={"shape": shape})})


def isolated(s: Settings, name: str, checkpoint: str) -> Settings:
    """`s` with its own topics, database and checkpoint, all named after `name`."""
    from conf.settings import MongoSettings, TopicSettings

    return s.model_copy(
        update={
            "topics": TopicSettings(
                orders=f"{name}-orders",
                payments=f"{name}-payments",
                dead_letters=f"{name}-dlq",
                outcomes=f"{name}-outcomes",
            ),
            "mongo": MongoSettings(uri=s.mongo.uri, database=name.replace("-", "_")),
            "spark": s.spark.model_copy(update={"checkpoint_location": checkpoint}),
        }
    )


def create_topics(s: Settings, partitions: int = 3) -> None:
    admin = AdminClient(s.kafka.client_config())
    futures = admin.create_topics(
        [NewTopic(t, partitions, 1) for t in (s.topics.orders, s.topics.payments)]
    )
    for f in futures.values():
        f.result(30)


def produce(s: Settings, records: Iterable[tuple[str, str | None, bytes]]) -> int:
    """(topic, key, value) records, acknowledged by the broker before returning."""
    p = Producer({**s.kafka.client_config(), "enable.idempotence": True, "acks": "all"})
    failed: list[Any] = []
    n = 0
    for topic, key, value in records:
        p.produce(
            topic,
            key=key,
            value=value,
            on_delivery=lambda err, _m: failed.append(err) if err else None,
        )
        p.poll(0)
        n += 1
    assert p.flush(30) == 0
    assert not failed, failed[:3]
    return n


def mongo_db(s: Settings) -> Any:
    client: MongoClient[dict[str, Any]] = MongoClient(s.mongo.uri.get_secret_value())
    return client[s.mongo.database]


def docs(s: Settings, collection: str) -> dict[str, dict[str, Any]]:
    return {d["_id"]: d for d in mongo_db(s)[collection].find()}


def drain(spark: Any, s: Settings, sink: Any) -> None:
    """Run the job over everything in Kafka now (with the payment-id registry, as
    `python -m streaming` runs it), then stop it."""
    from sinks.mongo_io import PaymentClaims
    from streaming.job import start_query

    query = start_query(spark, s, sink, claims=PaymentClaims(s))
    try:
        query.processAllAvailable()
    finally:
        query.stop()
