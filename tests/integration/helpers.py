"""Small I/O helpers shared by the integration tests (real Kafka, real MongoDB-protocol server)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pymongo import MongoClient

from conf.settings import STACK_DIR, Settings


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
                orphans=f"{name}-orphans",
                connect_errors=f"{name}-connect-errors",
            ),
            "mongo": MongoSettings(uri=s.mongo.uri, database=name.replace("-", "_")),
            "spark": s.spark.model_copy(update={"checkpoint_location": checkpoint}),
        }
    )


def job_env(s: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `python -m streaming` subprocess run with `s`'s topics, database,
    checkpoint, shape and batch size (plus `extra`)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "SPARK_ENV"))}
    env.update(
        TOPIC_ORDERS=s.topics.orders,
        TOPIC_PAYMENTS=s.topics.payments,
        TOPIC_DEAD_LETTERS=s.topics.dead_letters,
        TOPIC_OUTCOMES=s.topics.outcomes,
        TOPIC_ORPHANS=s.topics.orphans,
        MONGO_DATABASE=s.mongo.database,
        SPARK_CHECKPOINT_LOCATION=s.spark.checkpoint_location,
        PIPELINE_SHAPE=s.pipeline.shape,
    )
    if s.pipeline.max_offsets_per_trigger is not None:
        env["PIPELINE_MAX_OFFSETS_PER_TRIGGER"] = str(s.pipeline.max_offsets_per_trigger)
    env.update(extra)
    return env


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


def wait_for(check: Any, what: Any, timeout: float = 60.0, every: float = 0.2) -> Any:
    """Poll `check()` until it gives something true, and return that; past `timeout`, fail
    saying `what` (a text, or a function giving it then) was not seen."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"{said}: not within {timeout:.0f}s")
        time.sleep(every)


def docs(s: Settings, collection: str) -> dict[str, dict[str, Any]]:
    return {d["_id"]: d for d in mongo_db(s)[collection].find()}


def drain(spark: Any, s: Settings, sink: Any) -> None:
    """Run the job over everything in Kafka now (with the payment-id registry and the progress
    reports, as `python -m streaming` runs it), then stop it once its last report is in."""
    from sinks.live_io import JobStatus
    from sinks.mongo_io import PaymentClaims
    from streaming.job import start_query
    from streaming.progress import watch

    name = f"reconcile_{s.mongo.database}"  # the listener hears this test's query only
    listener = watch(spark, name, JobStatus(s, getattr(sink, "figures", None)))
    query = start_query(spark, s, sink, claims=PaymentClaims(s), query_name=name)
    try:
        query.processAllAvailable()
        last = (query.lastProgress or {}).get("batchId", -1)
        status = mongo_db(s)[s.mongo.status_collection]
        deadline = time.monotonic() + 30  # Spark's listener bus delivers reports asynchronously
        while time.monotonic() < deadline:
            if (status.find_one({"_id": s.spark.checkpoint_location}) or {}).get(
                "batch_id", -1
            ) >= last:
                break
            time.sleep(0.1)
    finally:
        query.stop()
        spark.streams.removeListener(listener)


def kafka_timestamps(s: Settings) -> dict[tuple[str, str | None, str | None], list[int]]:
    """Every record of the run's two topics, (topic, key, value as truth text) -> its Kafka
    timestamps, read back from the broker."""
    from confluent_kafka import Consumer, TopicPartition

    from producers.truth import as_text

    consumer = Consumer({**s.kafka.client_config(), "group.id": f"ts-{time.time_ns()}",
                         "enable.auto.commit": False})  # fmt: skip
    found: dict[tuple[str, str | None, str | None], list[int]] = {}
    try:
        for topic in (s.topics.orders, s.topics.payments):
            meta = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            for p in meta:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high <= low:
                    continue
                consumer.assign([TopicPartition(topic, p, low)])
                seen = 0
                while seen < high - low:
                    # no more than are left: consume() waits its whole timeout for the rest
                    for m in consumer.consume(min(500, high - low - seen), timeout=5):
                        if m.error():
                            continue
                        seen += 1
                        key = (topic, as_text(m.key()), as_text(m.value()))
                        found.setdefault(key, []).append(m.timestamp()[1])
    finally:
        consumer.close()
    return found


