"""Spark's progress reports, handed to whoever reports them (metrics, the job's status document).

A StreamingQueryListener on the driver receives every micro-batch's StreamingQueryProgress; this
one passes the progress of one query, as its JSON dict, to `on_progress`. What that does is the
caller's (streaming/__main__.py composes it from sinks/); nothing it raises reaches Spark.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQueryListener

logger = logging.getLogger(__name__)


class ProgressListener(StreamingQueryListener):
    def __init__(self, query_name: str, on_progress: Callable[[dict[str, Any]], None]) -> None:
        self.query_name = query_name
        self.on_progress = on_progress

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        progress = json.loads(event.progress.json)
        if progress.get("name") != self.query_name:
            return
        try:
            self.on_progress(progress)
        except Exception as exc:  # a report that fails must not fail the query
            logger.warning(
                "progress report failed batch_id=%s error=%s: %s",
                progress.get("batchId"),
                type(exc).__name__,
                str(exc)[:300],
            )

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass


def watch(
    spark: SparkSession, query_name: str, on_progress: Callable[[dict[str, Any]], None]
) -> ProgressListener:
    """Call `on_progress` with each progress report of the query named `query_name` (register
    before starting it, to see its first batch); `spark.streams.removeListener` undoes it."""
    listener = ProgressListener(query_name, on_progress)
    spark.streams.addListener(listener)
    return listener
