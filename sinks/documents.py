"""From the job's output rows to MongoDB writes. Pure: no network.

Every write is keyed by `_id` and sets the whole computed state (never `$inc`), so writing the
same rows twice leaves the same documents. Processing-time fields live under `timing` and are
set with `$min`, so a replay cannot move them either.

A document the job emits for the first time (an order's first outcome, an orphan payment, a dead
letter) is planned as an insert, which costs a MongoDB-protocol server far less than an upsert
(FerretDB/SQLite: ~6,000 inserts/s against ~1,000 upserts of existing documents/s). Each insert
carries its upsert as a fallback: when the document exists already (a batch replayed after a
crash), the sink applies the upsert instead, which leaves the same document.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne

from contract import minutely
from contract.events import Reason, reason
from contract.outputs import DEAD_LETTER, ORPHAN, OUTCOME, TALLY
from contract.wire import preview

REFUSED = "refused"  # the count of documents refused for good (dead-lettered), in batch stats


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    doc_id: str
    doc: str
    kafka_ts: int | None
    raw_key: bytes | None = None
    raw_value: bytes | None = None


def rows_of(batch: Any) -> list[Row]:
    """The documents to write, from an Arrow record batch of the job's output rows
    (OUTPUT_SCHEMA). Arrow, not pandas: a long column holding a null would reach pandas as
    float64 and lose every integer above 2**53."""
    cols = [batch.column(name).to_pylist() for name in Row.__slots__]
    return [Row(*values) for values in zip(*cols, strict=True)]


@dataclass(frozen=True, slots=True)
class Write:
    """One document's write: `insert` (the whole document) when the job emits it for the first
    time, else None; `upsert` always (the fallback when the insert finds the document there)."""

    doc_id: str
    upsert: UpdateOne
    insert: dict[str, Any] | None = None


@dataclass(slots=True)
class Plan:
    outcomes: list[Write]
    orphans: list[Write]
    dead_letters: list[Write]
    counts: dict[str, int]
    fingerprint: str
    tally: minutely.Tally  # the batch's additions to the per-minute figures
    watermark: int | None  # the watermark the shape computed them under


def _write(doc_id: str, fields: dict[str, Any], at_least: dict[str, int], first: bool) -> Write:
    """`fields` are `$set`, `at_least` (dotted paths) `$min`; `first`: also plan an insert.
    The document's `_id` is `doc_id`, whatever `fields` hold."""
    fields = {k: v for k, v in fields.items() if k != "_id"}
    upsert = UpdateOne({"_id": doc_id}, {"$set": fields, "$min": at_least}, upsert=True)
    if not first:
        return Write(doc_id, upsert)
    doc: dict[str, Any] = {"_id": doc_id, **fields}
    for path, value in at_least.items():
        head, _, leaf = path.rpartition(".")
        (doc.setdefault(head, {}) if head else doc)[leaf] = value
    return Write(doc_id, upsert, doc)


def outcome_write(row: Row, written_at_ms: int) -> Write:
    doc: dict[str, Any] = json.loads(row.doc)
    # an orphan payment is emitted once, final; an order's first outcome carries the order's
    # own contract fields under `order` (immutable per order_id), its later ones do not
    first = row.kind == ORPHAN or "order" in doc
    fields = {**doc, "kind": row.kind}
    timing: dict[str, int] = {"timing.first_written_at": written_at_ms}
    if row.kafka_ts is not None:
        timing["timing.latency_ms"] = max(0, written_at_ms - row.kafka_ts)
    return _write(row.doc_id, fields, timing, first)


def _bytes(data: bytes | bytearray | None) -> bytes | None:
    """BSON binary needs `bytes` (Spark's Rows hand binary over as bytearray)."""
    return None if data is None else bytes(data)


def dead_letter_write(row: Row, doc: dict[str, Any], written_at_ms: int) -> Write:
    """`doc` is `row.doc` parsed (the caller has parsed it already). The message's key and value
    are stored exactly, as BSON binary (pymongo writes `bytes` so), beside their previews."""
    fields = {**doc, "raw_key": _bytes(row.raw_key), "raw_value": _bytes(row.raw_value)}
    return _write(row.doc_id, fields, {"dead_lettered_at": written_at_ms}, True)


