"""PIPELINE_SHAPE=state: the same `step` on applyInPandasWithState, one pickled value per bucket.
It must equal the truth exactly, as the default `tws` shape does. Its restart and kill -9 cases
run beside the default shape's, in test_reconcile_e2e.py (parametrized by shape)."""

from __future__ import annotations

import pytest

from conf.settings import Settings
from sinks.mongo_io import MongoSink
from tests.integration.helpers import drain, with_shape
from tests.integration.test_reconcile_e2e import (
    assert_equals_truth,
    load_scenario,
    small_batches,
)

pytestmark = pytest.mark.integration


def test_state_shape_equals_the_truth(spark, pipeline_settings: Settings) -> None:
    s = with_shape(small_batches(pipeline_settings), "state")
    truth = load_scenario(s)
    drain(spark, s, MongoSink(s))
    assert_equals_truth(s, truth)
