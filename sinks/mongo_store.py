"""The MongoDB store every sink module shares: this process's client, the errors that stop a
batch, and the bounded retry of transient failures. The sinks' network calls go through here
(`sinks/mongo_io.py` writes the documents, `sinks/live_io.py` the dashboard's figures)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import AutoReconnect, ConnectionFailure

from conf.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT = (AutoReconnect, ConnectionFailure)
CHUNK = 500  # writes per bulk_write command
RETRIED = [0]  # calls retried in this process so far (the partition writers report the change)

_CLIENTS: dict[str, MongoClient[dict[str, Any]]] = {}  # per process: one client per server


def client_for(uri: str, timeout_ms: int = 10_000) -> MongoClient[dict[str, Any]]:
    """This process's client for `uri`, made on first use (pymongo clients are thread-safe and
    pool their connections; Spark reuses the Python worker across tasks and batches)."""
    if uri not in _CLIENTS:
        _CLIENTS[uri] = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
    return _CLIENTS[uri]


class LayoutError(RuntimeError):
    """The settings would read an existing checkpoint's state with a different layout."""

    code = "STATE_LAYOUT_CHANGED"


class SinkError(RuntimeError):
    """Writing a batch failed after the retries; the query must stop and restart."""

    code = "SINK_WRITE_FAILED"


def retry(fn: Callable[[], T], what: str, attempts: int = 5, base_delay: float = 0.2) -> T:
    """`fn`, called again after a transient error, up to `attempts` times with exponential
    backoff; then SinkError. Each retry is counted in RETRIED (this process's)."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TRANSIENT as exc:
            if attempt == attempts:
                # pymongo's text names the server (host:port, never credentials) and the cause
                cause = str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]
                raise SinkError(
                    f"{what} failed after {attempts} attempts: {type(exc).__name__}: {cause[:300]}"
                ) from exc
            delay = base_delay * 2 ** (attempt - 1)
            RETRIED[0] += 1
            logger.warning(
                "transient mongo error what=%s attempt=%d retry_in=%.1fs error=%s",
                what,
                attempt,
                delay,
                type(exc).__name__,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def _chunks(items: Sequence[T]) -> list[list[T]]:
    return [list(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]


class MongoStore:
    """The settings' database, through this process's client. Picklable: settings only."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collection(self, name: str) -> Collection[dict[str, Any]]:
        m = self.settings.mongo
        return client_for(m.uri.get_secret_value(), m.timeout_ms)[m.database][name]

    def retry(self, fn: Callable[[], T], what: str) -> T:
        """`fn`, retried on transient errors as PIPELINE_SINK_RETRIES/_RETRY_BASE_S say."""
        p = self.settings.pipeline
        return retry(fn, what, attempts=p.sink_retries, base_delay=p.sink_retry_base_s)

    def marker_id(self, batch_id: int) -> str:
        return f"{self.settings.spark.checkpoint_location}:{batch_id}"

    def partition_marker_id(self, partition: int) -> str:
        return f"{self.settings.spark.checkpoint_location}:p{partition}"


def chunks(items: Sequence[T]) -> list[list[T]]:
    """`items` in lists of CHUNK (one bulk command each)."""
    return [list(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]
