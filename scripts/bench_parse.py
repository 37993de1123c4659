"""The parse step alone: `contract/wire.py` over a seeded scenario's messages, in one process.

    python -m scripts.bench_parse [--orders N] [--repeat R]

Generates a clean scenario (orders and payments, as the producers serialise them), then times
`wire.parse` over every message R times and prints the median microseconds per message and
messages per second. It is what each record costs on the executors before Spark sees it
(streaming/source.py). To compare two versions of the parser, run it in each checkout, one
after the other (`git worktree add`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import fields

from contract import wire
from contract.events import ORDER, PAYMENT
from producers import serde
from producers.scenario import ScenarioConfig, generate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.bench_parse", description=__doc__)
    p.add_argument("--orders", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    clean = {f.name: 0.0 for f in fields(ScenarioConfig) if f.name.startswith("p_")}
    scenario = generate(ScenarioConfig(n_orders=args.orders, seed=1, **clean))
    kinds = {serde.ORDERS: ORDER, serde.PAYMENTS: PAYMENT}
    messages = [(kinds[e.topic], e.key, e.value) for e in scenario.emissions]
    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for kind, key, value in messages:
            wire.parse(kind, key, value)
        runs.append(time.perf_counter() - t0)
    seconds = statistics.median(runs)
    print(json.dumps({"messages": len(messages), "repeat": args.repeat,
                      "us_per_message": round(seconds / len(messages) * 1e6, 2),
                      "messages_per_s": round(len(messages) / seconds)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
