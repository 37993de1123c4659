"""Create the pipeline's topics idempotently and show what exists.

    python -m producers.topics [--partitions N] [--retention-ms MS]

Creates settings.topics.{orders, payments, dead_letters, outcomes} (and orphans, with
PIPELINE_WRITE_TO=kafka) when missing (existing topics are left as they are) and prints each
topic's name and partition count.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from conf.kafka_check import KafkaCheckError, check_kafka
from conf.settings import Settings, load_settings

logger = logging.getLogger(__name__)


def pipeline_topics(settings: Settings) -> list[str]:
    t = settings.topics
    orphans = [t.orphans] if settings.pipeline.write_to == "kafka" else []
    return [t.orders, t.payments, t.dead_letters, t.outcomes, *orphans]


def ensure_topics(
    settings: Settings,
    names: list[str],
    partitions: int | None = None,
    retention_ms: int | None = None,
    timeout_s: float = 30.0,
) -> dict[str, int]:
    """Create the missing topics among `names`; returns {name: partition count} for `names`
    once the broker's metadata shows every one of them. A setting Kafka refuses (credentials,
    CA, protocol) raises KafkaCheckError naming it within seconds (conf/kafka_check.py)."""
    check_kafka(settings.kafka, timeout_s=min(10.0, timeout_s))
    admin = AdminClient(dict(settings.kafka.client_config()))
    partitions = partitions or settings.topics.partitions
    retention = str(retention_ms or settings.topics.retention_ms)
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [n for n in dict.fromkeys(names) if n not in existing]
    if missing:
        new = [NewTopic(n, partitions, config={"retention.ms": retention}) for n in missing]
        for name, fut in admin.create_topics(new, request_timeout=timeout_s).items():
            try:
                fut.result()
                logger.info("event=topic_created topic=%s partitions=%d", name, partitions)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    deadline = time.monotonic() + timeout_s
    while True:
        meta = admin.list_topics(timeout=timeout_s).topics
        found = {n: len(meta[n].partitions) for n in names if n in meta and meta[n].partitions}
        if len(found) == len(set(names)) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if len(found) != len(set(names)):
        raise RuntimeError(
            f"topics not visible after {timeout_s}s: {sorted(set(names) - set(found))}"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    settings = load_settings()
    p = argparse.ArgumentParser(
        prog="python -m producers.topics", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--partitions",
        type=int,
        default=settings.topics.partitions,
        help="partitions of a new topic (env TOPIC_PARTITIONS, default %(default)s)",
    )
    p.add_argument(
        "--retention-ms",
        type=int,
        default=settings.topics.retention_ms,
        help="retention.ms of a new topic (env TOPIC_RETENTION_MS, default %(default)s)",
    )
    args = p.parse_args(argv)
    try:
        found = ensure_topics(settings, pipeline_topics(settings), args.partitions,
                              args.retention_ms)  # fmt: skip
    except KafkaCheckError as exc:
        print(f"python -m producers.topics: error: {exc}", file=sys.stderr)
        return 2 if exc.setting else 1
    for name, n in found.items():
        print(f"{name}\tpartitions={n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
