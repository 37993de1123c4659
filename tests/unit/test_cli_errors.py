"""Bad flags, bad settings and unreachable services end the producer commands and the job with
one line that names the problem and a non-zero exit, never a traceback (the real commands, in
subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conf.settings import REPO_ROOT, SettingsError, load_settings


def run_command(
    args: list[str], module: str = "producers.orders", **env: str
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT, env=full, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--count", "abc"], "--count"),
        (["--rate", "-5"], "--rate"),
        (["--start", "yesterday"], "--start"),
        (["--start", "2026-01-01T00:00:00"], "--start"),  # no offset
        (["--p-orphan", "7"], "--p-orphan"),
        (["--clock", "moon"], "--clock"),
        (["--bogus"], "--bogus"),
    ],
)
def test_bad_flag(args: list[str], names: str) -> None:
    done = run_command(args)
    assert done.returncode == 2
    assert names in error_line(done)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PIPELINE_WINDOW_AFTER_S": "abc"}, "PIPELINE_WINDOW_AFTER_S"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"PRODUCER_COUNT": "many"}, "PRODUCER_COUNT"),
        ({"PRODUCER_P_LATE": "2"}, "PRODUCER_P_LATE"),
    ],
)
def test_bad_setting(env: dict[str, str], names: str) -> None:
    done = run_command(["--count", "1"], **env)
    assert done.returncode == 2
    assert names in error_line(done)


def test_unreachable_broker() -> None:
    done = run_command(["--count", "1"], KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert done.returncode == 1
    assert "Kafka at 127.0.0.1:1" in error_line(done)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PIPELINE_SINK_RETRIES": "0"}, "PIPELINE_SINK_RETRIES"),
        ({"MONGO_TIMEOUT_MS": "soon"}, "MONGO_TIMEOUT_MS"),
        ({"PIPELINE_SHAPE": "join"}, "PIPELINE_SHAPE"),
    ],
)
def test_the_job_with_a_bad_setting(env: dict[str, str], names: str) -> None:
    done = run_command([], module="streaming", **env)
    assert done.returncode == 2
    assert names in error_line(done)


def test_the_job_with_mongodb_unreachable_says_where() -> None:
    done = run_command(["--available-now"], module="streaming", MONGO_URI="mongodb://127.0.0.1:1/",
                MONGO_TIMEOUT_MS="300", PIPELINE_SINK_RETRIES="1")  # fmt: skip
    assert done.returncode == 1
    line = error_line(done)
    assert "SINK_WRITE_FAILED" in line and "127.0.0.1:1" in line, line


def test_the_job_bad_flag() -> None:
    done = run_command(["--metrics-port", "http"], module="streaming")
    assert done.returncode == 2
    assert "--metrics-port" in error_line(done)


def test_settings_error_names_every_variable_in_one_line(monkeypatch) -> None:
    monkeypatch.setenv("PIPELINE_WINDOW_AFTER_S", "-1")
    monkeypatch.setenv("PIPELINE_STATE_BUCKETS", "zero")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    text = str(exc.value)
    assert "PIPELINE_WINDOW_AFTER_S='-1'" in text and "PIPELINE_STATE_BUCKETS='zero'" in text
    assert "\n" not in text
