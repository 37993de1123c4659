"""The producers against the real local broker: topics, counts, keys, co-partitioning, and an
interrupted `producers.simulate` that loses nothing it reported acknowledged."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from conf.settings import REPO_ROOT, Settings
from producers import serde
from producers.kafka_io import Sender
from producers.scenario import ScenarioConfig, generate
from producers.topics import ensure_topics
from tests.scenarios import DIRTY

pytestmark = pytest.mark.integration

Record = tuple[str, int, bytes, bytes]  # topic, partition, key, value


def _consumer(kafka_conf: dict[str, str], group: str) -> Consumer:
    return Consumer({**kafka_conf, "group.id": group, "enable.auto.commit": False})


def _sent_so_far(kafka_conf: dict[str, str], topic: str) -> dict[int, int]:
    """High watermarks while the producer may still be creating the topic: a partition whose
    leader is not elected yet counts as empty."""
    try:
        return high_watermarks(kafka_conf, topic)
    except KafkaException:
        return {}


def high_watermarks(kafka_conf: dict[str, str], topic: str) -> dict[int, int]:
    c = _consumer(kafka_conf, "probe")
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        c.close()


def read_all(kafka_conf: dict[str, str], topics: list[str], timeout_s: float = 60) -> list[Record]:
    """Every record of `topics`, from the beginning up to the current end of each partition."""
    ends = {(t, p): hw for t in topics for p, hw in high_watermarks(kafka_conf, t).items()}
    c = _consumer(kafka_conf, "reader")
    c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for (t, p), hw in ends.items() if hw])
    pending = {tp for tp, hw in ends.items() if hw}
    out: list[Record] = []
    deadline = time.monotonic() + timeout_s
    try:
        while pending and time.monotonic() < deadline:
            for m in c.consume(10_000, timeout=1.0):
                assert m.error() is None, m.error()
                out.append((m.topic(), m.partition(), m.key(), m.value()))
                if m.offset() + 1 >= ends[(m.topic(), m.partition())]:
                    pending.discard((m.topic(), m.partition()))
    finally:
        c.close()
    assert not pending, f"partitions not read to their end: {pending}"
    return out


def test_ensure_topics_is_idempotent(settings: Settings, unique: Callable[[str], str]) -> None:
    names = [unique("t") + "-a", unique("t") + "-b"]
    assert ensure_topics(settings, names, partitions=3) == {n: 3 for n in names}
    assert ensure_topics(settings, names, partitions=5) == {n: 3 for n in names}


def test_sender_writes_every_emission_keyed_and_co_partitioned(
    settings: Settings, kafka_conf: dict[str, str], unique: Callable[[str], str]
) -> None:
    name = unique("t")
    topics = {serde.ORDERS: f"{name}-orders", serde.PAYMENTS: f"{name}-payments"}
    ensure_topics(settings, list(topics.values()), partitions=3)
    scenario = generate(ScenarioConfig(n_orders=1500, seed=31, **DIRTY))
    summary = Sender(settings, topics).send_all(scenario.emissions, progress=False)
    total = len(scenario.emissions)
    assert (summary.sent, summary.acked, summary.failed) == (total, total, 0)

    records = read_all(kafka_conf, list(topics.values()))
    per_topic = Counter(t for t, _, _, _ in records)
    want = Counter(topics[e.topic] for e in scenario.emissions)
    assert per_topic == want and min(want.values()) > 1000
    assert Counter((t, k, v) for t, _, k, v in records) == Counter(
        (topics[e.topic], e.key, e.value) for e in scenario.emissions
    )
    # keys are the order_id of every valid message
    for t, _, key, value in records:
        kind = serde.ORDERS if t == topics[serde.ORDERS] else serde.PAYMENTS
        if serde.validate(kind, value) is None:
            assert key == serde.decode(kind, value).order_id.encode()
    # co-partitioned: one key, one partition number, in both topics
    partitions: dict[bytes, set[int]] = {}
    for _, p, key, _ in records:
        partitions.setdefault(key, set()).add(p)
    assert all(len(ps) == 1 for ps in partitions.values())
    both = {k for t, _, k, _ in records if t == topics[serde.ORDERS]} & {
        k for t, _, k, _ in records if t == topics[serde.PAYMENTS]
    }
    assert len(both) > 1000
    assert len({p for _, p, _, _ in records}) == 3
    # per partition, the order of the scenario is kept
    for topic in topics.values():
        for p in range(3):
            got = [v for t, q, _, v in records if (t, q) == (topic, p)]
            keys = {k for t, q, k, _ in records if (t, q) == (topic, p)}
            sent = [
                e.value for e in scenario.emissions if topics[e.topic] == topic and e.key in keys
            ]
            assert got == sent


def _run(module: str, args: list[str], settings: Settings) -> subprocess.Popen[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers}
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _summary(stdout: str) -> dict[str, Any]:
    m = re.search(r"summary sent=(\d+) acknowledged=(\d+) failed=(\d+) .*interrupted=(\w+)", stdout)
    assert m, stdout
    return {"sent": int(m[1]), "acked": int(m[2]), "failed": int(m[3]), "interrupted": m[4]}


def test_orders_and_payments_commands_split_one_scenario(
    settings: Settings, kafka_conf: dict[str, str], unique: Callable[[str], str]
) -> None:
    name = unique("t")
    flags = ["--count", "300", "--seed", "5", "--orders-topic", f"{name}-orders",
             "--payments-topic", f"{name}-payments"]  # fmt: skip
    procs = [_run("producers.orders", flags, settings), _run("producers.payments", flags, settings)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    scenario = generate(ScenarioConfig(n_orders=300, seed=5))
    for kind, (stdout, _) in zip(serde.KINDS, outs, strict=True):
        topic = f"{name}-{kind}"
        want = sorted(e.value for e in scenario.topic(kind))
        assert _summary(stdout)["acked"] == len(want)
        assert sorted(v for _, _, _, v in read_all(kafka_conf, [topic])) == want


def test_sigint_mid_run_loses_nothing_acknowledged(
    settings: Settings, kafka_conf: dict[str, str], unique: Callable[[str], str]
) -> None:
    name = unique("t")
    topics = [f"{name}-orders", f"{name}-payments"]
    count, rate = 20_000, 2_000
    proc = _run("producers.simulate", ["--count", str(count), "--rate", str(rate), "--seed", "9",
                                       "--orders-topic", topics[0], "--payments-topic", topics[1]],
                settings)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until it is really sending
            time.sleep(0.5)
            if sum(sum(_sent_so_far(kafka_conf, t).values()) for t in topics) > 500:
                break
        else:
            pytest.fail("simulate did not start sending")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    s = _summary(stdout)
    scenario = generate(ScenarioConfig(n_orders=count, seed=9))
    total = len(scenario.emissions)
    assert s["interrupted"] == "True" and s["failed"] == 0
    assert 500 < s["acked"] == s["sent"] < total
    records = read_all(kafka_conf, topics)
    assert len(records) == s["acked"]
    # exactly the first `sent` emissions of the scenario, nothing else, nothing twice
    names = {serde.ORDERS: topics[0], serde.PAYMENTS: topics[1]}
    assert Counter((t, v) for t, _, _, v in records) == Counter(
        (names[e.topic], e.value) for e in scenario.emissions[: s["sent"]]
    )