def assert_figures_equal_truth(s: Settings, truth: dict[str, Any]) -> None:
    """metrics_minutely holds exactly the truth's figures (event time) and the dead letters by
    the minute of their Kafka timestamps, each final exactly when the truth's watermark says;
    the latency figures count every document written at least once."""
    from contract import minutely as mn
    from contract.integers import stored_int
    from sinks.live_docs import MINUTE_INDEX, minute_index_id

    every = docs(s, s.mongo.minutely_collection)
    stored = {i: d for i, d in every.items() if d["metric"] in mn.METRICS}
    for i, d in stored.items():  # each minute's index document holds the same values
        copy = every[minute_index_id(int(i.split("|")[0]))]["figures"][i]
        assert copy["metric"] == d["metric"]
        assert all(copy[n] == d[n] for n in mn.VALUES[d["metric"]])
    n_index = sum(d["metric"] == MINUTE_INDEX for d in every.values())
    assert n_index == len({i.split("|")[0] for i in stored})
    expected: dict[str, tuple[dict[str, int], bool]] = {}
    w = truth["final_watermark_ms"]
    for minute, metric, dim, currency, *values in truth["minutely"]:
        value = dict(zip(mn.VALUES[metric], values, strict=True))
        final = mn.is_final(metric, minute, w)
        expected[mn.doc_id((minute, metric, dim, currency))] = (value, final)
    stamps = kafka_timestamps(s)
    dead: mn.Tally = {}
    for d in truth["dead_letters"]:
        kafka_ts = stamps[(d["topic"], d["key"], d["value"])].pop(0)
        mn.add(dead, *mn.dead_lettered(kafka_ts, d["reason"]))
    for key, (n,) in dead.items():
        expected[mn.doc_id(key)] = ({"count": n}, False)
    got = {
        i: ({n: stored_int(d[n]) for n in mn.VALUES[d["metric"]]}, d["final"])
        for i, d in stored.items()
        if d["metric"] != mn.LATENCY
    }
    assert got == expected
    latency = [d for d in stored.values() if d["metric"] == mn.LATENCY]
    assert latency and all(0 <= d["p50_ms"] <= d["p99_ms"] < 600_000 for d in latency)
    written = sum(len(docs(s, c)) for c in (s.mongo.outcomes_collection,
                  s.mongo.orphans_collection, s.mongo.dead_letters_collection))  # fmt: skip
    assert sum(d["count"] for d in latency) >= written


def worker_settings(base: Settings, home: str, name: str, port: int) -> Settings:
    from conf.settings import ConnectSettings, MongoSettings

    topics = base.topics.model_copy(
        update={
            "outcomes": f"{name}-outcomes",
            "orphans": f"{name}-orphans",
            "dead_letters": f"{name}-dlq",
            "connect_errors": f"{name}-connect-errors",
        }
    )
    return base.model_copy(
        update={
            "stack": base.stack.model_copy(update={"dir": home, "connect_port": port}),
            "connect": ConnectSettings(group_id=name, connector=f"{name}-sink"),
            "mongo": MongoSettings(uri=base.mongo.uri, database=name.replace("-", "_")),
            "topics": topics,
        }
    )


def topic_names(s: Settings) -> list[str]:
    return [s.topics.outcomes, s.topics.orphans, s.topics.dead_letters]


@contextmanager
def connect_worker(settings: Settings, home: Path, name: str, port: int) -> Iterator[Settings]:
    """A Kafka Connect worker of its own (scripts/connect.py) in `home`, REST on `port`, group,
    topics and database named after `name`, the sink RUNNING; yields its settings. At the end:
    the worker stopped, its database and topics deleted."""
    from scripts import connect

    (home / "connect").mkdir()
    for part in ("libs", "plugins"):  # the jars scripts/setup.sh installed; the rest is ours
        (home / "connect" / part).symlink_to(STACK_DIR / "connect" / part)
    s = worker_settings(settings, str(home), name, port)
    admin = AdminClient(s.kafka.client_config())
    topics = [NewTopic(t, s.topics.partitions, 1) for t in topic_names(s)]
    for future in admin.create_topics(topics).values():
        future.result(30)
    started = time.monotonic()
    try:
        connect.up(s)
        print(f"connect worker and sink RUNNING in {time.monotonic() - started:.1f}s")
        yield s
    finally:
        connect.down(s)
        mongo_db(s).client.drop_database(s.mongo.database)
        gid = s.connect.group_id
        internal = [f"{gid}.configs", f"{gid}.offsets", f"{gid}.status"]
        # (the errors topic exists only if a record failed; the internal ones if it started)
        for future in admin.delete_topics(
            [*topic_names(s), *internal, s.topics.connect_errors]
        ).values():
            future.exception(30)
