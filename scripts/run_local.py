"""The local end-to-end run behind `make run`.

A fresh run id names this run's topics, database and checkpoint, so runs never mix. Steps, each
the same command a user would type:
  1. python -m producers.topics                     create the run's topics
  2. python -m producers.simulate --truth FILE      a seeded, dirty scenario into Kafka
  3. python -m streaming --available-now --summary  the job drains Kafka into MongoDB
  4. python -m scripts.check_truth FILE             MongoDB against the scenario's ground truth
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conf.settings import REPO_ROOT, load_settings


def main() -> int:
    base = load_settings()
    run = os.environ.get("RUN_ID") or time.strftime("run-%Y%m%d-%H%M%S")
    run_dir = REPO_ROOT / ".stack" / "runs" / run
    run_dir.mkdir(parents=True, exist_ok=True)
    truth = run_dir / "truth.json"
    env = {
        **os.environ,
        "TOPIC_ORDERS": f"{base.topics.orders}-{run}",
        "TOPIC_PAYMENTS": f"{base.topics.payments}-{run}",
        "TOPIC_DEAD_LETTERS": f"{base.topics.dead_letters}-{run}",
        "TOPIC_OUTCOMES": f"{base.topics.outcomes}-{run}",
        "MONGO_DATABASE": f"{base.mongo.database}_{run.replace('-', '_')}",
        # CHECKPOINT_ROOT (`make run-gcs`: gs://<bucket>/checkpoints) instead of the run's folder
        "SPARK_CHECKPOINT_LOCATION": (
            f"{root.rstrip('/')}/{run}"
            if (root := os.environ.get("CHECKPOINT_ROOT"))
            else str(run_dir / "checkpoint")
        ),
        # several micro-batches, so the watermark moves between them and the scenario's late
        # events (sent in the second half of each topic) meet a watermark already past them
        "PIPELINE_MAX_OFFSETS_PER_TRIGGER": os.environ.get(
            "PIPELINE_MAX_OFFSETS_PER_TRIGGER", "1500"
        ),
    }
    count = os.environ.get("ORDERS", "3000")
    seed = os.environ.get("SEED", "42")
    steps = [
        [sys.executable, "-m", "producers.topics"],
        [
            sys.executable,
            "-m",
            "producers.simulate",
            "--count",
            count,
            "--seed",
            seed,
            "--event-rate",
            "0.5",
            "--truth",
            str(truth),
        ],
        [sys.executable, "-m", "streaming", "--available-now", "--summary"],
        [sys.executable, "-m", "scripts.check_truth", str(truth)],
    ]
    print(
        f"run {run}: topics {env['TOPIC_ORDERS']} / {env['TOPIC_PAYMENTS']}, "
        f"database {env['MONGO_DATABASE']}, checkpoint {env['SPARK_CHECKPOINT_LOCATION']}"
    )
    for cmd in steps:
        print(
            f"\n$ {' '.join(Path(c).name if c == sys.executable else c for c in cmd)}", flush=True
        )
        done = subprocess.run(cmd, cwd=REPO_ROOT, env=env)
        if done.returncode != 0:
            print(f"step failed with exit code {done.returncode}", file=sys.stderr)
            return done.returncode
    print(
        f"\nDocuments are in MongoDB database {env['MONGO_DATABASE']} "
        f"(collections {base.mongo.outcomes_collection}, {base.mongo.orphans_collection}, "
        f"{base.mongo.dead_letters_collection}, figures in {base.mongo.minutely_collection})."
    )
    print(
        f"Dashboard: MONGO_DATABASE={env['MONGO_DATABASE']} make dashboard  "
        f"(then http://{base.dashboard.address}:{base.dashboard.port})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
