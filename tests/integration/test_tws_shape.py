"""PIPELINE_SHAPE=tws: the same `step` on transformWithStateInPandas, one MapState entry per
order and event-time timers for window closes. It must equal the truth exactly, as the default
shape does, also when stopped halfway and restarted from its checkpoint."""

from __future__ import annotations

import time

import pytest

from conf.settings import Settings
from scripts.check_truth import differences
from sinks.mongo_io import MongoSink
from streaming.job import start_query
from tests.integration.helpers import docs, drain
from tests.integration.test_reconcile_e2e import (
    assert_equals_truth,
    load_scenario,
    mongo_state,
    small_batches,
)

pytestmark = pytest.mark.integration


def tws(s: Settings) -> Settings:
    return s.model_copy(update={"pipeline": s.pipeline.model_copy(update={"shape": "tws"})})


def test_tws_shape_equals_the_truth(spark, pipeline_settings: Settings) -> None:
    s = tws(small_batches(pipeline_settings))
    truth = load_scenario(s)
    drain(spark, s, MongoSink(s))
    assert_equals_truth(s, truth)


def test_tws_shape_restart_halfway_equals_the_truth(spark, pipeline_settings: Settings) -> None:
    s = tws(small_batches(pipeline_settings, per_trigger=150))
    truth = load_scenario(s, seed=11)
    query = start_query(spark, s, MongoSink(s))
    try:
        deadline = time.monotonic() + 300
        while (query.lastProgress or {}).get("batchId", -1) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        query.stop()
    assert docs(s, s.mongo.outcomes_collection)
    assert differences(truth, *mongo_state(s))  # halfway: not the truth yet

    drain(spark, s, MongoSink(s))
    assert_equals_truth(s, truth)
