"""The chaos run's schedule, tally and table, and the supervisor's restart policy (pure)."""

from __future__ import annotations

from collections import Counter

import pytest

from scripts import chaos_plan as plan
from scripts.supervise import Policy, describe


def test_a_seed_replays_the_same_schedule_and_another_seed_does_not() -> None:
    a = plan.schedule(5, broker_kills=2, mongo_outages=1, job_kills=5, worker_kills=1)
    assert a == plan.schedule(5, broker_kills=2, mongo_outages=1, job_kills=5, worker_kills=1)
    assert a != plan.schedule(6, broker_kills=2, mongo_outages=1, job_kills=5, worker_kills=1)
    assert Counter(f.kind for f in a) == {
        plan.BROKER: 2,
        plan.MONGO: 1,
        plan.JOB: 5,
        plan.WORKER: 1,
    }


def test_schedule_bounds() -> None:
    faults = plan.schedule(1, broker_kills=3, mongo_down_s=30, job_kills=3, worker_kills=3,
                           gap_s=(2.0, 4.0))  # fmt: skip
    for f in faults:
        assert 2.0 <= f.gap_s <= 4.0
        if f.kind == plan.BROKER:
            assert 10 <= f.down_s <= 20
        if f.kind == plan.MONGO:
            assert f.down_s == 30
        if f.kind == plan.WORKER:
            assert f.target in (1, 2) and 5 <= f.down_s <= 15
    short = plan.schedule(1, broker_kills=3, worker_kills=3, gap_s=(1.0, 2.0),
                          broker_down_s=(3.0, 5.0), worker_down_s=(2.0, 4.0))  # fmt: skip
    for f in short:
        if f.kind == plan.BROKER:
            assert 3 <= f.down_s <= 5
        if f.kind == plan.WORKER:
            assert 2 <= f.down_s <= 4


def test_the_scenario_outlasts_the_faults() -> None:
    faults = plan.schedule(1, job_kills=5)
    seconds = plan.START_S + sum(f.gap_s + f.down_s + plan.RECOVER_S for f in faults)
    assert plan.orders_to_outlast(faults, rate=10) >= 10 * seconds


@pytest.mark.parametrize(
    ("divergence", "lost", "duplicated", "wrong"),
    [
        ({}, 0, 0, 0),
        ({"order missing (truth PAID final)": 2, "dead letter missing (late)": 1}, 3, 0, 0),
        ({"dead letter not in truth (invalid_json)": 4, "orphan not in truth": 1}, 0, 5, 0),
        ({"order amount/paid/payments differ": 1, "order PAID final written as PAID": 2}, 0, 0, 3),
    ],
)
def test_tally(divergence: dict[str, int], lost: int, duplicated: int, wrong: int) -> None:
    got = plan.tally(Counter(divergence))
    assert got == {"lost": lost, "duplicated": duplicated, "wrong": wrong}


def test_table_names_each_fault_and_an_unrecovered_one() -> None:
    f = plan.Fault(plan.WORKER, 1.0, 5.0, target=2)
    text = plan.table([plan.Outcome(f, 12.34, 6.0, None, 1)])
    assert "| 1 | kill -9 worker 2 | 12.3 | 6.0 | not recovered | 1 |" in text


@pytest.mark.parametrize(
    ("runs", "delays"),
    [
        # (exit code, seconds it ran) -> the delay before the next start (None: stop)
        ([(0, 5.0)], [None]),
        ([(1, 1.0), (1, 1.0), (-9, 1.0), (1, 1.0)], [1.0, 2.0, 4.0, 8.0]),
        ([(1, 1.0)] * 7, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]),  # capped
        ([(1, 1.0), (1, 1.0), (1, 100.0)], [1.0, 2.0, 1.0]),  # a stable run resets it
    ],
)
def test_policy_backs_off_and_resets(runs: list[tuple[int, float]], delays: list[float]) -> None:
    policy = Policy(backoff_s=1.0, max_backoff_s=30.0, stable_s=60.0)
    assert [policy.decide(code, ran, now=i) for i, (code, ran) in enumerate(runs)] == delays


def test_policy_gives_up_after_the_hourly_limit_and_forgets_old_restarts() -> None:
    policy = Policy(max_restarts_per_hour=3)
    assert [policy.decide(1, 1.0, now=t) for t in (0, 1, 2, 3)] == [1.0, 2.0, 4.0, None]
    assert policy.decide(1, 1.0, now=3602) is not None  # the first restart is an hour old


def test_describe() -> None:
    assert describe(1) == "exit=1"
    assert describe(-9) == "signal=SIGKILL"
