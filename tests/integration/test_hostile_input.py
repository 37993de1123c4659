"""Hostile input against the real job (Kafka -> Spark -> FerretDB): every class of bad message
becomes a dead letter with its named reason and its exact key and value bytes, valid messages
with hostile extras are stored with the contract's fields only, and a valid scenario produced
in the same run still equals its ground truth. Also: late copies after the close change nothing,
the sink dead-letters what the database refuses, and generated garbage never stops the job."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conf.settings import Settings
from contract import wire
from contract.events import ORDER, PAYMENT, F, Order, Payment
from producers import serde
from producers.dirt import Dirt
from producers.scenario import Emission, Scenario, ScenarioConfig, generate
from producers.truth import compute_truth
from scripts.check_truth import differences
from sinks.documents import Row
from sinks.mongo_io import MongoSink, PartitionWriter
from tests.integration.helpers import (
    create_topics,
    docs,
    drain,
    isolated,
    mongo_db,
    produce,
    with_shape,
)
from tests.integration.test_reconcile_e2e import small_batches
from tests.scenarios import DIRTY

pytestmark = pytest.mark.integration
KIND = {serde.ORDERS: ORDER, serde.PAYMENTS: PAYMENT}


def _text(d: dict[str, Any]) -> str:
    return json.dumps(d, separators=(",", ":"))


Record = tuple[str, bytes | None, bytes]  # (topic kind, key, value)


Expected = tuple[str, str, bytes | None, bytes, str]  # (class, topic kind, key, value, reason)


def hostile(order: dict[str, Any], pay: dict[str, Any]) -> list[Expected]:
    """Several shapes of each class of invalid input, with the reason each must get."""
    o, p = _text(order), _text(pay)
    k = order[F.ORDER_ID].encode()
    amount = f'"amount":{pay[F.AMOUNT]}'
    return [
        ("not_utf8", serde.ORDERS, k, o.replace('"web"', '"w\xe9b"').encode("latin-1"),
         "invalid_utf8"),
        ("not_utf8", serde.ORDERS, k, o.encode("utf-16"), "invalid_utf8"),
        ("not_utf8", serde.PAYMENTS, k, p.encode()[:20] + b"\xff\xfe" + p.encode()[20:],
         "invalid_utf8"),
        ("not_utf8", serde.PAYMENTS, b"\xff\xfe\x00", p.encode(), "invalid_utf8:key"),
        ("not_utf8", serde.ORDERS, b"o-\xc3", o.encode(), "invalid_utf8:key"),
        ("nul", serde.ORDERS, b"o\x00k", o.encode() + b"\x00", "invalid_json"),
        ("nul", serde.PAYMENTS, k, p.replace('"card"', '"ca\x00rd"').encode(), "invalid_json"),
        ("nul", serde.PAYMENTS, k, _text({**pay, F.PAYMENT_ID: "p\x00"}).encode(),
         "invalid_value:payment_id"),
        ("lone_surrogate", serde.PAYMENTS, k, p.replace('"card"', '"\\ud800"').encode(),
         "invalid_utf8"),
        ("lone_surrogate", serde.ORDERS, k, o.replace("{", '{"\\udfff":1,', 1).encode(),
         "invalid_utf8"),
        ("lone_surrogate", serde.ORDERS, k, o.replace('"web"', '"w\\udc00"').encode(),
         "invalid_utf8"),
        ("lax_json", serde.ORDERS, k, (o + " x").encode(), "invalid_json"),
        ("lax_json", serde.ORDERS, k, (o + o).encode(), "invalid_json"),
        ("lax_json", serde.PAYMENTS, k, (p[:-1] + "/* c */}").encode(), "invalid_json"),
        ("lax_json", serde.PAYMENTS, k, p.replace('"', "'").encode(), "invalid_json"),
        ("lax_json", serde.PAYMENTS, k, p.replace(amount, '"amount":NaN').encode(),
         "invalid_json"),
        ("lax_json", serde.PAYMENTS, k, p.replace(amount, '"amount":0012').encode(),
         "invalid_json"),
        ("lax_json", serde.PAYMENTS, k, p.replace("{", '{"amount":1,', 1).encode(),
         "invalid_json"),
        ("lax_json", serde.ORDERS, k, b"[1,2]", "not_an_object"),
        ("keys", serde.PAYMENTS, b"another-order", p.encode(), "key_mismatch"),
        ("keys", serde.ORDERS, None, o.encode(), "key_mismatch"),
        ("keys", serde.ORDERS, b"", o.encode(), "key_mismatch"),
        ("numbers", serde.PAYMENTS, k, _text({**pay, F.AMOUNT: 2**64}).encode(),
         "out_of_range:amount"),
        ("numbers", serde.PAYMENTS, k, _text({**pay, F.AMOUNT: 12.0}).encode(),
         "wrong_type:amount"),
        ("numbers", serde.PAYMENTS, k, p.replace(amount, '"amount":1e3').encode(),
         "wrong_type:amount"),
        ("coerced_types", serde.PAYMENTS, k, _text({**pay, F.AMOUNT: "1299"}).encode(),
         "wrong_type:amount"),
        ("coerced_types", serde.PAYMENTS, k, _text({**pay, F.ORDER_ID: 12345}).encode(),
         "wrong_type:order_id"),
        ("coerced_types", serde.PAYMENTS, k, _text({**pay, F.METHOD: True}).encode(),
         "wrong_type:method"),
        ("timestamps", serde.PAYMENTS, k,
         _text({**pay, F.PAYMENT_TS: pay[F.PAYMENT_TS][:19]}).encode(),
         "wrong_type:payment_ts"),  # no offset
        ("timestamps", serde.PAYMENTS, k,
         _text({**pay, F.PAYMENT_TS: pay[F.PAYMENT_TS].replace("T", " ")}).encode(),
         "wrong_type:payment_ts"),
        ("timestamps", serde.ORDERS, k,
         _text({**order, F.ORDER_TS: 1_767_225_600_000}).encode(), "wrong_type:order_ts"),
    ]  # fmt: skip


CLASSES = ["coerced_types", "keys", "lax_json", "lone_surrogate", "not_utf8", "nul", "numbers",
           "timestamps"]  # fmt: skip


def future(pay: dict[str, Any]) -> Record:
    """A valid payment dated far past its Kafka timestamp (`future_event_time`). The ground
    truth cannot know Kafka timestamps, so this one is checked apart from it."""
    dated = {**pay, F.PAYMENT_ID: "hp-future", F.PAYMENT_TS: "2099-01-01T00:00:00Z"}
    return (serde.PAYMENTS, pay[F.ORDER_ID].encode(), _text(dated).encode())


def _now_ms() -> int:
    return int(time.time() * 1000)


def hostile_valid(order: dict[str, Any], pay: dict[str, Any]) -> list[tuple[str, bytes, bytes]]:
    """Valid events with hostile extras: names MongoDB cannot store, deep nesting, `-0`, an
    offset timestamp, an escaped key name. Each is stored with the contract's fields only."""
    deep: Any = 1
    for _ in range(120):
        deep = {"x": deep}
    o1 = {**order, "$set": {"status": "PAID"}, "promo.code": "X", "a\u0000b": 1, "deep": deep}
    o2 = {**order, F.ORDER_ID: order[F.ORDER_ID] + "-b", F.AMOUNT: 0}
    text2 = _text(o2).replace('"amount":0', '"amount":-0').replace('"order_id"', '"\\u006frder_id"')
    ts = serde.parse_iso(order[F.ORDER_TS])
    o3 = {
        **order,
        F.ORDER_ID: order[F.ORDER_ID] + "-c",
        F.ORDER_TS: serde.iso(ts + 2 * 3600_000)[:-1] + "+02:00",
    }  # fmt: skip  same instant
    p1 = {**pay, "$inc": {"paid": 10**6}, F.ORDER_ID: order[F.ORDER_ID]}
    return [
        (serde.ORDERS, order[F.ORDER_ID].encode(), _text(o1).encode()),
        (serde.ORDERS, o2[F.ORDER_ID].encode(), text2.encode()),
        (serde.ORDERS, o3[F.ORDER_ID].encode(), _text(o3).encode()),
        (serde.PAYMENTS, order[F.ORDER_ID].encode(), _text(p1).encode()),
    ]


