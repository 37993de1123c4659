"""The job's log as a file, rotated by size, each closed file uploaded to Cloud Storage.

With JOB_LOG_FILE set, `install` adds a handler to the root logger that writes the job's Python
log (its own lines, py4j's warnings; not the JVM's log4j output) to that file, rotated every
JOB_LOG_MAX_BYTES with JOB_LOG_BACKUPS old files kept. A run starts a file of its own: what an
earlier run left is rotated away first, and stays on disk only.

With JOB_LOG_GCS_BUCKET set, every file the rotation closes, and the current one when the log
shuts down, is uploaded as gs://<bucket>/<JOB_LOG_GCS_PREFIX>/<run>/<n>.log, n = 00000, 00001,
... in order, where <run> is the start time, host and pid. Uploads run on a thread of their own
(the job never waits on Cloud Storage, except at exit for at most JOB_LOG_UPLOAD_TIMEOUT_S), are
create-only (an object is never overwritten) and a failed one is a warning: the file stays on
disk while the backups last, and the job goes on. GCS_EMULATOR_HOST points the upload at an
emulator.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import socket
import threading
import time
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from conf.settings import GcsSettings, JobLogSettings

logger = logging.getLogger(__name__)

Upload = Callable[[str, bytes], None]  # (object name, content)
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def storage_client(gcs: GcsSettings) -> Any:
    """A google-cloud-storage client: on the emulator (signed out) when GCS_EMULATOR_HOST is set,
    otherwise Google's service with Application Default Credentials."""
    from google.cloud import storage

    if gcs.emulator_url:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project="local-emulator",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": gcs.emulator_url},
        )
    return storage.Client()


def gcs_upload(gcs: GcsSettings, bucket: str, timeout_s: float) -> Upload:
    """An upload of one object to `bucket`: create-only, so Google's client may retry it."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    target = storage_client(gcs).bucket(bucket)
    retry = DEFAULT_RETRY.with_timeout(timeout_s)

    def upload(name: str, data: bytes) -> None:
        target.blob(name).upload_from_string(
            data,
            content_type="text/plain; charset=utf-8",
            if_generation_match=0,
            timeout=timeout_s,
            retry=retry,
        )

    return upload


def run_id() -> str:
    """This process's folder name under the prefix: start time (UTC), host, pid."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{socket.gethostname()}-{os.getpid()}"


