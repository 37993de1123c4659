"""Produce throughput from one process, with the producers' own send loop and settings.

    python -m scripts.bench_produce [TOPIC] [--count N]

Pre-generates and pre-serializes N events (a clean seeded scenario, orders and payments), then
times only send + flush into one topic (TOPIC, or a fresh unique name created with 3
partitions) and prints events/s and MB/s. Target: >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from dataclasses import fields

from conf.settings import load_settings
from producers.kafka_io import Sender
from producers.scenario import ScenarioConfig, generate
from producers.topics import ensure_topics

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.bench_produce", description=__doc__)
    p.add_argument("topic", nargs="?", help="topic to write to (default: a fresh unique one)")
    p.add_argument("--count", type=int, default=500_000, help="events (default %(default)s)")
    p.add_argument("--partitions", type=int, default=3, help="of a new topic (%(default)s)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    settings = load_settings()
    topic = args.topic or f"bench-{uuid.uuid4().hex[:8]}"

    t0 = time.perf_counter()
    clean = {f.name: 0.0 for f in fields(ScenarioConfig) if f.name.startswith("p_")}
    scenario = generate(ScenarioConfig(n_orders=args.count // 2 + 1, seed=1, **clean))
    emissions = scenario.emissions[: args.count]
    n_bytes = sum(len(e.key) + len(e.value) for e in emissions)
    print(f"generated {len(emissions)} events ({n_bytes / 1e6:.1f} MB) "
          f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip
    ensure_topics(settings, [topic], args.partitions)
    sender = Sender(settings, {"orders": topic, "payments": topic})
    sender.producer.list_topics(topic, timeout=10)  # connect before the clock starts

    start = time.perf_counter()
    summary = sender.send_all(emissions, progress=False)
    elapsed = time.perf_counter() - start
    print(
        f"topic={topic} events={summary.sent} acked={summary.acked} failed={summary.failed} "
        f"seconds={elapsed:.2f} events_per_s={summary.acked / elapsed:,.0f} "
        f"MB_per_s={n_bytes / elapsed / 1e6:.1f}"
    )
    return 0 if summary.failed == 0 and summary.acked == len(emissions) else 1


if __name__ == "__main__":
    raise SystemExit(main())
