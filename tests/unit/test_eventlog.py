"""scripts/eventlog.py sums task metrics per side of the shuffle and per executor."""

import json

from scripts.eventlog import breakdown


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
