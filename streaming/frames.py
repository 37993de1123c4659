"""Between Spark's pandas batches and the pure step: rows in, documents out (every shape uses it).

A shape's Python function receives a group's rows as pandas DataFrames of `source`'s columns;
`split_events` turns them into dead letters (malformed records) and `step`'s event tuples.
What a shape emits leaves as a pandas DataFrame of OUTPUT_SCHEMA (`frame`), which the sink reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd
from pyspark.sql import types as T

from contract.events import PAYMENT, Reason
from contract.outputs import Output, dead_letter, tally, to_json
from contract.rules import Rules
from streaming.source import MALFORMED, SHAPE_INTEGERS
from streaming.step import EVENT_COLUMNS, StepResult

OUTPUT_SCHEMA = T.StructType(
    [
        T.StructField("kind", T.StringType()),
        T.StructField("doc_id", T.StringType()),
        T.StructField("doc", T.StringType()),  # JSON of the computed document
        T.StructField("kafka_ts", T.LongType()),
        T.StructField("raw_key", T.BinaryType()),  # a dead letter's Kafka key and value bytes
        T.StructField("raw_value", T.BinaryType()),
    ]
)


def outputs_of(res: StepResult, watermark: int, *before: list[Output]) -> list[Output]:
    """What a shape emits for one bucket: `before` (dead letters found ahead of the step), the
    step's documents, and its tally of the per-minute figures (when it counted anything)."""
    out = [o for outputs in before for o in outputs] + res.outputs
    if res.tally:
        out.append(tally(res.tally, watermark))
    return out


def frame(outputs: list[Output]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": [o.kind for o in outputs],
            "doc_id": [o.doc_id for o in outputs],
            "doc": [to_json(o.doc) for o in outputs],
            "kafka_ts": pd.array([o.kafka_ts for o in outputs], dtype="Int64"),
            "raw_key": [o.raw_key for o in outputs],
            "raw_value": [o.raw_value for o in outputs],
        }
    )


def _ints(col: pd.Series) -> list[int]:
    """An integer column as Python ints, exactly. A float column would already have rounded
    every integer above 2**53: it is refused, never cast back (streaming/source.py keeps nulls,
    which make pyarrow hand floats over, out of these columns)."""
    if col.dtype.kind not in "iu":
        raise TypeError(f"column {col.name!r} reached the shape as {col.dtype}, not an integer")
    return col.tolist()


def _event_tuples(pdf: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Valid rows as plain Python tuples in EVENT_COLUMNS order."""
    cols = [_ints(pdf[c]) if c in SHAPE_INTEGERS else pdf[c].tolist() for c in EVENT_COLUMNS]
    return list(zip(*cols, strict=True))


def _dead_letters(pdf: pd.DataFrame) -> list[Output]:
    return [
        dead_letter(topic, partition, offset, reason, raw_key, raw_value, kafka_ts)
        for topic, partition, offset, reason, raw_key, raw_value, kafka_ts in zip(
            pdf["topic"].tolist(),
            _ints(pdf["partition"]),
            _ints(pdf["offset"]),
            pdf["reason"].tolist(),
            pdf["raw_key"].tolist(),
            pdf["raw_value"].tolist(),
            _ints(pdf["kafka_ts"]),
            strict=True,
        )
    ]


def split_events(pdfs: Iterable[pd.DataFrame]) -> tuple[list[Output], list[tuple[Any, ...]]]:
    """A group's rows as the state operator hands them over: malformed records as dead letters,
    valid events as `step`'s tuples."""
    malformed: list[Output] = []
    events: list[tuple[Any, ...]] = []
    for pdf in pdfs:
        bad = (pdf["kind"] == MALFORMED).to_numpy()
        if bad.any():
            malformed.extend(_dead_letters(pdf[bad]))
            pdf = pdf[~bad]
        events.extend(_event_tuples(pdf))
    return malformed, events


# The payment-id registry a shape may be given (sinks.mongo_io.PaymentClaims): claims
# (payment_id, order_id) pairs in order and returns those refused (taken by another order_id).
Claims = Callable[[Sequence[tuple[str, str]]], set[tuple[str, str]]]


def reject_reused(
    events: list[tuple[Any, ...]], watermark: int, rules: Rules, claims: Claims | None
) -> tuple[list[Output], list[tuple[Any, ...]]]:
    """A payment pays one order: claim the payment ids of this group's on-time payments, and
    turn each payment whose id another order_id has claimed first into a `payment_id_reused`
    dead letter. Within one call the earliest event time claims first (then Kafka position).
    Late payments claim nothing (they are dead letters already). Without `claims`: no check."""
    if claims is None:
        return [], events
    pays = sorted(
        (ev for ev in events if ev[0] == PAYMENT and not rules.is_late(ev[3], watermark)),
        key=lambda ev: (ev[3], ev[9], ev[10]),
    )
    refused = claims([(ev[2], ev[1]) for ev in pays]) if pays else set()
    if not refused:
        return [], events
    dead: list[Output] = []
    kept: list[tuple[Any, ...]] = []
    for ev in events:
        if ev[0] == PAYMENT and (ev[2], ev[1]) in refused:
            why = Reason.PAYMENT_ID_REUSED.value
            dead.append(dead_letter(ev[8], ev[9], ev[10], why, ev[12], ev[13], ev[7], ev[3]))
        else:
            kept.append(ev)
    return dead, kept
