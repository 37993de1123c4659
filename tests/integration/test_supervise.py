"""The supervisor with real child processes: restarts on failure, stops on success, gives up at
its limit, and passes SIGTERM on."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FAST = ["--backoff-s", "0.05", "--max-backoff-s", "0.1"]


def supervise(*args: str) -> list[str]:
    return [sys.executable, "-m", "scripts.supervise", *FAST, *args]


def run_counting(tmp_path: Path, then: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The supervisor over a child that counts its starts in a file (`n`), then runs `then`."""
    count = tmp_path / "starts"
    child = (
        "import os, pathlib, signal, sys; p = pathlib.Path(sys.argv[1]); "
        "n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n)); " + then
    )
    done = subprocess.run(supervise("--", sys.executable, "-c", child, str(count)),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return done, count


def test_restarts_a_failing_job_until_it_succeeds(tmp_path: Path) -> None:
    done, count = run_counting(tmp_path, "sys.exit(0 if n == 3 else 1)")
    assert done.returncode == 0, done.stderr
    assert count.read_text() == "3"
    assert done.stderr.count("event=restart") == 2
    assert "event=exit start=3 exit=0" in done.stderr


def test_a_job_killed_by_a_signal_is_restarted(tmp_path: Path) -> None:
    done, _ = run_counting(
        tmp_path, "os.kill(os.getpid(), signal.SIGKILL) if n == 1 else sys.exit(0)"
    )
    assert done.returncode == 0, done.stderr
    assert "after=signal=SIGKILL" in done.stderr


def test_gives_up_past_the_hourly_limit() -> None:
    done = subprocess.run(
        supervise("--max-restarts-per-hour", "2", "--", sys.executable, "-c", "exit(3)"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("event=start ") == 3
    assert "event=give_up" in done.stderr


def test_sigterm_reaches_the_job_and_nothing_restarts(tmp_path: Path) -> None:
    pid_file, stopped = tmp_path / "pid", tmp_path / "stopped"
    child = (
        "import pathlib, signal, sys, time\n"
        "def stop(*_):\n"
        f"    pathlib.Path({str(stopped)!r}).write_text('yes'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(supervise("--pid-file", str(pid_file), "--", sys.executable, "-c",
                                      child), stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the child has installed its handler
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert stopped.read_text() == "yes"
    assert "event=restart" not in (proc.stderr.read() if proc.stderr else "")


def test_no_command_is_a_one_line_error() -> None:
    done = subprocess.run(supervise(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "give the command to supervise after --" in done.stderr
    assert "Traceback" not in done.stderr
