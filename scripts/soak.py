"""The soak: hours of traffic compressed into one steady run, watching for what grows.

    python -m scripts.soak find-rate [--rates 100,200,400] [--step-s 900]
    python -m scripts.soak run --rate EVENTS_PER_S [--minutes 30] [--sample-s 15]

Both run the job in this process on the everyday stack (topics, database and checkpoint of their
own) with short event-time windows (bench_pipeline.SHORT_WINDOWS, and a 5-minute dedup horizon)
so that orders close, expire and leave state within minutes, while wall-clock producers send a
dirty scenario at a steady rate.

`find-rate` offers each rate for `--step-s` and prints whether the job kept up: its lag (the
topics' end offsets now minus those of the last batch run), sampled over the second half of the
step, stayed under LAG_LIMIT_S seconds of traffic.

`run` samples every `--sample-s`: state rows, the driver's JVM (which holds the executors in
local mode) and its Python workers' memory, this (driver) process's memory, batch time and lag;
then drains and compares MongoDB with the ground truth. It prints the samples (JSON lines), and
the medians of the first and second half of the last 20 minutes, with their ratio: flat is
close to 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from conf.settings import Settings, load_settings
from producers.topics import ensure_topics
from scripts.bench_pipeline import SHORT_WINDOWS, isolated, produced_counts, run_producer
from scripts.bench_scale import driver_pids, rss_mb
from scripts.check_truth import differences, fetch
from scripts.cluster import descendants
from sinks.mongo_io import MongoSink, PaymentClaims
from streaming.job import start_query
from streaming.session import build_session

LAG_LIMIT_S = 15.0  # a rate is sustained while the job stays less than this far behind
DEDUP_HORIZON_S = 300
FLAT_MINUTES = 20  # the plateau is judged over the last this many minutes


def lag(s: Settings, progress: dict[str, Any] | None) -> int | None:
    """Messages in Kafka now that the last batch run did not reach: the topics' end offsets
    minus that batch's end offsets."""
    if not progress or not progress.get("sources"):
        return None
    done = 0
    for src in progress["sources"]:
        end = src.get("endOffset")
        if isinstance(end, str):  # pyspark gives the Kafka source's offsets as JSON text
            end = json.loads(end)
        if isinstance(end, dict):
            done += sum(sum(parts.values()) for parts in end.values())
    return sum(produced_counts(s).values()) - done  # fresh topics: they start at offset 0


def memory() -> dict[str, float]:
    """This driver process, its JVM (driver and, in local mode, the executors) and the JVM's
    Python workers, in MB."""
    pids = driver_pids()
    jvm = pids.get("jvm")
    workers = descendants(jvm) if jvm else []
    return {
        "driver_python_mb": round(rss_mb(pids["python"])),
        "jvm_mb": round(rss_mb(jvm)) if jvm else 0,
        "python_workers_mb": round(sum(rss_mb(p) for p in workers)),
    }


def plateau(samples: list[dict[str, Any]], keys: list[str], minutes: float) -> dict[str, Any]:
    """Medians of each key over the first and second half of the last `minutes`, and their
    ratio (second / first): a metric that levelled off has a ratio near 1."""
    end = samples[-1]["t_s"]
    start, mid = end - minutes * 60, end - minutes * 30
    out: dict[str, Any] = {}
    for key in keys:
        first = [s[key] for s in samples if start <= s["t_s"] < mid and s.get(key) is not None]
        second = [s[key] for s in samples if s["t_s"] >= mid and s.get(key) is not None]
        if not first or not second:
            continue
        a, b = statistics.median(first), statistics.median(second)
        out[key] = {"first_half": a, "second_half": b, "ratio": round(b / a, 3) if a else None}
    return out


class Run:
    """The job in this process, on its own topics, database and checkpoint."""

    def __init__(self, base: Settings) -> None:
        name = f"soak-{uuid.uuid4().hex[:6]}"
        windows = {**SHORT_WINDOWS, "dedup_horizon_s": DEDUP_HORIZON_S}
        self.s = isolated(base, name, max_offsets_per_trigger=None, **windows)
        ensure_topics(self.s, [self.s.topics.orders, self.s.topics.payments])
        self.spark = build_session(self.s.spark)
        self.batch_s: list[float] = []
        sink = MongoSink(self.s, on_batch=lambda st: self.batch_s.append(st.seconds))
        sink.prepare()
        self.query = start_query(self.spark, self.s, sink, claims=PaymentClaims(self.s))

    def sample(self, t0: float) -> dict[str, Any]:
        progress: dict[str, Any] = self.query.lastProgress or {}
        ops = progress.get("stateOperators") or [{}]
        recent = self.batch_s[-10:]
        return {
            "t_s": round(time.time() - t0),
            "batch_id": progress.get("batchId"),
            "state_rows": ops[0].get("numRowsTotal"),
            "lag_messages": lag(self.s, progress),
            "batch_s_median_recent": round(statistics.median(recent), 2) if recent else None,
            "input_rows_per_s": round(progress.get("inputRowsPerSecond", 0)),
            **memory(),
        }

    def stop(self) -> None:
        self.query.stop()
        self.spark.stop()


