"""Command-line flags shared by `producers.orders`, `producers.payments` and `producers.simulate`.

Every flag has an environment default (shown in --help). `run(kinds, ...)` is the whole
command: settings (loaded once), scenario, optional truth file, topics, send, summary line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from conf.settings import Settings, SettingsError, load_settings
from producers import serde
from producers.scenario import START_MS, ScenarioConfig, generate

logger = logging.getLogger(__name__)

PROBABILITIES = [f.name for f in fields(ScenarioConfig) if f.name.startswith("p_")]
_DEFAULTS = ScenarioConfig()


def _env(name: str, default: Any, cast: Callable[[str], Any] = str) -> Any:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return cast(raw)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from None


def _at_least_zero(cast: Callable[[str], Any]) -> Callable[[str], Any]:
    def check(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
        return value

    check.__name__ = cast.__name__
    return check


def _probability(text: str) -> float:
    value = _at_least_zero(float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"a probability is between 0 and 1, not {text}")
    return float(value)


def _timestamp(text: str) -> str:
    try:
        serde.parse_iso(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an RFC 3339 timestamp with an offset (e.g. 2026-01-01T00:00:00Z): {text!r}"
        ) from None
    return text


def build_parser(prog: str, description: str, settings: Settings) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)

    def add(flag: str, env: str, default: Any, cast: Callable[[str], Any], text: str) -> None:
        p.add_argument(
            flag,
            type=cast,
            default=_env(env, default, cast),
            metavar=flag[2:].upper().replace("-", "_"),
            help=f"{text} (env {env}, default %(default)s)",
        )

    add("--count", "PRODUCER_COUNT", 10_000, _at_least_zero(int), "orders in the scenario")
    add(
        "--rate",
        "PRODUCER_RATE",
        0.0,
        _at_least_zero(float),
        "sim clock: messages/s, 0 = as fast as possible; wall clock: orders/s of event time",
    )
    add(
        "--duration",
        "PRODUCER_DURATION_S",
        0.0,
        _at_least_zero(float),
        "stop sending after this many s, 0 = no limit",
    )
    add("--seed", "PRODUCER_SEED", _DEFAULTS.seed, int, "seed of the scenario")
    p.add_argument(
        "--clock",
        choices=("sim", "wall"),
        default=_env("PRODUCER_CLOCK", "sim"),
        help="sim: event times from --start, deterministic payloads; wall: event times from now "
        "(start = this minute), sent when due (env PRODUCER_CLOCK, default %(default)s)",
    )
    add(
        "--start",
        "PRODUCER_START",
        serde.iso(START_MS),
        _timestamp,
        "event time of the first order with --clock sim (ISO-8601)",
    )
    add(
        "--event-rate",
        "PRODUCER_EVENT_RATE",
        _DEFAULTS.event_rate,
        _at_least_zero(float),
        "orders per second of event time",
    )
    add(
        "--payment-delay-min-s",
        "PRODUCER_PAYMENT_DELAY_MIN_S",
        _DEFAULTS.payment_delay_min_ms / 1000,
        _at_least_zero(float),
        "smallest payment delay after its order",
    )
    add(
        "--payment-delay-max-s",
        "PRODUCER_PAYMENT_DELAY_MAX_S",
        _DEFAULTS.payment_delay_max_ms / 1000,
        _at_least_zero(float),
        "largest payment delay after its order",
    )
    for name in PROBABILITIES:
        words = name.removeprefix("p_").replace("_", " ")
        add(
            f"--{name.replace('_', '-')}",
            f"PRODUCER_{name.upper()}",
            getattr(_DEFAULTS, name),
            _probability,
            f"probability per order: {words}",
        )
    add("--truth", "PRODUCER_TRUTH", None, str, "write the scenario's expected outcome here (JSON)")
    add("--orders-topic", "TOPIC_ORDERS", settings.topics.orders, str, "orders topic")
    add("--payments-topic", "TOPIC_PAYMENTS", settings.topics.payments, str, "payments topic")
    add("--log-level", "PRODUCER_LOG_LEVEL", "INFO", str, "logging level")
    p.add_argument(
        "--format",
        choices=("json", "avro"),
        default=settings.wire.pipeline_format,
        help="wire format: avro registers the schemas (SCHEMA_REGISTRY_URL) and sends "
        "Confluent-framed Avro (env PIPELINE_FORMAT, default %(default)s)",
    )
    add("--order-schema", "PRODUCER_ORDER_SCHEMA", None, str,
        "with --format avro: the order schema to register (default: contract/avsc)")  # fmt: skip
    return p


def scenario_config(args: argparse.Namespace, settings: Settings) -> ScenarioConfig:
    rules = settings.pipeline.rules()
    event_rate = args.event_rate
    if args.clock == "wall":
        start_ms = int(time.time() // 60) * 60_000
        prefix = f"{args.seed}-{start_ms // 60_000}"
        event_rate = args.rate or event_rate
    else:
        start_ms = serde.parse_iso(args.start)
        prefix = ""
    return ScenarioConfig(
        n_orders=args.count,
        seed=args.seed,
        start_ms=start_ms,
        event_rate=event_rate,
        payment_delay_min_ms=int(args.payment_delay_min_s * 1000),
        payment_delay_max_ms=int(args.payment_delay_max_s * 1000),
        rules=rules,
        id_prefix=prefix,
        **{name: getattr(args, name) for name in PROBABILITIES},
    )


def run(kinds: tuple[str, ...], prog: str, description: str, argv: list[str] | None = None) -> int:
    """Produce the emissions of topic kinds `kinds` of the scenario the flags describe (errors:
    see `guarded`)."""
    return guarded(prog, lambda: _run(kinds, prog, description, argv))


def guarded(prog: str, command: Callable[[], int]) -> int:
    """Run a producer command. A bad setting, flag or unreachable broker ends it with one line
    naming the problem (exit 2 for settings and flags, Kafka's refused credentials, CA or
    protocol included; 1 when Kafka cannot be reached), never a traceback nor a password."""
    from confluent_kafka import KafkaException

    from conf.kafka_check import KafkaCheckError, explain
    from conf.settings import KafkaSettings

    try:
        return command()
    except (SettingsError, ValueError) as exc:  # a schema the registry refused included
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (KafkaException, KafkaCheckError) as exc:
        # a KafkaException comes after the check passed (conf/kafka_check.py): told the same way
        error = exc if isinstance(exc, KafkaCheckError) else explain(exc.args[0], KafkaSettings())
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2 if error.setting else 1
    except RuntimeError as exc:
        if type(exc).__name__ != "RegistryUnreachable":
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1


def _run(kinds: tuple[str, ...], prog: str, description: str, argv: list[str] | None) -> int:
    from producers.kafka_io import Sender
    from producers.topics import ensure_topics
    from producers.truth import compute_truth, write_truth

    settings = load_settings()
    args = build_parser(prog, description, settings).parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    cfg = scenario_config(args, settings)
    scenario = generate(cfg)
    names = {serde.ORDERS: args.orders_topic, serde.PAYMENTS: args.payments_topic}
    emissions = [e for e in scenario.emissions if e.topic in kinds]
    logger.info(
        "event=scenario seed=%d orders=%d clock=%s messages=%d kinds=%s",
        cfg.seed,
        cfg.n_orders,
        args.clock,
        len(emissions),
        ",".join(kinds),
    )
    codec: object = serde
    if args.format == "avro":
        scenario, codec = _avro(settings, scenario, names, args.order_schema)
        emissions = [e for e in scenario.emissions if e.topic in kinds]
    if args.truth:
        truth = compute_truth(scenario, names[serde.ORDERS], names[serde.PAYMENTS], codec)
        write_truth(args.truth, truth)
        logger.info("event=truth_written path=%s", args.truth)
    ensure_topics(settings, [names[k] for k in kinds])
    sender = Sender(settings, {k: names[k] for k in kinds})
    wall = args.clock == "wall"
    summary = sender.send_all(
        emissions,
        rate=None if wall else args.rate or None,
        duration=args.duration or None,
        wall=wall,
    )
    print(summary.line(), flush=True)
    return 0 if summary.failed == 0 else 1


def _avro(settings: Settings, scenario: Any, names: dict[str, str],
          order_schema: str | None) -> tuple[Any, Any]:  # fmt: skip
    """Register the schemas of both topics (raises RegistryRefused, RegistryUnreachable) and put
    the scenario on the Avro wire (both topics: the truth reads both); its truth's codec."""
    from pathlib import Path

    from contract.avro import subject
    from producers import avro_serde, registry_io

    files = {serde.ORDERS: Path(order_schema)} if order_schema else {}
    reg = registry_io.register(settings, names, files)
    fields = frozenset(f["name"] for f in reg.schemas.get(serde.ORDERS, {}).get("fields", []))
    encoded = avro_serde.to_avro(scenario, reg.encode, reg.ids, fields)
    writers = registry_io.writers(settings, [subject(n) for n in names.values()])
    return encoded, avro_serde.AvroCodec(writers)