def _scenario(s: Settings, n_orders: int = 600, seed: int = 11) -> Scenario:
    cfg = ScenarioConfig(
        n_orders=n_orders, seed=seed, event_rate=0.2, rules=s.pipeline.rules(), **DIRTY
    )
    return generate(cfg)


def _append(sc: Scenario, records: list[Record]) -> Scenario:
    extra = tuple(Emission(t, k, v, Dirt.CLEAN, None, 0) for t, k, v in records)  # type: ignore[arg-type]
    return Scenario(sc.config, sc.emissions + extra)


def _produce(s: Settings, records: list[Record]) -> None:
    names = {serde.ORDERS: s.topics.orders, serde.PAYMENTS: s.topics.payments}
    produce(s, ((names[t], k, v) for t, k, v in records))


def _all_docs(s: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    outcomes = [
        *docs(s, s.mongo.outcomes_collection).values(),
        *docs(s, s.mongo.orphans_collection).values(),
    ]
    return outcomes, list(docs(s, s.mongo.dead_letters_collection).values())


def _drained_scenario(spark: Any, s: Settings, seed: int) -> tuple[Scenario, dict[str, Any]]:
    """A dirty scenario produced and drained by the job, which equals its truth; both returned."""
    sc = _scenario(s, seed=seed)
    truth = compute_truth(sc, s.topics.orders, s.topics.payments).to_json()
    create_topics(s)
    _produce(s, [(e.topic, e.key, e.value) for e in sc.emissions])
    drain(spark, s, MongoSink(s))
    assert differences(truth, *_all_docs(s)) == []
    return sc, truth


def _late_enough(sc: Scenario) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new order and its payment dated one minute before the scenario's newest event: never
    late, and not moving the watermark."""
    newest = max(e.event.event_ts for e in sc.emissions if e.event is not None)
    at = newest - 60_000
    order = serde.order_dict(
        Order("hx-1", "c-1", "s-1", "web", (), 1299, "EUR", at, at)  # no items: allowed
    )
    pay = serde.payment_dict(Payment("hp-1", "hx-1", "card", 1299, "EUR", at + 1000, at + 1000))
    return order, pay


@pytest.fixture(scope="module")
def hostile_run(spark: Any, settings: Settings, tmp_path_factory: Any) -> dict[str, Any]:
    """One run of the job over a valid dirty scenario with every class of hostile input mixed
    in (produced after it, into the same topics); what it wrote, and what was expected."""
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    s = small_batches(isolated(settings, name, str(tmp_path_factory.mktemp(name) / "cp")))
    sc = _scenario(s)
    order, pay = _late_enough(sc)
    bad, good, ahead = hostile(order, pay), hostile_valid(order, pay), future(pay)
    full = _append(sc, [*((t, k, v) for _, t, k, v, _ in bad), *good])
    truth = compute_truth(full, s.topics.orders, s.topics.payments).to_json()
    create_topics(s)
    _produce(s, [(e.topic, e.key, e.value) for e in sc.emissions])
    _produce(s, [*((t, k, v) for _, t, k, v, _ in bad), *good, ahead])
    drain(spark, s, MongoSink(s))
    outcomes, dead = _all_docs(s)
    return {"s": s, "truth": truth, "outcomes": outcomes, "dead": dead, "bad": bad,
            "ahead": ahead}  # fmt: skip


def test_the_valid_scenario_beside_hostile_input_equals_its_truth(
    hostile_run: dict[str, Any],
) -> None:
    assert {r[0] for r in hostile_run["bad"]} == set(CLASSES)
    dead = [d for d in hostile_run["dead"] if d["reason"] != "future_event_time"]
    assert differences(hostile_run["truth"], hostile_run["outcomes"], dead) == []
    for d in hostile_run["dead"]:
        assert isinstance(d["raw_value"], bytes) and isinstance(d["preview"], str)


@pytest.mark.parametrize("cls", CLASSES)
def test_each_hostile_message_is_a_dead_letter_with_its_reason_and_exact_bytes(
    hostile_run: dict[str, Any], cls: str
) -> None:
    rows = [r for r in hostile_run["bad"] if r[0] == cls]
    limits = {"max_future_ms": 300_000, "kafka_ts": _now_ms()}
    for _, kind, key, value, want in rows:  # the parser's verdict, stated independently here
        assert wire.check(KIND[kind], key, value, **limits) == want, value[:80]
    got = Counter((d["reason"], d["raw_key"], d["raw_value"]) for d in hostile_run["dead"])
    want = Counter((r, k, v) for _, _, k, v, r in rows)
    assert rows and want - got == Counter(), "each message once, key and value exactly as sent"


def test_names_mongodb_cannot_store_are_dropped_with_the_rest_of_the_unknown_fields(
    hostile_run: dict[str, Any],
) -> None:
    """`$set`, `promo.code`, a NUL in a name, 120 levels of nesting, a `$inc` in a payment: the
    events are valid, and stored with the contract's fields only."""
    by_id = {d["_id"]: d for d in hostile_run["outcomes"]}
    first = by_id["hx-1"]
    assert first["payment_ids"] == ["hp-1"] and first["paid"] == 1299  # no `$inc` applied
    assert set(first["order"]) == {F.CUSTOMER_ID, F.STORE_ID, F.CHANNEL, F.ITEMS}
    assert not any(k.startswith("$") or "." in k for k in first)
    assert by_id["hx-1-b"]["amount"] == 0  # `-0`, with an escaped key name
    assert by_id["hx-1-c"]["order_ts"] == first["order_ts"]  # +02:00: the same instant


def test_an_event_far_past_its_kafka_time_is_a_dead_letter(hostile_run: dict[str, Any]) -> None:
    ahead = hostile_run["ahead"]
    limits = {"max_future_ms": 300_000, "kafka_ts": _now_ms()}
    assert wire.check(PAYMENT, ahead[1], ahead[2], **limits) == "future_event_time"
    (far,) = [d for d in hostile_run["dead"] if d["reason"] == "future_event_time"]
    assert (far["raw_key"], far["raw_value"]) == ahead[1:]


def test_a_value_larger_than_mongodb_holds_is_kept_in_part(
    spark: Any, pipeline_settings: Settings
) -> None:
    """A 17 MB message (the topic allows it): a `too_large` dead letter keeping the first 8 MiB
    with the size and SHA-256, and the job goes on."""
    s = pipeline_settings
    big = 17 * 1_048_576
    admin = AdminClient(s.kafka.client_config())
    topics = [NewTopic(t, 1, 1, config={"max.message.bytes": str(2 * big)})
              for t in (s.topics.orders, s.topics.payments)]  # fmt: skip
    for f in admin.create_topics(topics).values():
        f.result(30)
    value = b'{"order_id":"' + b"x" * big + b'"}'
    ok = Order("o-ok", "c", "s", "web", (), 100, "EUR", 1_767_225_600_000, 1_767_225_600_000)
    p = Producer({**s.kafka.client_config(), "message.max.bytes": 2 * big})
    p.produce(s.topics.orders, key=b"o-big", value=value)
    p.produce(s.topics.orders, key=b"o-ok", value=serde.encode(ok))
    assert p.flush(60) == 0
    drain(spark, s, MongoSink(s))
    (dead,) = docs(s, s.mongo.dead_letters_collection).values()
    assert dead["reason"] == "too_large" and dead["raw_key"] == b"o-big"
    assert dead["raw_value_truncated"] is True and dead["raw_value_size"] == len(value)
    assert dead["raw_value"] == value[: 8 * 1_048_576]
    assert dead["raw_value_sha256"] == hashlib.sha256(value).hexdigest()
    assert docs(s, s.mongo.outcomes_collection)["o-ok"]["status"] == "PENDING"


@pytest.mark.parametrize("shape", ["tws", "state"])
def test_copies_after_the_close_change_nothing(
    spark: Any, pipeline_settings: Settings, shape: str
) -> None:
    """Copies of closed orders, of their matched payments and of orphaned payments, with other
    content and event times above the watermark, arriving after the close: duplicates."""
    s = small_batches(with_shape(pipeline_settings, shape))
    sc, truth = _drained_scenario(spark, s, seed=13)

    at = truth["final_watermark_ms"] + 60_000  # above the watermark, below the newest event
    closed = [o for o in truth["orders"] if o["final"] and o["payment_ids"]][:5]
    orphans = [o for o in truth["orphans"] if o["final"]][:3]
    assert closed and orphans
    copies: list[Record] = []
    for o in closed:
        copy = Order(o["order_id"], "c-x", "s-x", "app", (), o["amount"] + 7, "USD", at, at)
        copies.append((serde.ORDERS, o["order_id"].encode(), serde.encode(copy)))
        pid = o["payment_ids"][0]
        pay = Payment(pid, o["order_id"], "card", 1, "USD", at + 1, at + 1)
        copies.append((serde.PAYMENTS, o["order_id"].encode(), serde.encode(pay)))
    for o in orphans:
        pay = Payment(o["payment_id"], o["order_id"], "card", 2, "USD", at + 2, at + 2)
        copies.append((serde.PAYMENTS, o["order_id"].encode(), serde.encode(pay)))
    # the truth, with the copies: unchanged (the first copy wins)
    again = compute_truth(_append(sc, copies), s.topics.orders, s.topics.payments).to_json()
    assert (again["orders"], again["orphans"]) == (truth["orders"], truth["orphans"])
    _produce(s, copies)
    drain(spark, s, MongoSink(s))
    assert differences(truth, *_all_docs(s)) == []


def test_sink_dead_letters_documents_the_database_refuses(pipeline_settings: Settings) -> None:
    """The last line of defence: a document refused for good (a `$` or dotted key, a NUL in a
    key, a lone surrogate, an integer beyond 64 bits) is dead-lettered with the error; the other
    documents of the partition are written, and the partition's marker too."""
    s = pipeline_settings
    MongoSink(s).prepare()
    ok = {"order_id": "ok", "status": "PENDING", "final": False}
    hostile_docs = {
        "dollar": {"order_id": "d", "$set": 1},
        "dot": {"order_id": "e", "a.b": 1},
        "nul": {"order_id": "n", "a\x00b": 1},
        "surrogate": {"order_id": "s", "v": "\ud800"},
        "bigint": {"order_id": "b", "v": 2**70},
    }
    rows = [Row("outcome", "ok", json.dumps(ok), None)]
    # first outcomes (`order` present): inserted, where a dotted key is not silently nested
    rows += [
        Row("outcome", k, json.dumps({**d, "order": {}}), None) for k, d in hostile_docs.items()
    ]
    stats = PartitionWriter(s).write_rows(rows, batch_id=0, partition=0)
    assert stats.counts["refused"] == len(hostile_docs)
    db = mongo_db(s)
    assert db[s.mongo.outcomes_collection].find_one({"_id": "ok"})["status"] == "PENDING"
    refused = {d["doc_id"]: d for d in db[s.mongo.dead_letters_collection].find()}
    assert set(refused) == set(hostile_docs)
    assert all(d["reason"] == "unstorable_document" and d["error"] for d in refused.values())
    marker = PartitionWriter(s).partition_marker_id(0)
    assert db[s.mongo.batches_collection].find_one({"_id": marker})


_keys = st.one_of(st.text(max_size=6), st.sampled_from(["$set", "a.b", "a\x00b", "_id", "\ud800"]))
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.dictionaries(_keys, _values, max_size=5), min_size=1, max_size=20))
def test_generated_documents_never_stop_the_sink(
    settings: Settings, tmp_path_factory: Any, generated: list[dict[str, Any]]
) -> None:
    """Whatever documents reach the sink, writing a partition never fails for them: each is
    stored, or dead-lettered as `unstorable_document` with the error."""
    name = f"sinkgen-{uuid.uuid4().hex[:8]}"
    s = isolated(settings, name, str(tmp_path_factory.mktemp(name) / "cp"))
    rows = [
        Row("outcome", f"g{i}", json.dumps({**d, "order": {}}), None)  # first outcomes: inserts
        for i, d in enumerate(generated)
    ]
    stats = PartitionWriter(s).write_rows(rows, batch_id=0, partition=0)
    db = mongo_db(s)
    stored = {d["_id"] for d in db[s.mongo.outcomes_collection].find({}, {"_id": 1})}
    refused = {d["doc_id"] for d in db[s.mongo.dead_letters_collection].find()}
    assert stored | refused == {r.doc_id for r in rows} and not stored & refused
    assert stats.counts["refused"] == len(refused)
    db.client.drop_database(db.name)