_BAD_KEY = re.compile(r'^\$|[.\x00-\x1f"\\]')


def unstorable_key(value: Any) -> str | None:
    """The first field name in `value` (nested too) that the sink will not send: one MongoDB
    refuses (a leading `$`, a `.`, NUL), or one FerretDB v1 on SQLite stores as invalid JSON
    and then fails every later read of the whole collection with (C0 control characters, `"`,
    backslash: measured here). The job's own documents never have such names; this guards the
    database against any that would."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not k or _BAD_KEY.search(k):
                return repr(k)
            found = unstorable_key(v)
            if found is not None:
                return found
    elif isinstance(value, list):
        for v in value:
            found = unstorable_key(v)
            if found is not None:
                return found
    return None


def refused_letter(collection: str, doc_id: str, op: Any, error: str) -> dict[str, Any]:
    """The dead letter of a document the database refused (`unstorable_document`): where it was
    going, the server's (or driver's) error, and a printable preview of what was refused."""
    return {
        "_id": f"refused:{collection}:{doc_id}",
        "reason": reason(Reason.UNSTORABLE_DOCUMENT),
        "collection": collection,
        "doc_id": doc_id,
        "error": error[:2000],
        "preview": preview(repr(op).encode("utf-8", "backslashreplace"), 2000),
    }


def refused_names(collection: str, w: Write) -> dict[str, Any] | None:
    """The dead letter of `w` when a field name of its document will not be stored
    (`unstorable_key`; the `$min` paths are the sink's own), else None."""
    fields: Any = w.upsert._doc
    bad = unstorable_key(fields["$set"])
    if bad is None:
        return None
    error = f"field name {bad} is not stored (see sinks/documents.py)"
    return refused_letter(collection, w.doc_id, w.upsert, error)


def whole(w: Write) -> dict[str, Any]:
    """The document `w` leaves where none was before: its insert, or its upsert's `$set` and
    `$min` fields (dotted paths nested)."""
    if w.insert is not None:
        return w.insert
    update: Any = w.upsert._doc
    return _write(w.doc_id, update["$set"], update.get("$min", {}), True).insert or {}


def plan(rows: Iterable[Row], written_at_ms: int) -> Plan:
    """Group a batch's rows into writes per collection, with a fingerprint of their content
    (whatever their order: a replayed partition may hand the same rows over in another), and
    sum their tallies of the per-minute figures (dead letters counted by their Kafka minute)."""
    outcomes: list[Write] = []
    orphans: list[Write] = []
    dead: list[Write] = []
    counts: dict[str, int] = {}
    digests: list[bytes] = []
    tally: minutely.Tally = {}
    watermark: int | None = None
    for row in rows:
        digests.append(hashlib.sha256(f"{row.doc_id}\0{row.doc}".encode()).digest())
        if row.kind == TALLY:
            doc = json.loads(row.doc)
            minutely.add_rows(tally, doc["figures"])
            watermark = max(watermark or doc["watermark"], doc["watermark"])
            continue
        counts[row.kind] = counts.get(row.kind, 0) + 1
        if row.kind == DEAD_LETTER:
            doc = json.loads(row.doc)
            reason_key = "reason:" + doc["reason"].split(":")[0]
            counts[reason_key] = counts.get(reason_key, 0) + 1
            if row.kafka_ts is not None:
                minutely.add(tally, *minutely.dead_lettered(row.kafka_ts, doc["reason"]))
            dead.append(dead_letter_write(row, doc, written_at_ms))
        elif row.kind == OUTCOME:
            outcomes.append(outcome_write(row, written_at_ms))
        elif row.kind == ORPHAN:
            orphans.append(outcome_write(row, written_at_ms))
        else:
            raise ValueError(f"unknown output kind {row.kind!r}")
    fingerprint = hashlib.sha256(b"".join(sorted(digests))).hexdigest()
    return Plan(outcomes, orphans, dead, counts, fingerprint, tally, watermark)
