"""The chaos run in the suite (`python -m scripts.chaos`), short: one of each fault, seeded gaps
of 1-3 s and short outages. Its own module, so that it runs beside the cluster module's tests on
the other xdist worker (each starts a Spark cluster of its own). The full schedule (two broker
kills, five job kills, 30 s outages) is a benchmark run: docs/benchmarks.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conf.settings import REPO_ROOT

pytestmark = pytest.mark.integration


def test_chaos_one_of_each_fault_then_mongodb_equals_the_truth(tmp_path: Path) -> None:
    """The chaos run, short (`python -m scripts.chaos`): one of each fault (broker kill -9,
    MongoDB stopped, job kill -9, worker kill -9) while producers stream a seeded dirty scenario
    and the job runs on a Spark cluster under the supervisor; then MongoDB must equal the ground
    truth exactly.

    The chaos run has a stack of its own (its own ports and folder), so the suite's stack is not
    touched. With one 2 s attempt per sink call, a batch writing during the 8 s MongoDB outage
    fails its task attempts and may fail the query (the supervisor restarts it), or the outage
    meets a job between batches: which one depends on timing the test does not control, so it
    asserts what the product promises either way: every fault recovered, the job killed once
    restarted once (the test forces that), and MongoDB equal to the truth."""
    report = tmp_path / "report.md"
    cmd = [
        sys.executable, "-m", "scripts.chaos", "--seed", "3", "--rate", "15",
        "--broker-kills", "1", "--mongo-outages", "1", "--mongo-down-s", "8",
        "--job-kills", "1", "--worker-kills", "1", "--gap-s", "1", "3",
        "--broker-down-s", "3", "5", "--worker-down-s", "2", "4",
        "--sink-retries", "1", "--mongo-timeout-ms", "2000", "--report", str(report),
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    text = report.read_text()
    cells = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in text.splitlines()
        if re.match(r"\| \d+ \|", line)
    ]
    # fault (a worker's number dropped) -> downtime, recovery, restarts
    rows = {re.sub(r" \d$", "", c[1]): {"down": c[3], "recovery": c[4], "restarts": c[5]}
            for c in cells}  # fmt: skip
    assert set(rows) == {"kill -9 broker", "stop mongodb", "kill -9 job", "kill -9 worker"}, text
    assert all(r["recovery"] != "not recovered" for r in rows.values()), text
    assert int(rows["kill -9 job"]["restarts"]) == 1, text
    # Not asserted: whether the MongoDB outage made the job restart. That depends on a batch
    # writing while it lasts, which this run does not force (on a slow machine the producers had
    # finished and the outage met an idle job: no write failed, nothing to restart, and MongoDB
    # equalled the truth). test_supervise.py forces the failure-and-restart path.
    assert float(rows["stop mongodb"]["down"]) >= 8, text
    assert "lost 0, duplicated 0, wrong 0 -> EQUALS the truth" in text
    run_dir = re.search(r"^run chaos-\S+: logs in (\S+)$", done.stdout, re.M)
    assert run_dir, done.stdout[-2000:]
    assert not (Path(run_dir[1]) / "stack").exists(), "the run's stack (data) is removed"
