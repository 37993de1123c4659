"""The job's log file handler: rotation hands each closed file to the upload in order, close hands
the current one, a failing upload is a warning, and an earlier run's file is not this run's.
The upload here is a function keeping what it gets; tests/integration/test_gcs_checkpoint.py
uploads to a real Cloud Storage emulator."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import pytest

from conf.settings import GcsSettings, JobLogSettings
from streaming.log_upload import UploadingFileHandler, build_handler


class Kept:
    def __init__(self, fail: bool = False) -> None:
        self.objects: dict[str, bytes] = {}
        self.threads: set[str] = set()
        self.fail = fail

    def __call__(self, name: str, data: bytes) -> None:
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise ConnectionError("unreachable\nsecond line")
        self.objects[name] = data


def log_into(handler: logging.Handler, n: int, start: int = 0) -> list[str]:
    log = logging.getLogger(f"test.log_upload.{id(handler)}")
    log.propagate, log.level = False, logging.INFO
    log.addHandler(handler)
    try:
        for i in range(start, start + n):
            log.info("line=%04d %s", i, "y" * 50)
    finally:
        log.removeHandler(handler)
    return [f"line={i:04d}" for i in range(start, start + n)]


def test_every_rotated_file_and_the_last_are_uploaded_in_order(tmp_path: Path) -> None:
    kept = Kept()
    handler = UploadingFileHandler(str(tmp_path / "job.log"), 1024, 2, kept, "logs/run-1", 5.0)
    written = log_into(handler, 100)
    handler.close()
    names = list(kept.objects)
    assert names == [f"logs/run-1/{i:05d}.log" for i in range(len(names))] and len(names) >= 5
    assert handler.uploaded == names
    text = b"".join(kept.objects.values()).decode()
    assert re.findall(r"line=\d{4}", text) == written
    assert kept.threads == {"log-upload"}  # never on the thread that logs
    assert not any((tmp_path / "job.log.pending").iterdir())


def test_uploads_that_fall_behind_are_bounded(tmp_path: Path, monkeypatch) -> None:
    release = threading.Event()
    kept = Kept()

    def slow(name: str, data: bytes) -> None:
        release.wait(10)
        kept(name, data)

    monkeypatch.setattr(UploadingFileHandler, "MAX_PENDING", 3)
    handler = UploadingFileHandler(str(tmp_path / "job.log"), 1024, 2, slow, "p", 5.0)
    log_into(handler, 200)  # far more rotations than 3 can wait
    assert len(list((tmp_path / "job.log.pending").iterdir())) <= 4
    release.set()
    handler.close()
    assert 3 <= len(kept.objects) <= 5  # the ones that waited, and the last file
    last = max(kept.objects)
    assert kept.objects[last].decode().rstrip().endswith("y" * 50)
    assert "line=0199" in kept.objects[last].decode()


def test_a_failing_upload_is_a_warning_and_the_file_is_still_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handler = UploadingFileHandler(str(tmp_path / "job.log"), 1024, 1, Kept(fail=True), "p", 5.0)
    with caplog.at_level(logging.WARNING, logger="streaming.log_upload"):
        written = log_into(handler, 60)
        handler.close()
    warnings = [r.getMessage() for r in caplog.records if "log upload failed" in r.getMessage()]
    assert warnings and all("ConnectionError: unreachable" in w for w in warnings)
    assert not any("second line" in w for w in warnings)
    kept = re.findall(r"line=\d{4}", (tmp_path / "job.log").read_text())
    assert kept and kept == written[-len(kept) :]


def test_an_earlier_runs_file_is_rotated_away_not_uploaded(tmp_path: Path) -> None:
    (tmp_path / "job.log").write_text("line=9999 from an earlier run\n")
    kept = Kept()
    handler = UploadingFileHandler(str(tmp_path / "job.log"), 4096, 2, kept, "p", 5.0)
    written = log_into(handler, 3)
    handler.close()
    assert (tmp_path / "job.log.1").read_text() == "line=9999 from an earlier run\n"
    assert re.findall(r"line=\d{4}", b"".join(kept.objects.values()).decode()) == written


def test_no_file_no_handler_and_no_bucket_no_upload(tmp_path: Path) -> None:
    gcs = GcsSettings(emulator_host="")
    assert build_handler(JobLogSettings(file=""), gcs) is None
    handler = build_handler(JobLogSettings(file=str(tmp_path / "a" / "job.log")), gcs)
    assert handler is not None and handler.prefix == "" and handler.rotator is None
    log_into(handler, 2)
    handler.close()
    assert (tmp_path / "a" / "job.log").read_text().count("line=") == 2


def test_an_unwritable_folder_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    settings = JobLogSettings(file=str(tmp_path / "file" / "job.log"))
    with caplog.at_level(logging.WARNING, logger="streaming.log_upload"):
        assert build_handler(settings, GcsSettings(emulator_host="")) is None
    assert "log file off" in caplog.text