_garbage = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=10,
    ).map(lambda v: json.dumps(v, allow_nan=True).encode("utf-8", "surrogatepass")),
)


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.sampled_from(serde.KINDS), st.one_of(st.none(), st.binary(max_size=8)), _garbage
        ),
        min_size=60,
        max_size=120,
    )
)
def test_generated_garbage_never_stops_the_job(
    spark: Any,
    settings: Settings,
    tmp_path_factory: Any,
    records: list[Record],
) -> None:
    """Whatever bytes arrive, the query finishes its batches, and every message is accounted for:
    a dead letter with the parser's reason and its exact bytes, or a valid event."""
    name = f"garbage-{uuid.uuid4().hex[:8]}"
    s = isolated(settings, name, str(tmp_path_factory.mktemp(name) / "checkpoint"))
    create_topics(s, partitions=1)
    _produce(s, records)
    drain(spark, s, MongoSink(s))
    dead = list(docs(s, s.mongo.dead_letters_collection).values())
    limits = {"max_future_ms": 300_000, "kafka_ts": _now_ms()}
    want = Counter(
        (r, k, v) for t, k, v in records
        if (r := wire.check(KIND[t], k, v, **limits)) is not None
    )  # fmt: skip
    assert Counter((d["reason"], d["raw_key"], d["raw_value"]) for d in dead) == want


