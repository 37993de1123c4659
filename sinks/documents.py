"""From the job's output rows to MongoDB upserts. Pure: no network.

Every upsert is keyed by `_id` and `$set`s the whole computed state (never `$inc`), so writing
the same rows twice leaves the same documents. Processing-time fields live under `timing` and
are set with `$min`, so a replay cannot move them either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne

from streaming.state import DEAD_LETTER, ORPHAN, OUTCOME


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    doc_id: str
    doc: str
    raw: str | None
    kafka_ts: int | None


@dataclass(slots=True)
class Plan:
    outcomes: list[UpdateOne]
    dead_letters: list[UpdateOne]
    counts: dict[str, int]
    fingerprint: str


def outcome_update(row: Row, written_at_ms: int) -> UpdateOne:
    doc: dict[str, Any] = json.loads(row.doc)
    if row.raw is not None and row.kind == OUTCOME:
        # the order's own fields, as the retailer sent them (immutable per order_id)
        doc["order"] = json.loads(row.raw)
    fields = {**doc, "kind": row.kind}
    timing: dict[str, int] = {"timing.first_written_at": written_at_ms}
    if row.kafka_ts is not None:
        timing["timing.latency_ms"] = max(0, written_at_ms - row.kafka_ts)
    return UpdateOne({"_id": row.doc_id}, {"$set": fields, "$min": timing}, upsert=True)


def dead_letter_update(row: Row, doc: dict[str, Any], written_at_ms: int) -> UpdateOne:
    """`doc` is `row.doc` parsed (the caller has parsed it already)."""
    doc = {**doc, "raw": row.raw}
    return UpdateOne(
        {"_id": row.doc_id},
        {"$set": doc, "$min": {"dead_lettered_at": written_at_ms}},
        upsert=True,
    )


def plan(rows: Iterable[Row], written_at_ms: int) -> Plan:
    """Group a batch's rows into upserts per collection, with a fingerprint of their content."""
    outcomes: list[UpdateOne] = []
    dead: list[UpdateOne] = []
    counts: dict[str, int] = {}
    digest = hashlib.sha256()
    for row in rows:
        counts[row.kind] = counts.get(row.kind, 0) + 1
        if row.kind == DEAD_LETTER:
            doc = json.loads(row.doc)
            reason_key = "reason:" + doc["reason"].split(":")[0]
            counts[reason_key] = counts.get(reason_key, 0) + 1
            dead.append(dead_letter_update(row, doc, written_at_ms))
        elif row.kind in (OUTCOME, ORPHAN):
            outcomes.append(outcome_update(row, written_at_ms))
        else:
            raise ValueError(f"unknown output kind {row.kind!r}")
        digest.update(row.doc_id.encode())
        digest.update(row.doc.encode())
    return Plan(outcomes, dead, counts, digest.hexdigest())
