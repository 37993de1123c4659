"""What the reconciliation emits and the sinks write: one `Output` per document.

The shapes (streaming/) produce them, the sinks (sinks/) turn them into writes, the ground truth
(producers/truth.py) is compared with what they became. Pure: no Spark, no MongoDB.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from contract import minutely
from contract.integers import storable
from contract.wire import preview

# Output kinds (one place for their names). A TALLY is no document: it carries what a batch of
# one bucket adds to the per-minute figures (contract/minutely.py) to the sink, which sums them.
OUTCOME, ORPHAN, DEAD_LETTER, TALLY = "outcome", "orphan", "dead_letter", "tally"
# A dead letter keeps its raw value whole up to this size (MongoDB holds 16 MB per document);
# beyond it the first KEEP_BYTES, with the full size and SHA-256.
KEEP_BYTES = 8 * 1_048_576


@dataclass(slots=True)
class Output:
    kind: str  # OUTCOME | ORPHAN | DEAD_LETTER
    doc_id: str
    doc: dict[str, Any]
    kafka_ts: int | None = None  # newest Kafka timestamp that changed this document
    raw_key: bytes | None = None  # a dead letter's Kafka key and value, exactly as read
    raw_value: bytes | None = None


_LONG_NUMBER = re.compile(r"[0-9]{19}")  # every integer outside INT64 has 19 digits or more


def to_json(doc: dict[str, Any]) -> str:
    """A computed document as the compact JSON the job hands to the sink (its integers
    `storable`: a number that could leave 64 bits is scanned for only when the text shows one)."""
    text = json.dumps(doc, separators=(",", ":"))
    if _LONG_NUMBER.search(text) is None:
        return text
    return json.dumps(storable(doc), separators=(",", ":"))


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    raw_key: bytes | None,
    raw_value: bytes | None,
    kafka_ts: int | None,
    event_ts: int | None = None,
) -> Output:
    """A dead letter, keyed by where the message sits in Kafka (so a replay rewrites, not adds).
    The document holds printable previews of the key and value; the sink stores the exact bytes
    beside them."""
    doc: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset,
                           "reason": reason, "event_ts": event_ts, "key": preview(raw_key),
                           "preview": preview(raw_value)}  # fmt: skip
    if raw_value is not None and len(raw_value) > KEEP_BYTES:
        # the one exception to "exactly": a value MongoDB could not hold in one document
        doc.update(raw_value_size=len(raw_value), raw_value_truncated=True,
                   raw_value_sha256=hashlib.sha256(raw_value).hexdigest())  # fmt: skip
        raw_value = raw_value[:KEEP_BYTES]
    return Output(DEAD_LETTER, f"{topic}:{partition}:{offset}", doc, kafka_ts, raw_key, raw_value)


def tally(figures: minutely.Tally, watermark: int) -> Output:
    """A bucket's contributions to the per-minute figures, with the watermark they were
    computed under (the sink marks figures final by it)."""
    return Output(TALLY, "", {"watermark": watermark, "figures": minutely.to_rows(figures)})
