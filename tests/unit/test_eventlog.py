"""scripts/eventlog.py sums task metrics per side of the shuffle and per executor."""

import json
from typing import Any

from scripts.eventlog import BATCH_ID, breakdown, per_batch


def _task(executor: str, run: int, written: int = 0, read: int = 0) -> str:
    return json.dumps({
        "Event": "SparkListenerTaskEnd",
        "Task Info": {"Executor ID": executor, "Launch Time": 1000, "Finish Time": 1000 + run},
        "Task Metrics": {
            "Executor Run Time": run, "Executor CPU Time": run * 500_000, "JVM GC Time": 3,
            "Executor Deserialize Time": 2,
            "Shuffle Write Metrics": {"Shuffle Bytes Written": written,
                                      "Shuffle Write Time": 10**6},
            "Shuffle Read Metrics": {"Local Bytes Read": read, "Fetch Wait Time": 4},
        },
    })  # fmt: skip


def test_breakdown_by_side_and_executor() -> None:
    lines = [
        json.dumps({"Event": "SparkListenerApplicationStart", "Timestamp": 0}),
        _task("0", 100, written=5),
        _task("1", 300, written=5),
        _task("1", 50, read=9),
        json.dumps({"Event": "SparkListenerApplicationEnd", "Timestamp": 2500}),
    ]
    got = breakdown(lines)
    assert got["app_seconds"] == 2.5
    (map_side,) = [v for k, v in got["stages"].items() if k.startswith("map")]
    (reduce_side,) = [v for k, v in got["stages"].items() if k.startswith("reduce")]
    assert map_side["tasks"] == 2 and map_side["run_ms"] == 400 and map_side["cpu_ms"] == 200
    assert reduce_side["tasks"] == 1 and reduce_side["shuffle_fetch_wait_ms"] == 4
    assert got["executors"] == {
        "0": {"tasks": 1, "busy_ms": 100},
        "1": {"tasks": 2, "busy_ms": 350},
    }


def _batch_task(stage: int, launch: int, finish: int, run: int, shuffle_write: int = 0,
          shuffle_read: int = 0, wait: int = 0) -> dict[str, Any]:  # fmt: skip
    return {"Event": "SparkListenerTaskEnd", "Stage ID": stage,
            "Task Info": {"Launch Time": launch, "Finish Time": finish, "Executor ID": "driver"},
            "Task Metrics": {"Executor Run Time": run, "Executor Deserialize Time": 2,
                             "Shuffle Write Metrics": {"Shuffle Bytes Written": shuffle_write},
                             "Shuffle Read Metrics": {"Local Bytes Read": shuffle_read,
                                                      "Fetch Wait Time": wait}}}  # fmt: skip


def test_per_batch_splits_map_and_reduce_and_skips_other_jobs() -> None:
    events = [
        {"Event": "SparkListenerJobStart", "Stage IDs": [1, 2], "Properties": {BATCH_ID: "7"}},
        _batch_task(1, 1000, 1040, 35, shuffle_write=10),
        _batch_task(1, 1001, 1050, 45, shuffle_write=10),
        _batch_task(2, 1060, 1300, 230, shuffle_read=20, wait=3),
        _batch_task(2, 1061, 1250, 180, shuffle_read=20, wait=1),
        {"Event": "SparkListenerJobStart", "Stage IDs": [3], "Properties": {}},  # not a batch
        _batch_task(3, 2000, 2500, 500),
    ]
    got = per_batch(json.dumps(e) for e in events)
    assert list(got) == [7]
    b = got[7]
    assert (b["jobs"], b["map_tasks"], b["reduce_tasks"]) == (1, 2, 2)
    assert (b["map_wall_ms"], b["between_stages_ms"], b["reduce_wall_ms"]) == (50, 10, 240)
    assert (b["map_run_ms"], b["reduce_run_ms"], b["shuffle_fetch_wait_ms"]) == (80, 410, 4)
    assert b["map_deserialize_ms"] == 4
