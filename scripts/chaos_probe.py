"""What the chaos run watches: offsets in Kafka, offsets the job's checkpoint has committed, and
the supervisor's restarts of the job. Reads only."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from conf.settings import Settings
from scripts.bench_pipeline import produced_counts

RECOVERY_TIMEOUT_S = 300.0


class Probe:
    """Where the job is: offsets in Kafka, offsets the checkpoint committed, restarts."""

    def __init__(self, s: Settings, checkpoint: Path, job_log: Path) -> None:
        self.s = s
        self.checkpoint = checkpoint
        self.job_log = job_log

    def produced(self) -> int:
        """Messages in the run's topics now (fresh topics: the sum of their end offsets)."""
        return sum(produced_counts(self.s).values())

    def committed(self) -> int:
        """Messages the checkpoint has committed (the offsets of its last committed batch)."""
        commits = [int(p.name) for p in (self.checkpoint / "commits").glob("[0-9]*")]
        if not commits:
            return 0
        lines = (self.checkpoint / "offsets" / str(max(commits))).read_text().splitlines()
        total = 0
        for line in lines[2:]:  # v1, the batch's metadata, then one line per source
            for partitions in json.loads(line).values():
                total += sum(partitions.values())
        return total

    def starts(self) -> int:
        """How many times the supervisor has started the job."""
        text = self.job_log.read_text(errors="replace") if self.job_log.exists() else ""
        return len(re.findall(r"supervise event=start ", text))

    def wait_caught_up(self, target: int, timeout: float = RECOVERY_TIMEOUT_S) -> float | None:
        """Seconds until the checkpoint has committed `target` messages, or None."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.committed() >= target:
                return time.monotonic() - began
            time.sleep(0.5)
        return None
