"""What would `transformWithStateInPandas` cost per micro-batch here? Prints figures.

    python -m scripts.bench_tws [--rate 1000] [--calls 2] [--seconds 70]

A `rate` source at `--rate` rows/s, grouped into 4 buckets (as the job groups orders), into a
`transformWithStateInPandas` processor that makes `--calls` MapState calls per row (0: none;
2: `getValue` then `updateValue` of a new key, as an order's arrival would), into a `noop`
sink, with the RocksDB state store it requires. Reports the median batch over the last 30
batches with input. The job itself uses `applyInPandasWithState` (docs/benchmarks.md says why).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql.streaming.stateful_processor import (
    StatefulProcessor,
    StatefulProcessorHandle,
    TimerValues,
)
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from conf.settings import load_settings
from streaming.session import build_session

ROCKSDB = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
BUCKETS = 4


def processor(calls: int) -> StatefulProcessor:
    class Probe(StatefulProcessor):
        def init(self, handle: StatefulProcessorHandle) -> None:
            self.orders = handle.getMapState(
                "orders",
                StructType([StructField("order_id", StringType())]),
                StructType([StructField("ts", LongType()), StructField("amount", DoubleType())]),
            )

        def handleInputRows(
            self, key: Any, rows: Iterator[pd.DataFrame], timerValues: TimerValues
        ) -> Iterator[pd.DataFrame]:
            n = 0
            for pdf in rows:
                for oid, ts in zip(pdf["order_id"], pdf["ts"], strict=True):
                    if calls and self.orders.getValue((oid,)) is None:
                        self.orders.updateValue((oid,), (int(ts), 1.0))
                    n += 1
            yield pd.DataFrame({"bucket": [key[0]], "n": [n]})

        def close(self) -> None:
            pass

    return Probe()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m scripts.bench_tws",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rate", type=int, default=1000, help="rows/s")
    p.add_argument("--calls", type=int, choices=[0, 2], default=2, help="state calls per row")
    p.add_argument("--seconds", type=float, default=70.0)
    args = p.parse_args(argv)
    spark = build_session(load_settings().spark)
    # Spark 4.0.0 logs a WARN per getValue of a missing key; it would swamp the figures
    spark.sparkContext.setLogLevel("ERROR")
    spark.conf.set("spark.sql.streaming.stateStore.providerClass", ROCKSDB)
    rows = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", args.rate)
        .load()
        .withColumn("order_id", F.concat(F.lit("o-"), F.col("value").cast("string")))
        .withColumn("ts", F.col("value"))
        .withColumn("bucket", (F.col("value") % BUCKETS).cast("int"))
        .withWatermark("timestamp", "10 seconds")
    )
    out = rows.groupBy("bucket").transformWithStateInPandas(
        processor(args.calls),
        outputStructType="bucket int, n long",
        outputMode="Append",
        timeMode="None",
    )
    checkpoint = tempfile.mkdtemp(prefix="bench-tws-")
    q = (
        out.writeStream.format("noop")
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime="1 second")
        .start()
    )
    time.sleep(args.seconds)
    progress = [x for x in q.recentProgress if x["numInputRows"]][-30:]
    q.stop()
    spark.stop()
    shutil.rmtree(checkpoint, ignore_errors=True)
    print(
        json.dumps(
            {
                "benchmark": "transformWithStateInPandas probe",
                "rate_rows_per_s": args.rate,
                "state_calls_per_row": args.calls,
                "batches": len(progress),
                "rows_per_batch_median": statistics.median(x["numInputRows"] for x in progress),
                "batch_ms_median": statistics.median(
                    x["durationMs"]["triggerExecution"] for x in progress
                ),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
