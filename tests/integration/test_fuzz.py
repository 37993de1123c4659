"""Issue 13 against the real job (Kafka -> Spark -> FerretDB): the fuzz producer's 10,000
malformed messages of every generated shape, interleaved with a valid dirty scenario. Every fuzz
message is a dead letter with the reason its generator named and its exact key and value bytes,
the scenario still equals its truth, nothing else is written, and the job never stops. Also: the
`producers.fuzz` command sends exactly what it generates, and its truth file says so."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from conf.settings import REPO_ROOT, Settings
from producers import fuzz, serde
from producers.kafka_io import Outgoing, Sender
from producers.scenario import ScenarioConfig, generate
from producers.truth import compute_truth, read_truth
from scripts.check_truth import differences, merge
from sinks.mongo_io import MongoSink
from tests.integration.helpers import create_topics, drain, isolated, mongo_db
from tests.integration.test_producers_kafka import read_all
from tests.integration.test_reconcile_e2e import mongo_state, small_batches
from tests.scenarios import DIRTY

pytestmark = pytest.mark.integration

N_FUZZ = 10_000
SEED = 21


def _letter(s: Settings, m: fuzz.FuzzMessage) -> tuple[Any, ...]:
    """The dead letter `m` must become: (topic, reason, raw key, raw value)."""
    topic = s.topics.orders if m.kind == serde.ORDERS else s.topics.payments
    return (topic, m.reason, m.key, m.value)


@pytest.fixture(scope="module")
def fuzz_run(spark: Any, settings: Settings, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    """One run of the job over a 300-order dirty scenario with the fuzz messages interleaved;
    what it wrote, what was expected, and how long the drain took."""
    name = f"fuzz-{uuid.uuid4().hex[:8]}"
    s = small_batches(isolated(settings, name, str(tmp_path_factory.mktemp(name) / "cp")), 1000)
    names = {serde.ORDERS: s.topics.orders, serde.PAYMENTS: s.topics.payments}
    rules = s.pipeline.rules()
    sc = generate(ScenarioConfig(n_orders=300, seed=SEED, event_rate=0.2, rules=rules, **DIRTY))
    messages = fuzz.generate(N_FUZZ, SEED, s.pipeline.max_message_bytes)
    truth = merge(
        [
            compute_truth(sc, s.topics.orders, s.topics.payments).to_json(),
            fuzz.fuzz_truth(messages, names, rules, SEED).to_json(),
        ]
    )
    create_topics(s)
    valid: list[Outgoing] = list(sc.emissions)
    mixed = fuzz.interleave(random.Random(SEED), valid, messages)
    sender = Sender(s, names, **{"message.max.bytes": fuzz.message_max_bytes(messages)})
    summary = sender.send_all(mixed, progress=False)
    assert (summary.acked, summary.failed) == (len(mixed), 0)
    t0 = time.monotonic()
    drain(spark, s, MongoSink(s))  # raises if the query failed
    seconds = time.monotonic() - t0
    outcomes, dead = mongo_state(s)
    print(f"fuzz drain: {len(mixed)} messages ({len(messages)} fuzz) in {seconds:.1f} s")
    yield {"s": s, "truth": truth, "outcomes": outcomes, "dead": dead, "messages": messages,
           "scenario": sc}  # fmt: skip
    db = mongo_db(s)  # ~230 MB of dead letters, and as much in Kafka
    db.client.drop_database(db.name)
    AdminClient(s.kafka.client_config()).delete_topics(list(names.values()))


def test_the_scenario_beside_the_fuzz_messages_equals_the_merged_truth(
    fuzz_run: dict[str, Any],
) -> None:
    """Orders, orphans and dead letters (topic, reason, raw value) exactly, nothing more."""
    assert differences(fuzz_run["truth"], fuzz_run["outcomes"], fuzz_run["dead"]) == []
    truth = fuzz_run["truth"]  # the scenario is not trivial (300 orders: none closes unpaid)
    assert {"PAID", "UNDERPAID", "OVERPAID", "PENDING"} <= {o["status"] for o in truth["orders"]}
    assert any(o["final"] for o in truth["orphans"])
    assert {"late", "invalid_json"} <= {d["reason"] for d in truth["dead_letters"][:-N_FUZZ]}


def test_every_fuzz_message_is_a_dead_letter_with_its_reason_and_exact_bytes(
    fuzz_run: dict[str, Any],
) -> None:
    messages: list[fuzz.FuzzMessage] = fuzz_run["messages"]
    assert {m.shape for m in messages} == set(fuzz.SHAPES)
    got = Counter(
        (d["topic"], d["reason"], d.get("raw_key"), d.get("raw_value")) for d in fuzz_run["dead"]
    )
    missing = Counter(_letter(fuzz_run["s"], m) for m in messages) - got
    shapes = Counter(m.shape for m in messages if _letter(fuzz_run["s"], m) in missing)
    assert not missing, f"not dead-lettered as expected, by shape: {dict(shapes)}"
    assert all("preview" in d and "reason" in d for d in fuzz_run["dead"])


def test_nothing_else_is_written(fuzz_run: dict[str, Any]) -> None:
    """No outcome, orphan or payment claim for a fuzz message's ids, and one dead letter each."""
    s: Settings = fuzz_run["s"]
    db = mongo_db(s)
    for doc in fuzz_run["outcomes"]:
        assert "fuzz" not in doc["_id"] and "fuzz" not in doc.get("order_id", "")
    claims = list(db[s.mongo.claims_collection].find({}, {"_id": 1, "order_id": 1}))
    assert claims and not any("fuzz" in c["_id"] + c["order_id"] for c in claims)
    scenario_dead = fuzz_run["truth"]["dead_letters"][:-N_FUZZ]  # merge() keeps the order
    assert not any("fuzz" in (d["key"] or "") for d in scenario_dead)
    assert len(fuzz_run["dead"]) == len(scenario_dead) + N_FUZZ


def test_the_command_sends_exactly_what_it_generates(
    settings: Settings, kafka_conf: dict[str, str], tmp_path: Path
) -> None:
    """`python -m producers.fuzz` against the broker: every generated message once, with its
    key and value (absent ones too), on its topic; the truth file holds them as dead letters."""
    name = f"fuzzcli-{uuid.uuid4().hex[:8]}"
    topics = {serde.ORDERS: f"{name}-orders", serde.PAYMENTS: f"{name}-payments"}
    truth_path = tmp_path / "fuzz.json"
    done = subprocess.run(
        [sys.executable, "-m", "producers.fuzz", "--count", "60", "--seed", "5",
         "--truth", str(truth_path), "--orders-topic", topics[serde.ORDERS],
         "--payments-topic", topics[serde.PAYMENTS], "--log-level", "WARNING"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "summary sent=60 acknowledged=60 failed=0" in done.stdout
    messages = fuzz.generate(60, 5, settings.pipeline.max_message_bytes)
    got = Counter((t, k, v) for t, _, k, v in read_all(kafka_conf, list(topics.values())))
    assert got == Counter((topics[m.kind], m.key, m.value) for m in messages)
    written = read_truth(truth_path).to_json()
    rules = settings.pipeline.rules()
    want = fuzz.fuzz_truth(messages, topics, rules, 5).to_json()
    assert json.loads(json.dumps(written)) == json.loads(json.dumps(want))
    AdminClient(settings.kafka.client_config()).delete_topics(list(topics.values()))
