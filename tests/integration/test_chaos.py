"""The chaos run, short: one of each fault (broker kill -9, MongoDB stopped, job kill -9, worker
kill -9) while producers stream a seeded dirty scenario and the job runs on a Spark cluster
under the supervisor; then MongoDB must equal the ground truth exactly.

`python -m scripts.chaos` runs on a stack of its own (its own ports and folder), so the suite's
stack is not touched. The MongoDB outage outlasts the sink's retry budget here (one 2 s attempt
per call, then Spark's four attempts per task), so the query fails and the supervisor restarts
it: the path a longer outage takes in production."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conf.settings import REPO_ROOT

pytestmark = pytest.mark.integration


def test_one_of_each_fault_then_mongodb_equals_the_truth(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    cmd = [
        sys.executable, "-m", "scripts.chaos", "--seed", "3", "--rate", "15",
        "--broker-kills", "1", "--mongo-outages", "1", "--mongo-down-s", "20",
        "--job-kills", "1", "--worker-kills", "1", "--gap-s", "1", "3",
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
    assert int(rows["stop mongodb"]["restarts"]) >= 1, text  # failed loudly, then restarted
    assert float(rows["stop mongodb"]["down"]) >= 20, text
    assert "lost 0, duplicated 0, wrong 0 -> EQUALS the truth" in text
    run_dir = re.search(r"^run chaos-\S+: logs in (\S+)$", done.stdout, re.M)
    assert run_dir, done.stdout[-2000:]
    assert not (Path(run_dir[1]) / "stack").exists(), "the run's stack (data) is removed"
