"""Keep the streaming job running: restart it from its checkpoint whenever it fails.

    python -m scripts.supervise [--max-restarts-per-hour N] [--pid-file F] -- python -m streaming

The job fails loudly (exit 1) when it cannot go on by itself: MongoDB unreachable past the
sink's retries, the broker gone past the Kafka client's, its process killed. Restarting it is
always safe: it resumes from the checkpoint and its writes are idempotent. This is the local
stand-in for what runs the job in production (Dataproc's `--max-failures-per-hour`, a
docker-compose `restart: on-failure`, systemd's `Restart=on-failure`), with the same policy:

- exit 0 (stopped on request, or an `--available-now` run done) ends the supervisor;
- any other exit, or death by a signal, restarts the job after a back-off that doubles from
  `--backoff-s` up to `--max-backoff-s`; a run that lasted `--stable-s` resets the back-off;
- more than `--max-restarts-per-hour` restarts in the last hour: give up, exit 1;
- SIGTERM/SIGINT are passed to the job (which stops after its batch in flight), then the
  supervisor exits with the job's code.

Each start and exit is one key=value log line; `--pid-file` holds the job's current pid (its
process group: the job's JVM and Python workers are in it).
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("supervise")


@dataclass
class Policy:
    """When to restart, and after how long. Pure: `decide` is given the clock."""

    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    stable_s: float = 60.0
    max_restarts_per_hour: int = 30
    failures: int = 0  # consecutive short runs
    restarts: deque[float] = field(default_factory=deque)

    def decide(self, code: int, ran_s: float, now: float) -> float | None:
        """After a run of `ran_s` seconds ended with `code`: the delay before the next start,
        or None to stop (success, or too many restarts)."""
        if code == 0:
            return None
        while self.restarts and now - self.restarts[0] > 3600:
            self.restarts.popleft()
        if len(self.restarts) >= self.max_restarts_per_hour:
            return None
        self.failures = 1 if ran_s >= self.stable_s else self.failures + 1
        self.restarts.append(now)
        return min(self.max_backoff_s, self.backoff_s * 2 ** (self.failures - 1))


def describe(code: int) -> str:
    """A child's return code as words: `exit=1`, `signal=SIGKILL`."""
    if code < 0:
        try:
            return f"signal={signal.Signals(-code).name}"
        except ValueError:
            return f"signal={-code}"
    return f"exit={code}"


class Supervisor:
    def __init__(self, cmd: list[str], policy: Policy, pid_file: Path | None) -> None:
        self.cmd = cmd
        self.policy = policy
        self.pid_file = pid_file
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def _forward(self, signum: int, _frame: Any) -> None:
        self.stopping = True
        logger.info("event=stop_requested signal=%s", signal.Signals(signum).name)
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        start = 0
        while True:
            start += 1
            began = time.monotonic()
            # a session of its own: losing the job means losing its JVM and workers with it
            self.child = subprocess.Popen(self.cmd, start_new_session=True)
            if self.pid_file is not None:
                self.pid_file.write_text(str(self.child.pid))
            logger.info("event=start start=%d pid=%d", start, self.child.pid)
            code = self.child.wait()
            ran = time.monotonic() - began
            logger.info("event=exit start=%d %s ran_s=%.1f", start, describe(code), ran)
            if self.stopping:
                return code
            delay = self.policy.decide(code, ran, time.monotonic())
            if delay is None:
                if code != 0:
                    logger.error(
                        "event=give_up restarts_last_hour=%d limit=%d",
                        len(self.policy.restarts),
                        self.policy.max_restarts_per_hour,
                    )
                    return 1
                return 0
            logger.warning("event=restart in_s=%.1f after=%s", delay, describe(code))
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and not self.stopping:
                time.sleep(min(0.2, delay))
            if self.stopping:
                return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    own, cmd = (
        (args[: args.index("--")], args[args.index("--") + 1 :])
        if "--" in args
        else (
            args,
            [],
        )
    )
    parser = argparse.ArgumentParser(
        prog="python -m scripts.supervise",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backoff-s", type=float, default=1.0)
    parser.add_argument("--max-backoff-s", type=float, default=30.0)
    parser.add_argument("--stable-s", type=float, default=60.0)
    parser.add_argument("--max-restarts-per-hour", type=int, default=30)
    parser.add_argument("--pid-file", type=Path, default=None)
    opts = parser.parse_args(own)
    if not cmd:
        parser.error("give the command to supervise after --, e.g. -- python -m streaming")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    policy = Policy(opts.backoff_s, opts.max_backoff_s, opts.stable_s, opts.max_restarts_per_hour)
    return Supervisor(cmd, policy, opts.pid_file).run()


if __name__ == "__main__":
    sys.exit(main())
