"""The foreachBatch writer for the configured pipeline shape (PIPELINE_SHAPE)."""

from __future__ import annotations

from typing import Any

from conf.settings import Settings
from sinks.mongo_io import MongoSink


def sink_for(settings: Settings, **kwargs: Any) -> MongoSink:
    if settings.pipeline.shape == "join":
        from sinks.join_sink import JoinSink

        if kwargs.get("publish") is not None:
            raise ValueError(
                "PIPELINE_PUBLISH_OUTCOMES/PIPELINE_PUBLISH_DEAD_LETTERS need PIPELINE_SHAPE=state"
            )
        return JoinSink(settings, **kwargs)
    return MongoSink(settings, **kwargs)
