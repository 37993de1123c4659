"""The producers' only contact with Kafka: an idempotent producer and a paced send loop.

`Sender(settings, topics)` builds a confluent-kafka Producer from
`settings.kafka.client_config()` (which holds the secret: never logged) plus idempotence,
acks=all, lz4 compression and batching. `send_all(emissions, rate, duration, wall)` sends
until done, a deadline, or SIGINT/SIGTERM; then flushes and returns a `Summary` whose
`line()` is what the command prints (`summary sent=N acknowledged=N failed=N ...`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from conf.settings import Settings

logger = logging.getLogger(__name__)

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 20,
    "batch.size": 256 * 1024,
    "partitioner": "murmur2_random",  # the Java clients' partitioner: same key, same partition
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 512 * 1024,
}
LOG_EVERY_S = 5.0


class Outgoing(Protocol):
    """What `send_all` sends: a scenario's `Emission`, or a fuzz message (whose key or value may
    be absent: a keyless message, a tombstone)."""

    @property
    def topic(self) -> str: ...  # topic kind: "orders" | "payments"

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def emit_ms(self) -> int: ...  # when to send it with `wall=True`


@dataclass
class Summary:
    sent: int = 0
    acked: int = 0
    failed: int = 0
    bytes_sent: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False

    def line(self) -> str:
        rate = self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (
            f"summary sent={self.sent} acknowledged={self.acked} failed={self.failed} "
            f"elapsed_s={self.elapsed_s:.2f} rate_per_s={rate:.0f} interrupted={self.interrupted}"
        )


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {**settings.kafka.client_config(), **PRODUCER_DEFAULTS, **overrides}


class _Stop:
    """SIGINT/SIGTERM set a flag; the loop checks it between messages."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C gives up on flushing
        self.requested = True
        logger.info("event=stop_requested signal=%s", signal.Signals(signum).name)

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no signal handling
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Sender:
    def __init__(self, settings: Settings, topics: dict[str, str], **overrides: Any) -> None:
        self.topics = dict(topics)  # topic kind ("orders"/"payments") -> topic name
        self.summary = Summary()
        self.producer = Producer(producer_config(settings, **overrides))
        logger.info(
            "event=producer_ready bootstrap=%s topics=%s",
            settings.kafka.bootstrap_servers,
            ",".join(f"{k}:{v}" for k, v in self.topics.items()),
        )

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.summary.acked += 1
        else:
            self.summary.failed += 1
            if self.summary.failed <= 10:
                logger.error("event=delivery_failed error=%s", err)

    def _produce(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=self._on_delivery)
                return
            except BufferError:
                self.producer.poll(0.05)  # queue full: serve callbacks, then retry

    def _wait(self, due: float, wall: bool, stop: _Stop, deadline: float | None) -> None:
        """Serve callbacks until `due` (epoch seconds if `wall`, else monotonic), a stop or the
        (monotonic) deadline."""
        clock = time.time if wall else time.monotonic
        while not stop.requested and (deadline is None or time.monotonic() < deadline):
            left = due - clock()
            if left <= 0.0005:
                return
            self.producer.poll(min(left, 0.2))

    def flush(self, timeout_s: float = 60.0) -> int:
        """Flush in short steps so a signal is handled; returns messages still queued."""
        deadline = time.monotonic() + timeout_s
        left = len(self.producer)
        while left and time.monotonic() < deadline:
            left = self.producer.flush(0.5)
        if left:
            logger.warning("event=flush_incomplete queued=%d", left)
        return left

    def send_all(
        self,
        emissions: Sequence[Outgoing] | Iterable[Outgoing],
        rate: float | None = None,
        duration: float | None = None,
        wall: bool = False,
        progress: bool | None = None,
    ) -> Summary:
        """Send every emission to its topic; `rate` messages/s (None or 0: as fast as possible);
        `wall`: send each emission when the wall clock reaches its `emit_ms`."""
        items = list(emissions)
        s = self.summary
        show = sys.stdout.isatty() if progress is None else progress
        bar = _Progress(len(items)) if show else None
        start = time.monotonic()
        deadline = start + duration if duration else None
        interval = 1.0 / rate if rate else 0.0
        paced = bool(interval or wall)
        next_log = start + LOG_EVERY_S
        produce, poll, topics = self._produce, self.producer.poll, self.topics
        with _Stop() as stop:
            try:
                for n, em in enumerate(items):
                    if stop.requested or (deadline is not None and time.monotonic() >= deadline):
                        s.interrupted = stop.requested
                        break
                    if paced:
                        due = em.emit_ms / 1000.0 if wall else start + n * interval
                        self._wait(due, wall, stop, deadline)
                        if stop.requested or (deadline and time.monotonic() >= deadline):
                            s.interrupted = stop.requested
                            break
                    produce(topics[em.topic], em.key, em.value)
                    s.sent += 1
                    s.bytes_sent += len(em.value or b"")
                    poll(0)
                    if paced or n & 1023 == 0:
                        now = time.monotonic()
                        if bar is not None:
                            bar.update(s)
                        elif now >= next_log:
                            next_log = now + LOG_EVERY_S
                            logger.info(
                                "event=progress sent=%d acked=%d failed=%d total=%d",
                                s.sent,
                                s.acked,
                                s.failed,
                                len(items),
                            )
                self.flush()
            finally:
                s.elapsed_s = time.monotonic() - start
                if bar is not None:
                    bar.update(s)
                    bar.close()
        logger.info("event=send_done %s", s.line().removeprefix("summary "))
        return s


class _Progress:
    def __init__(self, total: int) -> None:
        from rich.progress import Progress

        self._p = Progress()
        self._p.start()
        self._task = self._p.add_task("producing", total=total)

    def update(self, s: Summary) -> None:
        self._p.update(self._task, completed=s.sent, description=f"acked {s.acked}")

    def close(self) -> None:
        self._p.stop()
