"""PIPELINE_FORMAT=avro end to end with a real schema registry (Apicurio, started here on its own
port): the dirty scenario on the Avro wire equals its truth; a v2 order schema registered under
BACKWARD while the job runs is read; an incompatible one is refused; Avro's own dead letters."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from conf.settings import REPO_ROOT, FormatSettings, SchemaRegistrySettings, Settings
from contract import avro
from producers import avro_serde, registry_io, serde
from producers.scenario import ScenarioConfig, generate
from producers.truth import compute_truth
from scripts.check_truth import differences
from sinks.mongo_io import MongoSink, PaymentClaims
from streaming.job import run_query
from tests.integration.helpers import create_topics, docs, drain, produce, wait_for
from tests.integration.test_reconcile_e2e import assert_equals_truth, mongo_state, small_batches
from tests.scenarios import DIRTY

pytestmark = pytest.mark.integration
PORT = 28090
V2_TIMEOUT_S = 240.0
AVSC = REPO_ROOT / "contract" / "avsc"


@pytest.fixture(scope="module")
def registry_url(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from scripts import registry
    from scripts.stack import stop

    # its jar: scripts/setup.sh puts it under STACK_DIR (TEST_APICURIO_STACK_DIR: elsewhere)
    stack_dir = os.environ.get("TEST_APICURIO_STACK_DIR", settings.stack.dir)
    svc = registry.service_for(stack_dir, PORT, home=tmp_path_factory.mktemp("registry"))
    registry.launch(svc, 120)
    yield registry.address(svc)
    stop(svc)


def avro_settings(s: Settings, url: str) -> Settings:
    return s.model_copy(update={"wire": FormatSettings(pipeline_format="avro"),
                                "registry": SchemaRegistrySettings(url=url)})  # fmt: skip


def topics_of(s: Settings) -> dict[str, str]:
    return {serde.ORDERS: s.topics.orders, serde.PAYMENTS: s.topics.payments}


def writers(s: Settings) -> dict[int, Any]:
    return registry_io.writers(s, [avro.subject(t) for t in topics_of(s).values()])


def send(s: Settings, emissions: Any) -> None:
    names = topics_of(s)
    produce(s, ((names[e.topic], e.key, e.value) for e in emissions))


def test_the_dirty_scenario_in_avro_equals_the_truth(spark, pipeline_settings, registry_url):
    s = small_batches(avro_settings(pipeline_settings, registry_url), 150)
    cfg = ScenarioConfig(n_orders=250, seed=11, event_rate=0.2, rules=s.pipeline.rules(), **DIRTY)
    reg = registry_io.register(s, topics_of(s))
    scenario = avro_serde.to_avro(generate(cfg), reg.encode, reg.ids)
    create_topics(s)
    send(s, scenario.emissions)
    codec = avro_serde.AvroCodec(writers(s))
    truth = compute_truth(scenario, s.topics.orders, s.topics.payments, codec).to_json()
    reasons = {d["reason"].split(":")[0] for d in truth["dead_letters"]}
    assert {"late", "invalid_frame", "unknown_schema_id", "invalid_avro"} <= reasons
    sink = MongoSink(s)
    sink.ensure_indexes()
    drain(spark, s, sink)
    assert_equals_truth(s, truth)


def read_rows(spark: Any, name: str) -> int:
    """Input rows the active query named `name` has read so far (0 before it starts)."""
    active = [q for q in spark.streams.active if q.name == name]
    return sum(p["numInputRows"] for q in active for p in q.recentProgress)


def test_a_v2_schema_registered_while_the_job_runs_is_read(
    spark, pipeline_settings, registry_url, tmp_path, caplog
):
    s = small_batches(avro_settings(pipeline_settings, registry_url), 150)
    cfg = ScenarioConfig(n_orders=120, seed=5, event_rate=0.2, rules=s.pipeline.rules())
    base = generate(cfg)
    half = len(base.emissions) // 2
    v1 = registry_io.register(s, topics_of(s))
    first = avro_serde.to_avro(base, v1.encode, v1.ids).emissions[:half]
    create_topics(s)
    send(s, first)
    sink = MongoSink(s)
    sink.ensure_indexes()
    # the job as `python -m streaming` runs it (streaming.job.run_query), in a thread
    stopping, ended = threading.Event(), []
    job = threading.Thread(target=lambda: ended.append(run_query(
        spark, s, sink, stopping, claims=PaymentClaims(s), query_name="avro_v2")))  # fmt: skip
    with caplog.at_level(logging.INFO, logger="streaming.job"):
        job.start()
        try:
            wait_for(lambda: read_rows(spark, "avro_v2") >= len(first), "the first half read",
                     V2_TIMEOUT_S, every=0.5)  # fmt: skip
            # v2 (an added optional field) under BACKWARD, while the query runs
            v2 = registry_io.register(s, topics_of(s), {serde.ORDERS: AVSC / "order_v2.avsc"})
            assert v2.ids[serde.ORDERS] != v1.ids[serde.ORDERS]
            second = avro_serde.to_avro(base, v2.encode, v2.ids, frozenset({"loyalty_tier"}))
            send(s, second.emissions[half:])
            scenario = base.__class__(base.config, (*first, *second.emissions[half:]))
            codec = avro_serde.AvroCodec(writers(s))
            truth = compute_truth(scenario, s.topics.orders, s.topics.payments, codec).to_json()
            wait_for(
                lambda: differences(truth, *mongo_state(s)) == [],
                lambda: f"MongoDB equal to the truth {differences(truth, *mongo_state(s))}",
                V2_TIMEOUT_S,
                every=0.5,
            )
        finally:
            stopping.set()
            job.join(timeout=120)
            for query in ended:
                query.stop()
    # the new id ended the query once, and the job started it again with v2 in its plan
    assert "a new schema id in the stream: restarting the query" in caplog.text
    assert any(d["reason"] == "late" for d in truth["dead_letters"])
    assert any("loyalty_tier" in json.dumps(w) for w in writers(s).values())

    # an incompatible order schema (amount a string) is refused, and the producer says so
    bad = json.loads((AVSC / "order.avsc").read_text())
    next(f for f in bad["fields"] if f["name"] == "amount")["type"] = "string"
    path = tmp_path / "order_bad.avsc"
    path.write_text(json.dumps(bad))
    env = {**os.environ, "SCHEMA_REGISTRY_URL": registry_url, "TOPIC_ORDERS": s.topics.orders,
           "TOPIC_PAYMENTS": s.topics.payments}  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "producers.simulate", "--format", "avro", "--count", "5",
         "--order-schema", str(path)],
        env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    line = run.stderr.strip().splitlines()[-1]
    assert "error: schema order_bad.avsc for subject" in line and "HTTP 409" in line, line


def test_avro_dead_letters_have_their_reasons(spark, pipeline_settings, registry_url):
    s = avro_settings(pipeline_settings, registry_url)
    reg = registry_io.register(s, topics_of(s))
    order = next(e for e in generate(ScenarioConfig(n_orders=3, seed=1)).emissions
                 if e.topic == serde.ORDERS)  # fmt: skip
    good = reg.encode(serde.ORDERS, avro_serde.event_record(order.event))
    oid = order.event.order_id
    sid = reg.ids[serde.ORDERS]
    bad = {
        "magic": (b"\x01" + good[1:], "invalid_frame"),
        "short": (b"\x00\x00\x01", "invalid_frame"),
        "json": (serde.encode(order.event), "invalid_frame"),
        "unknown-id": (avro_serde.frame(avro_serde.UNKNOWN_ID, good[5:]), "unknown_schema_id"),
        "garbage": (avro_serde.frame(sid, avro_serde.GARBAGE), "invalid_avro"),
        "truncated": (good[:-3], "invalid_avro"),
        "payment-id": (avro_serde.frame(reg.ids[serde.PAYMENTS], good[5:]), "not_an_object"),
        "mis-keyed": (good, "key_mismatch"),
        # a string that is not UTF-8 (same length: the body stays well-formed Avro)
        "bad-utf8": (
            good.replace(
                order.event.customer_id.encode(), b"\xff" + order.event.customer_id.encode()[1:]
            ),
            "invalid_avro",
        ),
    }
    create_topics(s)
    produce(s, [(s.topics.orders, k, v) for k, (v, _) in bad.items()] +
            [(s.topics.orders, oid, good)])  # fmt: skip
    codec = avro_serde.AvroCodec(writers(s))
    for k, (v, why) in bad.items():  # the truth's decoder agrees with the job's
        assert codec.validate(serde.ORDERS, v, k.encode()) == why, k
    sink = MongoSink(s)
    sink.ensure_indexes()
    drain(spark, s, sink)
    dead = {d["key"]: d["reason"] for d in docs(s, s.mongo.dead_letters_collection).values()}
    assert dead == {k: why for k, (_, why) in bad.items()}
    assert set(docs(s, s.mongo.outcomes_collection)) == {oid}
