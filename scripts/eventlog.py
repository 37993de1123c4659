"""Where a Spark application's time went, from its event log (`spark.eventLog.enabled`).

    python -m scripts.eventlog EVENT_LOG_FILE

Pure reading of Spark's JSON event lines: per kind of stage (the map side that reads Kafka,
parses and shuffles; the reduce side that reads the shuffle and runs the state operator; and
anything else), the tasks' summed run, CPU, GC, deserialization and shuffle times, and per
executor its busy time, so a run on N executors shows whether they were busy in parallel.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

NS = 1e-6  # ns -> ms


def _side(metrics: dict[str, Any]) -> str:
    if metrics.get("Shuffle Write Metrics", {}).get("Shuffle Bytes Written", 0) > 0:
        return "map: Kafka read, parse, shuffle write"
    read = metrics.get("Shuffle Read Metrics", {})
    if read.get("Remote Bytes Read", 0) + read.get("Local Bytes Read", 0) > 0:
        return "reduce: shuffle read, state operator, sink"
    return "other"


def breakdown(lines: Iterable[str]) -> dict[str, Any]:
    sides: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    executors: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    start = end = None
    for line in lines:
        ev = json.loads(line)
        kind = ev.get("Event")
        if kind == "SparkListenerApplicationStart":
            start = ev["Timestamp"]
        elif kind == "SparkListenerApplicationEnd":
            end = ev["Timestamp"]
        elif kind == "SparkListenerTaskEnd" and ev.get("Task Metrics"):
            m, info = ev["Task Metrics"], ev["Task Info"]
            side = sides[_side(m)]
            side["tasks"] += 1
            side["run_ms"] += m.get("Executor Run Time", 0)
            side["cpu_ms"] += m.get("Executor CPU Time", 0) * NS
            side["gc_ms"] += m.get("JVM GC Time", 0)
            side["deserialize_ms"] += m.get("Executor Deserialize Time", 0)
            side["shuffle_fetch_wait_ms"] += m.get("Shuffle Read Metrics", {}).get(
                "Fetch Wait Time", 0
            )
            side["shuffle_write_ms"] += (
                m.get("Shuffle Write Metrics", {}).get("Shuffle Write Time", 0) * NS
            )
            ex = executors[str(info.get("Executor ID"))]
            ex["tasks"] += 1
            ex["busy_ms"] += info.get("Finish Time", 0) - info.get("Launch Time", 0)
    out: dict[str, Any] = {
        "app_seconds": None if start is None or end is None else round((end - start) / 1000, 1),
        "stages": {k: {m: round(v) for m, v in d.items()} for k, d in sides.items()},
        "executors": {k: {m: round(v) for m, v in d.items()} for k, d in executors.items()},
    }
    return out


BATCH_ID = "streaming.sql.batchId"  # the local property Spark sets on a micro-batch's jobs


def per_batch(lines: Iterable[str]) -> dict[int, dict[str, float]]:
    """Per micro-batch of a streaming query: the wall time of its map side (Kafka read, parse,
    shuffle write: first task launched to last finished), of its reduce side (shuffle read,
    state operator, sink) and between them; the tasks' summed run and deserialization times,
    the reduce side's shuffle fetch wait, and the number of tasks and jobs."""
    stage_batch: dict[int, int] = {}
    out: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for line in lines:
        ev = json.loads(line)
        kind = ev.get("Event")
        if kind == "SparkListenerJobStart":
            batch = (ev.get("Properties") or {}).get(BATCH_ID)
            if batch is not None:
                out[int(batch)]["jobs"] += 1
                for stage in ev.get("Stage IDs", []):
                    stage_batch[stage] = int(batch)
        elif kind == "SparkListenerTaskEnd" and ev.get("Task Metrics"):
            batch = stage_batch.get(ev["Stage ID"])
            if batch is None:
                continue
            m, info = ev["Task Metrics"], ev["Task Info"]
            side = "map" if _side(m).startswith("map") else "reduce"
            b = out[batch]
            b[f"{side}_tasks"] += 1
            b[f"{side}_run_ms"] += m.get("Executor Run Time", 0)
            b[f"{side}_deserialize_ms"] += m.get("Executor Deserialize Time", 0)
            b[f"{side}_first_launch"] = min(b.get(f"{side}_first_launch") or 1e18,
                                            info["Launch Time"])  # fmt: skip
            b[f"{side}_last_finish"] = max(b.get(f"{side}_last_finish", 0), info["Finish Time"])
            b["shuffle_fetch_wait_ms"] += m.get("Shuffle Read Metrics", {}).get(
                "Fetch Wait Time", 0
            )
    result = {}
    for batch, b in out.items():
        row = {k: v for k, v in b.items() if not k.endswith(("_first_launch", "_last_finish"))}
        for side in ("map", "reduce"):
            if b.get(f"{side}_tasks"):
                row[f"{side}_wall_ms"] = b[f"{side}_last_finish"] - b[f"{side}_first_launch"]
        if b.get("map_tasks") and b.get("reduce_tasks"):
            row["between_stages_ms"] = b["reduce_first_launch"] - b["map_last_finish"]
        result[batch] = row
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        print(json.dumps(breakdown(f), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
