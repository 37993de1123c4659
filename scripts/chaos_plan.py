"""The chaos run's pure parts: the seeded fault schedule, how a result departs from the truth,
and the report table. No I/O (scripts/chaos.py runs them)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

BROKER, MONGO, JOB, WORKER = "kill -9 broker", "stop mongodb", "kill -9 job", "kill -9 worker"


@dataclass(frozen=True)
class Fault:
    kind: str
    gap_s: float  # wait this long after the pipeline recovered from the last fault
    down_s: float  # how long the service stays down (0: the supervisor restarts the job)
    target: int = 0  # which worker (1-based), for WORKER


@dataclass
class Outcome:
    fault: Fault
    at_s: float  # when it struck, seconds after the job first started
    downtime_s: float  # from the fault until the service answered again (the job: restarted)
    recovery_s: float | None  # from then until the job had written all produced before it
    restarts: int  # job restarts by the supervisor, from the fault until recovery


def schedule(
    seed: int,
    broker_kills: int = 2,
    mongo_outages: int = 1,
    mongo_down_s: float = 30.0,
    job_kills: int = 5,
    worker_kills: int = 0,
    workers: int = 2,
    gap_s: tuple[float, float] = (3.0, 15.0),
    broker_down_s: tuple[float, float] = (10.0, 20.0),
    worker_down_s: tuple[float, float] = (5.0, 15.0),
) -> list[Fault]:
    """The faults in a seeded order, with seeded gaps and broker/worker downtimes: the same
    seed replays the same run."""
    rng = random.Random(seed)
    faults = (
        [Fault(BROKER, rng.uniform(*gap_s), rng.uniform(*broker_down_s)) for _ in range(broker_kills)]
        + [Fault(MONGO, rng.uniform(*gap_s), mongo_down_s) for _ in range(mongo_outages)]
        # the gap puts a job kill at a random moment of the batches that follow the recovery
        + [Fault(JOB, rng.uniform(*gap_s), 0.0) for _ in range(job_kills)]
        + [
            Fault(WORKER, rng.uniform(*gap_s), rng.uniform(*worker_down_s), rng.randint(1, workers))
            for _ in range(worker_kills)
        ]
    )
    rng.shuffle(faults)
    return faults


START_S = 60.0  # the stack, the cluster and the job's first batch
RECOVER_S = 30.0  # a service's restart and the job's catching up, about


def orders_to_outlast(faults: list[Fault], rate: float) -> int:
    """Orders for a scenario whose producers (at `rate` orders-topic messages/s) are still
    sending when the last fault has been recovered from, so every fault meets live traffic."""
    seconds = START_S + sum(f.gap_s + f.down_s + RECOVER_S for f in faults)
    return max(100, int(rate * seconds * 1.2))


# how each kind of departure from the truth (scripts/check_truth.divergence) counts
LOST = ("order missing", "orphan missing", "dead letter missing")
DUPLICATED = ("order not in truth", "orphan not in truth", "dead letter not in truth")


def tally(divergence: Counter[str]) -> dict[str, int]:
    """Departures from the truth as lost / duplicated / wrong (amounts or outcomes)."""
    out = {"lost": 0, "duplicated": 0, "wrong": 0}
    for key, n in divergence.items():
        if key.startswith(LOST):
            out["lost"] += n
        elif key.startswith(DUPLICATED):
            out["duplicated"] += n
        else:
            out["wrong"] += n
    return out


def _num(x: float | None) -> str:
    return "not recovered" if x is None else f"{x:.1f}"


def table(outcomes: list[Outcome]) -> str:
    """The faults as a markdown table."""
    lines = [
        "| # | fault | at (s) | downtime (s) | recovery (s) | job restarts |",
        "|---|---|---|---|---|---|",
    ]
    for i, o in enumerate(outcomes, 1):
        name = o.fault.kind + (f" {o.fault.target}" if o.fault.kind == WORKER else "")
        lines.append(
            f"| {i} | {name} | {o.at_s:.1f} | {o.downtime_s:.1f} | {_num(o.recovery_s)} | "
            f"{o.restarts} |"
        )
    return "\n".join(lines)
