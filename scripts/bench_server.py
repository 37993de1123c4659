"""How many orders per second can the MongoDB-protocol server itself absorb, written the way the
streaming job writes them in steady state? No Kafka, no Spark: pymongo alone. Prints figures.

    python -m scripts.bench_server [--seconds 60] [--batch 1000] [--prefill 100000] [--uri URI]

With micro-batches short against the payment window, each order costs the server three writes:
  1. an insert when the order first arrives (its first outcome, PENDING or paid);
  2. an update when its payment arrives in a later batch;
  3. an update when the watermark closes its window (`final`, or UNPAID).
Each loop writes one batch of `--batch` orders: their inserts, the payment updates of the orders
inserted `--payment-lag` batches before, and the final updates of those inserted `--final-lag`
batches before, as the sink does (unordered bulk_write in chunks on the sink's threads), into a
fresh collection with the outcomes' indexes, prefilled with `--prefill` documents so that it is
not unrealistically small. Orders/s sustained x 2.05 (an order brings ~1.05 payments) is the
event rate the server could keep up with if Spark cost nothing: the bound on the latency
benchmark's rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pymongo import ASCENDING, InsertOne, MongoClient
from pymongo.collection import Collection

from conf.settings import load_settings
from contract.outputs import OUTCOME, to_json
from producers.scenario import ScenarioConfig, generate
from sinks.documents import Row, Write, outcome_write
from sinks.mongo_io import OUTCOME_INDEXES
from sinks.mongo_store import CHUNK
from streaming.source import ORDER_DETAIL
from streaming.step import outcome_doc

EVENTS_PER_ORDER = 2.05
T0_MS = 1_780_000_000_000


def sample_orders(n: int = 500) -> list[str]:
    """Raw order JSON as the producers send it, for realistic document sizes."""
    scenario = generate(ScenarioConfig(n_orders=n, seed=7, p_malformed=0.0))
    return [e.value.decode() for e in scenario.topic("orders")]


def insert_of(i: int, raws: list[str]) -> dict[str, Any]:
    doc = write_of(i, "new", raws).insert
    assert doc is not None  # an order's first outcome is always planned as an insert
    return doc


def write_of(i: int, stage: str, raws: list[str]) -> Write:
    """The sink's own write for order `i` at `stage`: "new" (first outcome, an insert), "paid"
    (a payment arrived) or "final" (its window closed), built by the job's own functions."""
    oid = f"ord-{i:09d}"
    payments = {} if stage == "new" else {f"pay-{i:09d}": [12995, "card", T0_MS + i + 30_000]}
    entry = [T0_MS + i, 12995, "EUR", payments, T0_MS + i]
    doc = outcome_doc(oid, entry, stage == "final")
    if stage == "new":  # the first outcome carries the order's own fields, as the job's does
        order = json.loads(raws[i % len(raws)])
        doc["order"] = {k: order[k] for k in ORDER_DETAIL}
    row = Row(OUTCOME, oid, to_json(doc), T0_MS + i)
    return outcome_write(row, int(time.time() * 1000))


def run(
    uri: str,
    indexes: tuple[str, ...],
    seconds: float,
    batch: int,
    prefill: int,
    payment_lag: int,
    final_lag: int,
    threads: int,
) -> dict[str, Any]:
    coll: Collection[dict[str, Any]] = MongoClient(uri)["bench_server"]["outcomes"]
    coll.drop()
    for field in indexes:
        coll.create_index([(field, ASCENDING)])
    pool = ThreadPoolExecutor(threads)

    def bulk(ops: list[Any]) -> None:
        chunks = [ops[k : k + CHUNK] for k in range(0, len(ops), CHUNK)]
        list(pool.map(lambda c: coll.bulk_write(c, ordered=False), chunks))

    raws = sample_orders()
    t0 = time.perf_counter()
    for start in range(0, prefill, 5000):
        docs = [insert_of(-1 - k, raws) for k in range(start, min(prefill, start + 5000))]
        coll.insert_many(docs)
    prefill_s = time.perf_counter() - t0

    def span(b: int) -> range:
        return range(b * batch, (b + 1) * batch) if b >= 0 else range(0)

    loops: list[dict[str, float]] = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        b = len(loops)
        inserts = [InsertOne(insert_of(i, raws)) for i in span(b)]
        updates = [write_of(i, "paid", raws).upsert for i in span(b - payment_lag)]
        updates += [write_of(i, "final", raws).upsert for i in span(b - final_lag)]
        t = time.perf_counter()
        bulk(inserts)
        t_ins = time.perf_counter() - t
        t = time.perf_counter()
        bulk(updates)
        t_upd = time.perf_counter() - t
        loops.append(
            {"inserts": len(inserts), "updates": len(updates), "insert_s": t_ins, "update_s": t_upd}
        )
    # measured over the loops that wrote all three kinds (steady state)
    full = loops[final_lag:]
    if not full:
        raise SystemExit(f"ran {len(loops)} loops; need more than --final-lag={final_lag}")
    secs = sum(x["insert_s"] + x["update_s"] for x in full)
    orders_per_s = batch * len(full) / secs
    coll.drop()
    return {
        "benchmark": "server",
        "uri_scheme": uri.split("://", 1)[0],
        "secondary_indexes": list(indexes),
        "prefill_documents": prefill,
        "prefill_inserts_per_s": round(prefill / prefill_s) if prefill else None,
        "orders_per_batch": batch,
        "steady_batches": len(full),
        "inserts_per_s": round(sum(x["inserts"] for x in full) / sum(x["insert_s"] for x in full)),
        "updates_per_s": round(sum(x["updates"] for x in full) / sum(x["update_s"] for x in full)),
        "batch_seconds_median": round(
            statistics.median(x["insert_s"] + x["update_s"] for x in full), 2
        ),
        "orders_per_s_sustained": round(orders_per_s),
        "events_per_s_equivalent": round(orders_per_s * EVENTS_PER_ORDER),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m scripts.bench_server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--batch", type=int, default=1000, help="orders per loop")
    p.add_argument("--prefill", type=int, default=100_000)
    p.add_argument("--payment-lag", type=int, default=3, help="loops between insert and payment")
    p.add_argument("--final-lag", type=int, default=10, help="loops between insert and final")
    p.add_argument("--threads", type=int, default=1, help="parallel bulk writes")
    p.add_argument("--uri", help="default: MONGO_URI from the settings")
    p.add_argument(
        "--indexes",
        default=",".join(OUTCOME_INDEXES),
        help="secondary indexes, comma-separated (default: the sink's)",
    )
    args = p.parse_args(argv)
    s = load_settings()
    uri = args.uri or s.mongo.uri.get_secret_value()
    indexes = tuple(x for x in args.indexes.split(",") if x)
    result = run(
        uri,
        indexes,
        args.seconds,
        args.batch,
        args.prefill,
        args.payment_lag,
        args.final_lag,
        args.threads,
    )
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
