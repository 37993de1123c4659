"""Kafka -> Spark (Spark's own Kafka source) -> MongoDB, on the real local stack."""

from __future__ import annotations

import pytest

from conf.settings import Settings
from contract.events import Item, Order, Payment
from producers.serde import encode, key_of
from sinks.mongo_io import MongoSink
from tests.integration.helpers import create_topics, docs, drain, produce, with_shape

pytestmark = pytest.mark.integration
T0 = 1_767_225_600_000
MIN = 60_000


def _order(i: int, ts: int, amount: int = 2500) -> Order:
    return Order(
        f"o{i}", "c1", "s1", "web", (Item("p1", "toys", 1, amount),), amount, "EUR", ts, ts + 50
    )


def _payment(pid: str, oid: str, ts: int, amount: int = 2500) -> Payment:
    return Payment(pid, oid, "card", amount, "EUR", ts, ts + 50)


def test_kafka_to_spark_to_mongo(spark, pipeline_settings: Settings) -> None:
    s = pipeline_settings
    create_topics(s)
    events = [_order(i, T0 + i * MIN) for i in range(6)]
    events += [
        _payment("p0", "o0", T0 + 30_000),
        _payment("p1", "o1", T0 + MIN + 1, 2000),
        _payment("p9", "o9", T0 + 2 * MIN),
    ]
    records = [
        (
            s.topics.orders if isinstance(e, Order) else s.topics.payments,
            key_of(e.order_id),
            encode(e),
        )
        for e in events
    ]
    records.append((s.topics.payments, b"o2", b'{"payment_id": 7'))
    produce(s, records)

    sink = MongoSink(s)
    sink.ensure_indexes()
    drain(spark, s, sink)

    out = docs(s, s.mongo.outcomes_collection)
    assert {k: out[k]["status"] for k in out} == {
        "o0": "PAID",
        "o1": "UNDERPAID",
        "o2": "PENDING",
        "o3": "PENDING",
        "o4": "PENDING",
        "o5": "PENDING",
    }
    assert out["o0"]["payment_ids"] == ["p0"] and out["o0"]["paid"] == 2500
    assert out["o1"]["balance"] == 500
    assert out["o0"]["order"]["customer_id"] == "c1"  # the order's own fields are stored
    assert all(not d["final"] for d in out.values())  # 5 min of event time < 15 min window
    dead = docs(s, s.mongo.dead_letters_collection)
    assert [(d["reason"], d["raw_key"], d["raw_value"]) for d in dead.values()] == [
        ("invalid_json", b"o2", b'{"payment_id": 7')
    ]


def test_outcomes_and_dead_letters_published_to_kafka(
    spark, pipeline_settings: Settings, kafka_conf
) -> None:
    from confluent_kafka import Consumer

    from producers.topics import ensure_topics
    from sinks.kafka_io import kafka_publisher

    s = pipeline_settings.model_copy(
        update={
            "pipeline": pipeline_settings.pipeline.model_copy(
                update={"publish_outcomes": True, "publish_dead_letters": True}
            )
        }
    )
    create_topics(s)
    ensure_topics(s, [s.topics.outcomes, s.topics.dead_letters], 3)
    produce(
        s,
        [
            (s.topics.orders, b"o1", encode(_order(1, T0))),
            (s.topics.payments, b"o1", encode(_payment("p1", "o1", T0 + 1000))),
            (s.topics.orders, b"o2", b"not json"),
        ],
    )
    drain(spark, s, MongoSink(s, publish=kafka_publisher(s)))

    c = Consumer({**kafka_conf, "group.id": "check", "auto.offset.reset": "earliest"})
    c.subscribe([s.topics.outcomes, s.topics.dead_letters])
    got: dict[str, list] = {s.topics.outcomes: [], s.topics.dead_letters: []}
    for _ in range(30):
        for m in c.consume(100, timeout=1.0):
            if m.error() is None:
                got[m.topic()].append(m)
        if got[s.topics.outcomes] and got[s.topics.dead_letters]:
            break
    c.close()
    assert [m.key() for m in got[s.topics.outcomes]] == [b"o1"]
    assert b'"status":"PAID"' in got[s.topics.outcomes][0].value()
    (dead,) = got[s.topics.dead_letters]
    # the message itself, key and value as read, with why and where it came from
    assert (dead.key(), dead.value()) == (b"o2", b"not json")
    headers = dict(dead.headers())
    assert headers["reason"] == b"invalid_json"
    assert headers["source"].decode().startswith(f"{s.topics.orders}:")


def test_checkpoint_layout_is_fixed_at_creation(pipeline_settings: Settings) -> None:
    from sinks.mongo_store import LayoutError

    s = pipeline_settings
    MongoSink(s).prepare()  # records the layout of this (new) checkpoint
    MongoSink(s).prepare()  # same layout: fine
    other = s.model_copy(
        update={
            "pipeline": s.pipeline.model_copy(
                update={"state_buckets": s.pipeline.state_buckets + 1}
            )
        }
    )
    with pytest.raises(LayoutError, match="PIPELINE_STATE_BUCKETS="):
        MongoSink(other).prepare()
    other_shape = with_shape(s, "state")
    with pytest.raises(LayoutError, match="PIPELINE_SHAPE=tws"):
        MongoSink(other_shape).prepare()