def _bucket(spark: Any, order_id: str, buckets: int) -> int:
    """The state bucket Spark routes `order_id` to (streaming/source.py's expression)."""
    row = spark.sql(f"SELECT pmod(xxhash64('{order_id}'), {buckets}) AS b").first()
    return int(row["b"])


@pytest.mark.parametrize("shape", ["tws", "state"])
def test_a_payment_id_pays_one_order(spark: Any, pipeline_settings: Settings, shape: str) -> None:
    """A payment_id already matched to one order, used again for another order (whose state sits
    in another bucket): the second use is a `payment_id_reused` dead letter with its bytes, the
    first order keeps it, the second is not paid by it; a plain copy stays a duplicate."""
    s = small_batches(with_shape(pipeline_settings, shape))
    sc, truth = _drained_scenario(spark, s, seed=17)

    w = truth["final_watermark_ms"]
    window = s.pipeline.window_after_s * 1000
    open_orders = {o["order_id"] for o in truth["orders"] if not o["final"]}
    by_id = {e.event.order_id: e.event for e in sc.emissions if isinstance(e.event, Order)}
    target = max((by_id[o] for o in open_orders), key=lambda o: o.order_ts)
    assert target.order_ts + window > w + 2000  # a payment at w + 1 s would match it
    paid = [o for o in truth["orders"] if o["payment_ids"] and o["order_id"] != target.order_id]
    n = s.pipeline.state_buckets
    donor = next(
        o for o in paid if _bucket(spark, o["order_id"], n) != _bucket(spark, target.order_id, n)
    )
    pid = donor["payment_ids"][0]
    at = w + 1000
    reuse = Payment(pid, target.order_id, "card", target.amount, "EUR", at, at)
    copy = Payment(pid, donor["order_id"], "card", 1, "EUR", at, at)
    records: list[Record] = [
        (serde.PAYMENTS, target.order_id.encode(), serde.encode(reuse)),
        (serde.PAYMENTS, donor["order_id"].encode(), serde.encode(copy)),
    ]
    full = compute_truth(_append(sc, records), s.topics.orders, s.topics.payments).to_json()
    assert [d["reason"] for d in full["dead_letters"][-1:]] == ["payment_id_reused"]
    assert (full["orders"], full["orphans"]) == (truth["orders"], truth["orphans"])
    _produce(s, records)
    drain(spark, s, MongoSink(s))

    outcomes, dead = _all_docs(s)
    assert differences(full, outcomes, dead) == []
    (reused,) = [d for d in dead if d["reason"] == "payment_id_reused"]
    assert (reused["raw_key"], reused["raw_value"]) == records[0][1:]
    claim = mongo_db(s)[s.mongo.claims_collection].find_one({"_id": pid})
    assert claim["order_id"] == donor["order_id"]
