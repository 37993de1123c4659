"""PIPELINE_WRITE_TO=kafka, the pure part: each document the direct path would write becomes one
record, on its collection's topic, keyed by `_id`, whose Extended JSON reads back as the same
BSON document (binary included); unstorable field names become dead letters there too."""

from __future__ import annotations

import json

from bson import json_util

from contract.outputs import DEAD_LETTER, ORPHAN, OUTCOME, TALLY
from sinks.documents import REFUSED, Row, plan, whole
from sinks.kafka_docs import records
from tests.unit.test_documents import AT, apply_upsert, rows

TOPICS = {"outcomes": "t-out", "orphans": "t-orph", "dead_letters": "t-dlq"}


def test_each_document_is_one_record_on_its_collections_topic() -> None:
    out, stats = records(rows(), AT, TOPICS)
    assert [(t, k) for t, k, _ in out] == [
        ("t-out", "o1"), ("t-out", "o2"), ("t-orph", "p9"), ("t-dlq", "orders:0:7")
    ]  # fmt: skip
    assert stats.written == 4 and stats.rows == 4
    assert +stats.counts == {OUTCOME: 2, ORPHAN: 1, DEAD_LETTER: 1, "reason:unparseable": 1}
    assert sum(stats.latency.values()) == 3  # the rows with a Kafka timestamp


def test_the_value_reads_back_as_the_document_the_direct_path_writes() -> None:
    p = plan(rows(), AT)
    direct = [*p.outcomes, *p.orphans, *p.dead_letters]
    out, _ = records(rows(), AT, TOPICS)
    for w, (_, key, value) in zip(direct, out, strict=True):
        doc = json_util.loads(value)
        assert doc == whole(w) == apply_upsert(w.upsert._doc, w.doc_id)
        assert doc["_id"] == key
    dead = json_util.loads(out[-1][2])
    assert dead["raw_key"] == b"o\xff" and dead["raw_value"] == b"{bad\x00"  # $binary
    assert '"$binary"' in out[-1][2]
    later = json_util.loads(out[1][2])  # a later outcome: no `order`, merged by the connector
    assert "order" not in later and later["kind"] == OUTCOME


def test_a_field_name_mongodb_refuses_is_a_dead_letter_record() -> None:
    bad = Row(OUTCOME, "o7", json.dumps({"order_id": "o7", "x": {"a.b": 1}}), AT - 5)
    out, stats = records([bad], AT, TOPICS)
    assert [(t, k) for t, k, _ in out] == [("t-dlq", "refused:t-out:o7")]
    letter = json_util.loads(out[0][2])
    assert letter["reason"].startswith("unstorable_document") and "'a.b'" in letter["error"]
    assert stats.counts[REFUSED] == 1
    assert stats.tally  # counted in the per-minute dead letters, by its Kafka minute


def test_tally_rows_are_figures_not_records() -> None:
    tally = {"figures": [], "watermark": AT}
    out, stats = records([Row(TALLY, "tally", json.dumps(tally), None)], AT, TOPICS)
    assert out == [] and stats.watermark == AT and stats.written == 0
