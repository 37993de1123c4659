"""The Kafka Connect path: a worker of this module's own (distributed mode, Kafka's jars, MongoDB's
sink connector; scripts/connect.py) on port 28383, its own group and storage topics, pointed at
the session's Kafka and FerretDB with a database of its own. Hand-made records in the shape the
job publishes (PIPELINE_WRITE_TO=kafka: key = _id, value = relaxed Extended JSON) must land as
documents: a later outcome merged into the first one, a replay harmless, a bad record moved to the
errors topic with Connect's error headers while the connector keeps running.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from bson import json_util
from confluent_kafka import Consumer, Producer

from conf.settings import Settings
from scripts import connect
from tests.integration.helpers import connect_worker, mongo_db, topic_names, wait_for

pytestmark = pytest.mark.integration

PORT = 28383
TIMEOUT_S = 60.0
T0 = datetime(2026, 1, 1, 12, 0, 0)
T1 = datetime(2026, 1, 1, 12, 3, 30, 250000)


def ejson(doc: dict[str, Any]) -> str:
    return json_util.dumps(doc, json_options=json_util.RELAXED_JSON_OPTIONS)


FIRST = {
    "_id": "order-1",
    "status": "pending",
    "order": {"order_id": "order-1", "amount_cents": 1250, "currency": "EUR", "created_at": T0},
    "timing": {"first_event_at": T0, "latency_ms": 12},
}
LATER = {  # an order's later outcome repeats neither `order` nor the first outcome's fields
    "_id": "order-1",
    "status": "paid",
    "payment_ids": ["pay-1"],
    "timing": {"first_event_at": T0, "closed_at": T1, "latency_ms": 40},
}
ORPHAN = {"_id": "pay-9", "status": "orphan", "payment": {"amount_cents": 99}, "seen_at": T1}
DEAD_LETTER = {
    "_id": "dl-1",
    "reason": "malformed_json",
    "source_topic": "payments",
    "raw_key": b"k-1",
    "raw_value": b"\x00\xff{not json",
}
SENTINEL = {"_id": "order-zz", "status": "sentinel"}


@pytest.fixture(scope="module")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("connect-stack")
    with connect_worker(settings, home, f"cw-{uuid.uuid4().hex[:8]}", PORT) as s:
        yield s


def produce(s: Settings, records: list[tuple[str, str, str, int | None]]) -> None:
    """(topic, key, value, partition) records, acknowledged before returning."""
    p = Producer({**s.kafka.client_config(), "acks": "all"})
    for topic, key, value, partition in records:
        extra = {} if partition is None else {"partition": partition}
        p.produce(topic, key=key, value=value, **extra)
    assert p.flush(30) == 0


def test_rest_api_shows_the_placeholder_not_the_uri(worker: Settings) -> None:
    url = f"{connect.base_url(worker)}/connectors/{worker.connect.connector}/config"
    status, config = connect.request("GET", url)
    assert status == 200
    assert config["connection.uri"] == "${env:MONGO_URI}"
    assert worker.mongo.uri.get_secret_value() not in json.dumps(config)
    assert config["topics"] == ",".join(topic_names(worker))
    body = connect.connector_status(worker)
    assert body is not None and len(body["tasks"]) == worker.topics.partitions  # tasks.max
    props = connect.service(worker).home / "config" / "worker.properties"
    assert os.stat(props).st_mode & 0o777 == 0o600


def test_records_become_merged_documents(worker: Settings) -> None:
    outcomes, t = worker.topics.outcomes, worker.topics
    started = time.monotonic()
    produce(worker, [(outcomes, "order-1", ejson(FIRST), 0)])
    db = mongo_db(worker)
    coll = db[worker.mongo.outcomes_collection]
    wait_for(lambda: coll.find_one({"_id": "order-1"}), "the first outcome", TIMEOUT_S)
    print(f"produce -> document in {time.monotonic() - started:.2f}s")
    # the later outcome, then the same record again (a replay), then a sentinel on the same
    # partition: once the sentinel is in, everything before it was written
    produce(
        worker,
        [
            (outcomes, "order-1", ejson(LATER), 0),
            (outcomes, "order-1", ejson(LATER), 0),
            (t.orphans, "pay-9", ejson(ORPHAN), None),
            (t.dead_letters, "dl-1", ejson(DEAD_LETTER), None),
            (outcomes, SENTINEL["_id"], ejson(SENTINEL), 0),
        ],
    )
    wait_for(lambda: coll.find_one({"_id": SENTINEL["_id"]}), "the sentinel")
    assert coll.find_one({"_id": "order-1"}) == {**FIRST, **LATER}
    orphans = db[worker.mongo.orphans_collection]
    assert wait_for(lambda: orphans.find_one({"_id": "pay-9"}), "the orphan") == ORPHAN
    letters = db[worker.mongo.dead_letters_collection]
    letter = wait_for(lambda: letters.find_one({"_id": "dl-1"}), "the dead letter")
    assert letter == DEAD_LETTER  # raw bytes back as BSON binary, exactly


def test_a_bad_record_goes_to_the_errors_topic(worker: Settings) -> None:
    outcomes = worker.topics.outcomes
    bad = [("bad-1", "not json {"), ("bad-2", ejson({"status": "no _id"}))]
    produce(worker, [(outcomes, key, value, 1) for key, value in bad])
    produce(worker, [(outcomes, "order-2", ejson({"_id": "order-2", "status": "paid"}), 1)])
    coll = mongo_db(worker)[worker.mongo.outcomes_collection]
    wait_for(lambda: coll.find_one({"_id": "order-2"}), "the record after the bad ones")
    consumer = Consumer(
        {
            **worker.kafka.client_config(),
            "group.id": f"{worker.connect.group_id}-check",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([worker.topics.connect_errors])
    seen: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(seen) < len(bad) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                seen[msg.key().decode()] = msg
    finally:
        consumer.close()
    assert sorted(seen) == ["bad-1", "bad-2"]
    assert seen["bad-1"].value() == b"not json {"
    for msg in seen.values():
        headers = {k: (v or b"").decode() for k, v in msg.headers() or []}
        assert headers["__connect.errors.topic"] == outcomes
        assert headers["__connect.errors.exception.class.name"]
    body = connect.connector_status(worker)
    assert body is not None
    states = [body["connector"]["state"], *(task["state"] for task in body["tasks"])]
    assert set(states) == {"RUNNING"}
