"""The documents the dashboard reads, computed. Pure: no network.

Per-minute figures (contract/minutely.py), from a batch's tally (`fold`); the job's status, from
one of Spark's progress reports (`status_doc`, with the lag per topic-partition from `lag_of`).

Each figure's document holds its whole value, recomputed from what is stored plus the batch's
addition, and is replaced whole: never `$inc`, which a replayed batch would apply twice. To stay
exact when Spark re-runs a batch after a crash, a document also keeps the batch that last changed
it and its value before that batch (`batch`, `prev`): the re-run starts again from `prev`, so a
batch counts once however often it is written (the "opaque state" of Storm's Trident; only the
last batch is ever re-run). A figure's value is the sum of the batches that touched it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

from contract import minutely
from contract.integers import storable, stored_int
from sinks.batch_stats import percentile

HIST = "hist"  # a latency document's histogram: log bucket (sinks/batch_stats.py) -> documents


def as_date(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)


def _base(old: dict[str, Any] | None, batch: str) -> dict[str, Any]:
    """The value a batch adds to: the stored one, or the one before it when this batch wrote it
    already (a re-run)."""
    if old is None:
        return {}
    if old.get("batch") == batch:
        return dict(old.get("prev") or {})
    return {k: old[k] for k in (*minutely.VALUES[old["metric"]], HIST) if k in old}


def _doc(key: minutely.Key, value: dict[str, Any], prev: dict[str, Any], batch: str,
         watermark: int | None, now_ms: int) -> dict[str, Any]:  # fmt: skip
    minute, metric, dim, currency = key
    doc: dict[str, Any] = {
        "_id": minutely.doc_id(key),
        "minute": as_date(minute),
        "metric": metric,
        "dim": dim,
        "currency": currency or None,
        **storable(value),
        "final": minutely.is_final(metric, minute, watermark),
        "batch": batch,
        "prev": prev,
        "updated_at": as_date(now_ms),
    }
    if metric == minutely.MATCH:
        doc["rate"] = minutely.match_rate(value["matched"], value["orphaned"])
    if metric == minutely.LATENCY:
        hist = Counter({int(b): n for b, n in value[HIST].items()})
        doc["p50_ms"], doc["p99_ms"] = percentile(hist, 50), percentile(hist, 99)
    return doc


def keys_of(tally: minutely.Tally, minute_latency: dict[int, Counter[int]]) -> list[minutely.Key]:
    return [*tally, *((m, minutely.LATENCY, minutely.ALL, "") for m in minute_latency)]


def fold(
    stored: dict[str, dict[str, Any]],
    tally: minutely.Tally,
    minute_latency: dict[int, Counter[int]],
    batch: str,
    watermark: int | None,
    now_ms: int,
) -> list[dict[str, Any]]:
    """The documents to store for a batch: `stored` holds the current documents of
    `keys_of(tally, minute_latency)` by `_id` (those that exist); `batch` names the batch
    (its checkpoint and id)."""
    docs = []
    for key, added in tally.items():
        old = stored.get(minutely.doc_id(key))
        base = _base(old, batch)
        names = minutely.VALUES[key[1]]
        value: dict[str, Any] = {
            n: stored_int(base.get(n, 0)) + a for n, a in zip(names, added, strict=True)
        }
        docs.append(_doc(key, value, base, batch, watermark, now_ms))
    for minute, added_hist in minute_latency.items():
        key = (minute, minutely.LATENCY, minutely.ALL, "")
        base = _base(stored.get(minutely.doc_id(key)), batch)
        hist = Counter({int(b): n for b, n in (base.get(HIST) or {}).items()})
        hist.update(added_hist)
        value = {"count": sum(hist.values()), HIST: {str(b): n for b, n in sorted(hist.items())}}
        docs.append(_doc(key, value, base, batch, watermark, now_ms))
    return docs


MINUTE_INDEX = "minute"  # the `metric` of a minute's index document (see `minute_index`)
NEWEST_ID = "newest"  # the document holding each clock's newest minute
# the bookkeeping, and `final` (the sweep marks the figures only), stay out of the copies
INDEX_LEAVES_OUT = ("_id", "prev", "batch", "updated_at", "final")


def minute_index_id(minute: int) -> str:
    return f"{minute}|{MINUTE_INDEX}"


def minute_index(docs: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per minute, the `$set` that copies the batch's figure documents of that minute into the
    minute's index document: `{_id: "<minute>|minute", figures: {<figure _id>: <figure>}}`
    (values only: whether a figure is final is on the figure's own document).

    A reader finds a minute's every figure with one read by `_id`, which every server serves
    from its index (FerretDB v1 scans for a range of `minute`); each copy is the figure's whole
    value, so writing it again changes nothing. (Figure ids hold no `.`: contract.minutely.)"""
    sets: dict[int, dict[str, Any]] = {}
    for d in docs:
        minute = int(d["_id"].split("|", 1)[0])
        copy = {k: v for k, v in d.items() if k not in INDEX_LEAVES_OUT}
        key = d["_id"].replace(".", "\uff0e")  # a dot would be a path
        fields = sets.setdefault(minute, {"metric": MINUTE_INDEX, "minute": d["minute"]})
        fields[f"figures.{key}"] = copy
    return sets


def newest(docs: list[dict[str, Any]]) -> dict[str, dt.datetime]:
    """The newest minute of each clock (event time, Kafka time) among `docs`, for `$max`."""
    out: dict[str, dt.datetime] = {}
    for d in docs:
        clock = "event" if d["metric"] in minutely.EVENT_TIME else "kafka"
        out[clock] = max(out.get(clock, d["minute"]), d["minute"])
    return out


def _date(iso: str | None) -> dt.datetime | None:
    """A progress report's time ("2026-11-22T13:40:01.123Z") as a UTC datetime."""
    if not iso:
        return None
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _offsets(value: Any) -> dict[str, dict[str, int]]:
    """A source's offsets as Spark reports them (a JSON object, or its text)."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("{") else None
    return value if isinstance(value, dict) else {}


Lag = dict[tuple[str, int], tuple[int, int]]  # (topic, partition) -> (job's end, Kafka's latest)


def lag_of(progress: dict[str, Any]) -> Lag:
    """Per topic-partition: the offset the batch read up to, and Kafka's latest when it ran."""
    lag: Lag = {}
    for source in progress.get("sources") or []:
        end, latest = _offsets(source.get("endOffset")), _offsets(source.get("latestOffset"))
        for topic, parts in end.items():
            for part, off in parts.items():
                top = (latest.get(topic) or {}).get(part, off)
                lag[(topic, int(part))] = (int(off), max(int(off), int(top)))
    return lag


def status_doc(progress: dict[str, Any], lag: Lag) -> dict[str, Any]:
    """The job's status document from one progress report."""
    ops = progress.get("stateOperators") or []
    return {
        "query": progress.get("name"),
        "run_id": progress.get("runId"),
        "batch_id": progress.get("batchId"),
        "at": _date(progress.get("timestamp")),
        "watermark": _date((progress.get("eventTime") or {}).get("watermark")),
        "input_rows_per_s": progress.get("inputRowsPerSecond") or 0.0,
        "processed_rows_per_s": progress.get("processedRowsPerSecond") or 0.0,
        "batch_s": ((progress.get("durationMs") or {}).get("triggerExecution") or 0) / 1000,
        "state_rows": sum(op.get("numRowsTotal", 0) for op in ops),
        "offsets": [
            {"topic": t, "partition": p, "end": end, "latest": latest}
            for (t, p), (end, latest) in sorted(lag.items())
        ],
        "lag": sum(latest - end for end, latest in lag.values()),
    }