def find_rate(base: Settings, rates: list[float], step_s: float) -> None:
    for rate in rates:
        run = Run(base)
        producer = run_producer(run.s, rate, step_s, "--payment-delay-max-s", "60")
        t0, lags = time.time(), []
        while producer.poll() is None:
            time.sleep(5)
            got = lag(run.s, run.query.lastProgress)
            if got is not None and time.time() - t0 > step_s / 2:
                lags.append(got)
        run.stop()
        offered = sum(produced_counts(run.s).values()) / step_s
        worst = max(lags, default=0) / rate
        print(json.dumps({"rate_events_per_s": rate, "offered_events_per_s": round(offered),
                          "worst_lag_s_second_half": round(worst, 1),
                          "sustained": worst < LAG_LIMIT_S}), flush=True)  # fmt: skip


def soak(base: Settings, rate: float, minutes: float, sample_s: float, truth: Path) -> int:
    run = Run(base)
    producer = run_producer(run.s, rate, minutes * 60, "--payment-delay-max-s", "60",
                            "--truth", str(truth), whole=True)  # fmt: skip
    samples: list[dict[str, Any]] = []
    t0 = time.time()
    while producer.poll() is None:
        time.sleep(sample_s)
        if not run.query.isActive:
            producer.terminate()
            print(f"the query failed: {run.query.exception()}", file=sys.stderr)
            return 1
        samples.append(run.sample(t0))
        print(json.dumps(samples[-1]), flush=True)
    drained_at = time.time()
    want = json.loads(truth.read_text())
    diffs = differences(want, *fetch(run.s)[:2])
    while diffs and time.time() - drained_at < 300:
        time.sleep(5)
        diffs = differences(want, *fetch(run.s)[:2])
    run.stop()
    keys = ["state_rows", "jvm_mb", "python_workers_mb", "driver_python_mb",
            "batch_s_median_recent", "lag_messages"]  # fmt: skip
    result = {
        "benchmark": "soak",
        "rate_events_per_s": rate,
        "minutes": minutes,
        "events_produced": sum(produced_counts(run.s).values()),
        "batches": len(run.batch_s),
        "plateau_last_minutes": FLAT_MINUTES,
        "plateau": plateau(samples, keys, FLAT_MINUTES),
        "equals_truth": not diffs,
        "differences": diffs,
        "settled_s_after_producers": round(time.time() - drained_at),
        "orders": len(want["orders"]),
        "dead_letters": len(want["dead_letters"]),
    }
    print(json.dumps(result, indent=1), flush=True)
    return 0 if not diffs else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("find-rate")
    f.add_argument("--rates", default="100,200,400", help="events/s, comma-separated")
    # a step must outlast an order's life in state (window + lateness + horizon: 11 min here):
    # before that no order closes and no payment claim expires, and the writes they cost (the
    # closing update, the claim's delete) are missing from the load (2-min steps found 900
    # events/s "sustained"; 800 then fell behind in the soak once closes began)
    f.add_argument("--step-s", type=float, default=900)
    r = sub.add_parser("run")
    r.add_argument("--rate", type=float, required=True, help="events/s")
    r.add_argument("--minutes", type=float, default=30)
    r.add_argument("--sample-s", type=float, default=15)
    r.add_argument("--truth", type=Path, default=Path("/tmp") / f"soak-{uuid.uuid4().hex[:6]}.json")
    args = p.parse_args(argv)
    # the producers (subprocesses) read the dedup horizon from the environment, like the rules
    os.environ["PIPELINE_DEDUP_HORIZON_S"] = str(DEDUP_HORIZON_S)
    base = load_settings()
    if args.command == "find-rate":
        find_rate(base, [float(x) for x in args.rates.split(",")], args.step_s)
        return 0
    return soak(base, args.rate, args.minutes, args.sample_s, args.truth)


if __name__ == "__main__":
    sys.exit(main())