class UploadingFileHandler(RotatingFileHandler):
    """A RotatingFileHandler that hands each file it rotates out, and the current one at close,
    to `upload` as `<prefix>/<n>.log`, on a thread of its own.

    A file to upload is first hard-linked into `<file>.pending/` (no copy, no memory held), so
    the rotation can go on renaming and deleting backups while it waits; the link is removed once
    the upload is done or failed. At most MAX_PENDING wait: beyond that a rotated file is not
    uploaded (a warning says how many), so an unreachable Cloud Storage costs no more disk."""

    MAX_PENDING = 100

    def __init__(
        self,
        path: str,
        max_bytes: int,
        backups: int,
        upload: Upload | None = None,
        prefix: str = "",
        timeout_s: float = 30.0,
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        if os.path.getsize(path) > 0:
            self.doRollover()  # an earlier run's lines: kept on disk, not uploaded as this run's
        self.prefix = prefix.strip("/")
        self.uploaded: list[str] = []
        self._upload = upload
        self._timeout_s = timeout_s
        self._seq = 0
        self._dropped = 0
        self._closing = False
        self._queue: queue.Queue[tuple[str, Path] | None] = queue.Queue()
        self._pending = Path(f"{self.baseFilename}.pending")
        self._worker: threading.Thread | None = None
        if upload is not None:
            self._pending.mkdir(exist_ok=True)
            for stale in self._pending.iterdir():  # an earlier run's, which ended without them
                stale.unlink()
            self.rotator = self._rotate
            # while closing, the lock is held (logging.shutdown): the worker's own warnings
            # then go to the other handlers only, or it would wait on this one
            self.addFilter(self._not_the_closing_worker)
            self._worker = threading.Thread(target=self._work, name="log-upload", daemon=True)
            self._worker.start()

    def _not_the_closing_worker(self, record: logging.LogRecord) -> bool:
        worker = self._worker
        return not (self._closing and worker is not None and record.thread == worker.ident)

    def _submit(self, path: str, last: bool = False) -> None:
        """Queue `path`'s content as the next object (the last one always). Never logs: it runs
        inside the handler."""
        seq, self._seq = self._seq, self._seq + 1
        if not last and self._queue.qsize() >= self.MAX_PENDING:
            self._dropped += 1  # reported by the worker
            return
        staged = self._pending / f"{seq:05d}.log"
        try:
            os.link(path, staged)
        except OSError:  # a filesystem without hard links
            shutil.copyfile(path, staged)
        name = f"{self.prefix}/{seq:05d}.log" if self.prefix else f"{seq:05d}.log"
        self._queue.put((name, staged))

    def _rotate(self, source: str, dest: str) -> None:
        """Called under the handler's lock with the stream closed: rename as the default rotator
        does, then queue what was rotated out."""
        if not os.path.exists(source):
            return
        os.rename(source, dest)
        self._submit(dest)

    def _work(self) -> None:
        assert self._upload is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            name, staged = item
            try:
                self._upload(name, staged.read_bytes())
                self.uploaded.append(name)
            except Exception as exc:  # noqa: BLE001 - any failure: a warning, never a stop
                logger.warning("log upload failed object=%s error=%s", name, _brief(exc))
            finally:
                staged.unlink(missing_ok=True)
            if self._dropped:
                logger.warning("log upload behind: %d rotated files not uploaded", self._dropped)
                self._dropped = 0

    def close(self) -> None:
        """Upload the current file and wait (at most twice the upload timeout) for the uploads
        still queued, then close the file."""
        worker = self._worker
        if worker is not None and not self._closing:
            self._closing = True
            if self.stream:
                self.stream.flush()
            with contextlib.suppress(OSError):
                if os.path.getsize(self.baseFilename) > 0:
                    self._submit(self.baseFilename, last=True)
            self._queue.put(None)
            worker.join(2 * self._timeout_s)
        super().close()


def build_handler(
    log: JobLogSettings, gcs: GcsSettings, run: str | None = None
) -> UploadingFileHandler | None:
    """The handler the settings describe (None without JOB_LOG_FILE). A bucket that cannot be
    used (no credentials) is a warning: the file is still written."""
    if not log.file:
        return None
    upload: Upload | None = None
    prefix = ""
    if log.gcs_bucket:
        try:
            upload = gcs_upload(gcs, log.gcs_bucket, log.upload_timeout_s)
            prefix = f"{log.gcs_prefix.strip('/')}/{run or run_id()}".lstrip("/")
        except Exception as exc:  # noqa: BLE001 - e.g. no Application Default Credentials
            logger.warning("log upload off bucket=%s error=%s", log.gcs_bucket, _brief(exc))
    try:
        handler = UploadingFileHandler(
            log.file, log.max_bytes, log.backups, upload, prefix, log.upload_timeout_s
        )
    except OSError as exc:  # an unwritable folder: the log stays on stderr
        logger.warning("log file off file=%s error=%s", log.file, _brief(exc))
        return None
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler


def _brief(exc: BaseException) -> str:
    """The exception's type and first line, cut short (a client's message can be long)."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


def install(log: JobLogSettings, gcs: GcsSettings) -> UploadingFileHandler | None:
    """Add the settings' handler to the root logger; logging.shutdown (at exit) closes it, which
    uploads the current file."""
    handler = build_handler(log, gcs)
    if handler is not None:
        logging.getLogger().addHandler(handler)
        where = f" upload=gs://{log.gcs_bucket}/{handler.prefix}/" if handler.prefix else ""
        logger.info("log file=%s%s", log.file, where)
    return handler
