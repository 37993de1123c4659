"""What the reconciliation emits and the sinks write: one `Output` per document.

The shapes (streaming/) produce them, the sinks (sinks/) turn them into writes, the ground truth
(producers/truth.py) is compared with what they became. Pure: no Spark, no MongoDB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Output kinds (one place for their names).
OUTCOME, ORPHAN, DEAD_LETTER = "outcome", "orphan", "dead_letter"


@dataclass(slots=True)
class Output:
    kind: str  # OUTCOME | ORPHAN | DEAD_LETTER
    doc_id: str
    doc: dict[str, Any]
    raw: str | None = None  # the order's raw JSON on first sight; the late event's raw value
    kafka_ts: int | None = None  # newest Kafka timestamp that changed this document


def to_json(doc: dict[str, Any]) -> str:
    """A computed document as the compact JSON the job hands to the sink."""
    return json.dumps(doc, separators=(",", ":"))


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: str | None,
    reason: str,
    raw: str | None,
    kafka_ts: int | None,
    event_ts: int | None = None,
) -> Output:
    """A dead letter, keyed by where the message sits in Kafka (so a replay rewrites, not adds)."""
    doc = {"topic": topic, "partition": partition, "offset": offset, "key": key,
           "reason": reason, "event_ts": event_ts}  # fmt: skip
    return Output(DEAD_LETTER, f"{topic}:{partition}:{offset}", doc, raw=raw, kafka_ts=kafka_ts)
