"""Hostile input: malformed messages of generated shapes, each with its dead-letter reason.

Issue 13. Pure: no Kafka, no clock; only the command below sends.

    python -m producers.fuzz --count 10000 --seed 1 [--rate R] [--truth FILE]
                             [--orders-topic T] [--payments-topic T]

`generate(n, seed)` -> n `FuzzMessage`s spread over both topics, the same bytes for the same
seed. Each starts from a valid order or payment whose ids (`o-fuzz-<seed>-<n>`) no scenario
uses, and gets one defect of a shape in `producers/fuzz_shapes.py`: random bytes, truncated
JSON, invalid UTF-8, a BOM, NaN/Infinity, integers beyond 64 bits, floats for integers, deep
nesting, 1 MB strings, messages over the size limit, duplicate keys, nulls, empty values, keys
that do not match the order_id. The generator names the reason from the defect it made, never
by asking the parser, so the parser and the job are held to an independent expectation.

`--truth FILE` writes producers/truth.py's format with these dead letters only; check a run
that also had a scenario with both files: `python -m scripts.check_truth truth.json FILE`.
The messages over PIPELINE_MAX_MESSAGE_BYTES need a broker that takes them (the local stack's
takes 10 MiB).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from faker import Faker

from conf.settings import load_settings
from contract import wire
from contract.events import Channel, Item, Method, Order, Payment
from contract.rules import Rules
from producers import cli, serde
from producers.fuzz_shapes import INVALID_UTF8_KEY, SHAPES, TOO_LARGE, Base
from producers.scenario import CATEGORIES, START_MS
from producers.truth import DeadLetter, Truth, as_text, rules_doc

logger = logging.getLogger(__name__)

PROG = "python -m producers.fuzz"
# Faker's names in several scripts, so that a string holds multi-byte UTF-8 (one Faker per
# locale, each seeded: a multi-locale Faker picks its locale with the unseeded `random`)
LOCALES = ("en_US", "de_DE", "el_GR", "ja_JP", "ru_RU", "zh_CN")
CHANNELS = tuple(c.value for c in Channel)
METHODS = tuple(m.value for m in Method)


@dataclass(frozen=True, slots=True)
class FuzzMessage:
    kind: str  # topic kind: serde.ORDERS | serde.PAYMENTS
    key: bytes | None
    value: bytes | None
    shape: str  # a name in fuzz_shapes.SHAPES
    reason: str  # the dead-letter reason it must get

    @property
    def topic(self) -> str:  # as producers.kafka_io.Sender takes a message
        return self.kind

    @property
    def emit_ms(self) -> int:  # no event time of its own: sent in order
        return 0


class _Bases:
    """Valid orders and payments (serde's wire dicts), their names from Faker."""

    def __init__(self, seed: int) -> None:
        self.fakes = []
        for n, locale in enumerate(LOCALES):
            fake = Faker(locale)
            fake.seed_instance(seed * len(LOCALES) + n)
            self.fakes.append(fake)

    def make(
        self, rng: random.Random, kind: str, order_id: str, payment_id: str, ts: int
    ) -> dict[str, Any]:
        fake = rng.choice(self.fakes)
        items = tuple(
            Item(f"sku-{fake.ean8()}", rng.choice(CATEGORIES), rng.randint(1, 3),
                 rng.randint(99, 19_999))
            for _ in range(rng.randint(1, 4))
        )  # fmt: skip
        amount = sum(i.quantity * i.unit_price for i in items)
        if kind == serde.ORDERS:
            customer, store = f"c-{fake.user_name()}", f"s-{fake.city()}"
            channel = rng.choice(CHANNELS)
            order = Order(order_id, customer, store, channel, items, amount, "EUR", ts, ts + 20)
            return serde.order_dict(order)
        method = rng.choice(METHODS)
        return serde.payment_dict(Payment(payment_id, order_id, method, amount, "EUR", ts, ts))


def generate(n: int, seed: int, max_bytes: int = wire.MAX_BYTES) -> list[FuzzMessage]:
    """`n` malformed messages. The first ones are one of each shape (in a seeded order), so any
    `n >= len(SHAPES)` has them all; the rest are drawn by the shapes' weights. A value longer
    than `max_bytes` is `too_large` whatever else it is (the size is checked before anything but
    the key)."""
    if max_bytes < 4096:
        raise ValueError(f"max_bytes must be >= 4096, not {max_bytes}")
    rng = random.Random(seed)
    bases = _Bases(seed)
    names = list(SHAPES)
    weights = [SHAPES[name][0] for name in names]
    first = rng.sample(names, len(names))
    out = []
    for i in range(n):
        shape = first[i] if i < len(first) else rng.choices(names, weights)[0]
        kind = rng.choice(serde.KINDS)
        order_id = f"o-fuzz-{seed}-{i:05d}"
        msg = bases.make(rng, kind, order_id, f"p-fuzz-{seed}-{i:05d}", START_MS + i * 1000)
        other = f"o-fuzz-{seed}-{i + 1:05d}"
        key, value, why = SHAPES[shape][1](Base(kind, msg, rng, other, max_bytes))
        if why != INVALID_UTF8_KEY and value is not None and len(value) > max_bytes:
            why = TOO_LARGE
        out.append(FuzzMessage(kind, key, value, shape, why))
    return out


T = TypeVar("T")


def interleave(rng: random.Random, a: Sequence[T], b: Sequence[T]) -> list[T]:
    """`a` and `b` merged at random places, each in its own order (a scenario's order matters
    to its truth: its late events come in the second half of each topic)."""
    picks = [0] * len(a) + [1] * len(b)
    rng.shuffle(picks)
    sources = (iter(a), iter(b))
    return [next(sources[p]) for p in picks]


def fuzz_truth(
    messages: Sequence[FuzzMessage], topics: Mapping[str, str], rules: Rules, seed: int
) -> Truth:
    """The outcome `messages` must have: each a dead letter with its reason, nothing else.
    `topics` maps the topic kinds to the topics' names."""
    return Truth(
        scenario={"fuzz_count": len(messages), "fuzz_seed": seed},
        rules=rules_doc(rules),
        topics=dict(topics),
        final_watermark_ms=None,
        dead_letters=[
            DeadLetter(topics[m.kind], as_text(m.key), m.reason, as_text(m.value)) for m in messages
        ],
    )


def build_parser(settings_topics: Mapping[str, str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])

    def add(flag: str, env: str, default: Any, cast: Callable[[str], Any], text: str) -> None:
        p.add_argument(
            flag,
            type=cast,
            default=cli._env(env, default, cast),
            metavar=flag[2:].upper().replace("-", "_"),
            help=f"{text} (env {env}, default %(default)s)",
        )

    add("--count", "FUZZ_COUNT", 10_000, cli._at_least_zero(int), "malformed messages")
    add("--seed", "FUZZ_SEED", 1, int, "seed of the shapes and their order")
    rate = cli._at_least_zero(float)
    add("--rate", "FUZZ_RATE", 0.0, rate, "messages/s, 0 = as fast as possible")
    add("--truth", "FUZZ_TRUTH", None, str, "write the dead letters they must become here (JSON)")
    add("--orders-topic", "TOPIC_ORDERS", settings_topics[serde.ORDERS], str, "orders topic")
    payments = settings_topics[serde.PAYMENTS]
    add("--payments-topic", "TOPIC_PAYMENTS", payments, str, "payments topic")
    add("--log-level", "PRODUCER_LOG_LEVEL", "INFO", str, "logging level")
    return p


def message_max_bytes(messages: Sequence[FuzzMessage]) -> int:
    """The producer's `message.max.bytes` that lets the largest message out (its default,
    1,000,000, is below the pipeline's limit of 1 MiB)."""
    largest = max((len(m.key or b"") + len(m.value or b"") for m in messages), default=0)
    return max(1_000_000, largest + 64 * 1024)


def _run(argv: list[str] | None) -> int:
    from producers.kafka_io import Sender
    from producers.topics import ensure_topics
    from producers.truth import write_truth

    settings = load_settings()
    defaults = {serde.ORDERS: settings.topics.orders, serde.PAYMENTS: settings.topics.payments}
    args = build_parser(defaults).parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    messages = generate(args.count, args.seed, settings.pipeline.max_message_bytes)
    names = {serde.ORDERS: args.orders_topic, serde.PAYMENTS: args.payments_topic}
    size = sum(len(m.value or b"") for m in messages)
    shapes = Counter(m.shape for m in messages)
    logger.info(
        "event=fuzz seed=%d messages=%d bytes=%d shapes=%d",
        args.seed, len(messages), size, len(shapes),
    )  # fmt: skip
    if args.truth:
        rules = settings.pipeline.rules()
        write_truth(args.truth, fuzz_truth(messages, names, rules, args.seed))
        logger.info("event=truth_written path=%s", args.truth)
    ensure_topics(settings, list(names.values()))
    sender = Sender(settings, names, **{"message.max.bytes": message_max_bytes(messages)})
    summary = sender.send_all(messages, rate=args.rate or None)
    print(summary.line(), flush=True)
    return 0 if summary.failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    return cli.guarded(PROG, lambda: _run(argv))


if __name__ == "__main__":
    sys.exit(main())
