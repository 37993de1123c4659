"""The stream-stream join shape (PIPELINE_SHAPE=join) on the same dirty scenario as the default
shape: what it keeps of the semantics and what it loses, counted against the truth."""

from __future__ import annotations

import pytest

from conf.settings import Settings
from scripts.check_truth import divergence
from sinks.factory import sink_for
from sinks.join_sink import JoinSink
from tests.integration.helpers import drain, with_shape
from tests.integration.test_reconcile_e2e import (
    load_scenario,
    mongo_state,
    small_batches,
)

pytestmark = pytest.mark.integration


def test_join_shape_against_the_truth(spark, pipeline_settings: Settings) -> None:
    s = small_batches(pipeline_settings)
    s = with_shape(s, "join")
    truth = load_scenario(s)
    sink = sink_for(s)
    assert isinstance(sink, JoinSink)
    sink.ensure_indexes()
    drain(spark, s, sink)
    outcomes, dead = mongo_state(s)
    div = divergence(truth, outcomes, dead)
    print("join shape against the truth:", sorted(div.items()))

    # kept: de-duplication, payment-before-order, split and wrong amounts (every written order
    # has the truth's amount, paid and payment ids), orphans, malformed dead letters
    assert "order amount/paid/payments differ" not in div
    assert "orphan missing" not in div
    assert not [k for k in div if k.startswith("dead letter") and "(late)" not in k]
    # lost, by the shape itself (docs/benchmarks.md, "Join shape against state shape"):
    # - a matched order is never final: nothing in a join fires when its window closes
    not_final = {k: n for k, n in div.items() if " final written as " in k and k[-5:] != "final"}
    assert sum(not_final.values()) > 0
    # - an order with no payment yet is invisible until its window closes (no PENDING)
    assert div["order missing (truth PENDING)"] > 0
    # - late events are not dead-lettered: the join and de-duplication drop some silently and
    #   let others through, so outcomes and orphans appear that the truth rejects as late
    assert div["dead letter missing (late)"] > 0
    late_effects = {"order not in truth", "orphan not in truth"}
    assert set(div) <= {*not_final, "order missing (truth PENDING)",
                        "dead letter missing (late)", *late_effects}  # fmt: skip
